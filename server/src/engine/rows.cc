#include "engine/rows.h"

#include <algorithm>
#include <regex>

#include <nlohmann/json.hpp>

#include "engine/values.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::engine {

Tenant TenantFrom(const db::Row& r) {
  return Tenant{r.Str("id"), r.Str("slug"), r.Str("name"), r.Str("created_at"), r.Str("owner")};
}

WorkflowView WorkflowFrom(const db::Row& r) {
  WorkflowView w;
  w.id = r.Str("id");
  w.kind = r.Str("kind");
  w.queue = r.Str("queue");
  w.status = r.Str("status");
  w.input_json = r.Str("input");
  w.output_json = r.Str("output");
  w.error = r.Opt("error");
  w.parent_id = r.Opt("parent_id");
  w.idempotency_key = r.Opt("idempotency_key");
  w.last_sequence = r.Int("last_seq");
  w.created_at = r.Str("created_at");
  w.updated_at = r.Str("updated_at");
  w.completed_at = r.Opt("completed_at");
  w.traceparent = r.Str("traceparent");
  w.problem = r.Opt("problem");
  w.problem_at = r.Opt("problem_at");
  return w;
}

TaskView TaskFrom(const db::Row& r) {
  TaskView t;
  t.id = r.Str("id");
  t.kind = r.Str("kind");
  t.queue = r.Str("queue");
  t.status = r.Str("status");
  t.input_json = r.Str("input");
  t.output_json = r.Str("output");
  t.progress_json = r.Str("progress");
  t.error = r.Opt("error");
  t.workflow_id = r.Opt("workflow_id");
  t.workflow_sequence = r.OptInt("workflow_seq");
  t.attempt = static_cast<int>(r.Int("attempt"));
  t.max_attempts = static_cast<int>(r.Int("max_attempts"));
  t.created_at = r.Str("created_at");
  t.updated_at = r.Str("updated_at");
  t.completed_at = r.Opt("completed_at");
  t.lease_expires_at = r.Opt("lease_expires_at");
  t.traceparent = r.Str("traceparent");
  return t;
}

Event EventFrom(const db::Row& r) { return {r.Int("seq"), r.Str("type"), r.Str("payload"), r.Int("created_at_ms")}; }

namespace {
std::vector<std::string> Names(const std::string& json_array) {
  auto j = nlohmann::json::parse(json_array, nullptr, false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& item : j) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}
}  // namespace

WorkerView WorkerFrom(const db::Row& r) {
  WorkerView w;
  w.id = r.Str("id");
  w.name = r.Str("name");
  w.version = r.Str("version");
  w.queues = Names(r.Str("queues"));
  w.workflow_kinds = Names(r.Str("workflow_kinds"));
  w.task_kinds = Names(r.Str("task_kinds"));
  w.registered_at = r.Str("registered_at");
  w.last_heartbeat_at = r.Str("last_heartbeat_at");
  w.heartbeat_age_seconds = r.Double("heartbeat_age");
  return w;
}

std::string EncodeCursor(const std::string& created_at, const std::string& id) {
  return crypto::Hex(created_at + "|" + id);
}

std::optional<std::pair<std::string, std::string>> DecodeCursor(const std::string& cursor) {
  if (cursor.size() > 400) return std::nullopt;
  auto raw = crypto::FromHex(cursor);
  if (!raw) return std::nullopt;
  auto bar = raw->rfind('|');
  if (bar == std::string::npos || !IsUuid(raw->substr(bar + 1))) return std::nullopt;
  // The time as PostgreSQL printed it; anything else is refused here, not by the database.
  static const std::regex kTime(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?)");
  if (!std::regex_match(raw->substr(0, bar), kTime)) return std::nullopt;
  return std::make_pair(raw->substr(0, bar), raw->substr(bar + 1));
}

template <typename View>
StatusOr<Page<View>> ListPage(db::Pool& pool, const char* sql, View (*from)(const db::Row&), const std::string& tenant,
                              const ListFilter& f) {
  std::optional<std::string> after_ts, after_id;
  if (f.cursor) {
    auto c = DecodeCursor(*f.cursor);
    if (!c) return InvalidArgument("invalid cursor");
    after_ts = c->first;
    after_id = c->second;
  }
  int limit = std::clamp(f.limit, 1, 500);
  auto r = pool.Query(sql, {tenant, f.status, f.kind, after_ts, after_id, std::to_string(limit + 1)});
  if (!r.ok()) return r.status();
  Page<View> page;
  for (int i = 0; i < r->rows() && i < limit; ++i) page.items.push_back(from(db::Row(*r, i)));
  if (r->rows() > limit) page.next_cursor = EncodeCursor(page.items.back().created_at, page.items.back().id);
  return page;
}

template StatusOr<Page<TaskView>> ListPage(db::Pool&, const char*, TaskView (*)(const db::Row&), const std::string&,
                                           const ListFilter&);

}  // namespace flovyn::engine
