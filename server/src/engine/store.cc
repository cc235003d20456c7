#include "engine/store.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/limits.h"
#include "engine/work_hub.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

// The SQL below spells max_duration_ms out as a literal.
static_assert(limits::kMaxDurationMs.value == 31536000000);

using nlohmann::json;
using db::Params;
using db::Result;

namespace {

std::optional<std::string> Opt(const Result& r, int row, int col) { return r.GetOpt(row, col); }
std::string Str(const Result& r, int row, int col) { return std::string(r.Get(row, col)); }

std::string PgArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::optional<std::string> KindsParam(const std::vector<std::string>& kinds) {
  if (kinds.empty()) return std::nullopt;
  return PgArray(kinds);
}

std::vector<std::string> ParsePgArray(std::string_view s) {
  std::vector<std::string> out;
  if (s.size() < 2) return out;
  s = s.substr(1, s.size() - 2);
  std::string cur;
  bool quoted = false, any = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\' && i + 1 < s.size()) {
        cur += s[++i];
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any || !cur.empty()) out.push_back(cur);
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Status Invalid(const std::string& m) { return InvalidArgument(m); }

// The running span's context, handed to the worker that will run the work created now.
std::optional<std::string> CurrentTraceParent() {
  auto c = trace::Current();
  if (!c) return std::nullopt;
  return c->TraceParent();
}

constexpr const char* kWorkflowColumns =
    "id, kind, queue, status, coalesce(input::text, 'null'), coalesce(output::text, 'null'), error, parent_id, "
    "idempotency_key, last_seq, created_at::text, updated_at::text, completed_at::text, coalesce(traceparent, '')";

WorkflowView WorkflowFromRow(const Result& r, int i) {
  WorkflowView w;
  w.id = Str(r, i, 0);
  w.kind = Str(r, i, 1);
  w.queue = Str(r, i, 2);
  w.status = Str(r, i, 3);
  w.input_json = Str(r, i, 4);
  w.output_json = Str(r, i, 5);
  w.error = Opt(r, i, 6);
  w.parent_id = Opt(r, i, 7);
  w.idempotency_key = Opt(r, i, 8);
  w.last_sequence = r.GetInt(i, 9);
  w.created_at = Str(r, i, 10);
  w.updated_at = Str(r, i, 11);
  w.completed_at = Opt(r, i, 12);
  w.traceparent = Str(r, i, 13);
  return w;
}

constexpr const char* kTaskColumns =
    "id, kind, queue, status, coalesce(input::text, 'null'), coalesce(output::text, 'null'), "
    "coalesce(progress::text, 'null'), error, workflow_id, workflow_seq, attempt, max_attempts, created_at::text, "
    "updated_at::text, completed_at::text, lease_expires_at::text, coalesce(traceparent, '')";

TaskView TaskFromRow(const Result& r, int i) {
  TaskView t;
  t.id = Str(r, i, 0);
  t.kind = Str(r, i, 1);
  t.queue = Str(r, i, 2);
  t.status = Str(r, i, 3);
  t.input_json = Str(r, i, 4);
  t.output_json = Str(r, i, 5);
  t.progress_json = Str(r, i, 6);
  t.error = Opt(r, i, 7);
  t.workflow_id = Opt(r, i, 8);
  if (!r.IsNull(i, 9)) t.workflow_sequence = r.GetInt(i, 9);
  t.attempt = static_cast<int>(r.GetInt(i, 10));
  t.max_attempts = static_cast<int>(r.GetInt(i, 11));
  t.created_at = Str(r, i, 12);
  t.updated_at = Str(r, i, 13);
  t.completed_at = Opt(r, i, 14);
  t.lease_expires_at = Opt(r, i, 15);
  t.traceparent = Str(r, i, 16);
  return t;
}

// Cursor: "<created_at text>|<id>", base64url-free hex to keep it opaque but simple.
std::string EncodeCursor(const std::string& created_at, const std::string& id) {
  std::string raw = created_at + "|" + id, out;
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> DecodeCursor(const std::string& c) {
  if (c.size() % 2 != 0 || c.size() > 400) return std::nullopt;
  std::string raw;
  for (size_t i = 0; i < c.size(); i += 2) {
    auto h = [](char x) -> int {
      if (x >= '0' && x <= '9') return x - '0';
      if (x >= 'a' && x <= 'f') return x - 'a' + 10;
      return -1;
    };
    int hi = h(c[i]), lo = h(c[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    raw += static_cast<char>(hi * 16 + lo);
  }
  auto bar = raw.rfind('|');
  if (bar == std::string::npos || !IsUuid(raw.substr(bar + 1))) return std::nullopt;
  // The time as PostgreSQL printed it; anything else is refused here, not by the database.
  static const std::regex kTime(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?)");
  if (!std::regex_match(raw.substr(0, bar), kTime)) return std::nullopt;
  return std::make_pair(raw.substr(0, bar), raw.substr(bar + 1));
}

// Newest first, filtered by status and kind, continuing after the cursor. `table` and
// `columns` are constants of this file, never input.
template <typename View>
StatusOr<Page<View>> ListPage(db::Pool& pool, const char* table, const char* columns,
                              View (*from_row)(const Result&, int), const std::string& tenant, const ListFilter& f) {
  std::optional<std::string> after_ts, after_id;
  if (f.cursor) {
    auto c = DecodeCursor(*f.cursor);
    if (!c) return Invalid("invalid cursor");
    after_ts = c->first;
    after_id = c->second;
  }
  int limit = std::clamp(f.limit, 1, 500);
  auto r = pool.Query(std::string("SELECT ") + columns + " FROM " + table +
                          " WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR kind = $3) "
                          "AND ($4::timestamptz IS NULL OR (created_at, id) < ($4::timestamptz, $5::uuid)) "
                          "ORDER BY created_at DESC, id DESC LIMIT $6",
                      {tenant, f.status, f.kind, after_ts, after_id, std::to_string(limit + 1)});
  if (!r.ok()) return r.status();
  Page<View> page;
  for (int i = 0; i < r->rows() && i < limit; ++i) page.items.push_back(from_row(*r, i));
  if (r->rows() > limit) page.next_cursor = EncodeCursor(page.items.back().created_at, page.items.back().id);
  return page;
}


}  // namespace

StatusOr<std::string> NormaliseJson(const std::string& text, const std::string& field) {
  if (text.empty()) return std::string("null");
  auto parsed = json_input::Parse(text, field, limits::JsonBounds());
  if (!parsed.ok()) return parsed.status();
  return Dump(*parsed);
}

bool IsSlug(const std::string& s) {
  if (s.empty() || s.size() > 63 || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::string NewUuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 15];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

class Store::Unit {
 public:
  Unit(db::Tx& tx, EngineMetrics* metrics) : tx_(tx), metrics_(metrics) {}
  // Runs after a successful commit (metrics must not count rolled-back work).
  void AfterCommit(std::function<void(EngineMetrics&)> f) {
    if (metrics_) after_.push_back(std::move(f));
  }
  void RunAfterCommit() {
    for (auto& f : after_) f(*metrics_);
  }
  StatusOr<Result> Exec(std::string_view sql, const Params& params = {}) { return tx_.Exec(sql, params); }
  void Wake(const std::string& key) { wake_.insert(key); }
  // What a rolled-back savepoint must forget: its wake-ups and after-commit work.
  struct Mark {
    std::set<std::string> wakes;
    size_t after = 0;
  };
  Mark Checkpoint() const { return {wake_, after_.size()}; }
  void Rewind(Mark m) {
    wake_ = std::move(m.wakes);
    after_.resize(m.after);
  }
  const std::set<std::string>& wakes() const { return wake_; }
  db::Tx& tx() { return tx_; }

 private:
  db::Tx& tx_;
  EngineMetrics* metrics_;
  std::set<std::string> wake_;
  std::vector<std::function<void(EngineMetrics&)>> after_;
};

Store::Store(db::Pool& pool, WorkNotifier& notifier, StoreOptions options, EngineMetrics* metrics)
    : pool_(pool), notifier_(notifier), options_(options), metrics_(metrics) {}

namespace {
// "...Store::SubmitCommands(...)" -> "store.SubmitCommands"
std::string OperationName(const char* function) {
  std::string f = function;
  auto open = f.find('(');
  auto colons = f.rfind("::", open);
  return "store." + f.substr(colons == std::string::npos ? 0 : colons + 2, open - (colons == std::string::npos ? 0 : colons + 2));
}
}  // namespace

Status Store::Run(const std::function<Status(Unit&)>& work, std::source_location where) {
  trace::Span span(OperationName(where.function_name()), trace::Kind::kClient);
  span.SetAttribute("db.system", "postgresql");
  std::set<std::string> wakes;
  std::unique_ptr<Unit> committed;
  Status s = db::InTransaction(pool_, [&](db::Tx& tx) {
    auto u = std::make_unique<Unit>(tx, metrics_);
    Status st = work(*u);
    if (!st.ok()) return st;
    for (const auto& k : u->wakes()) {
      st = notifier_.InTransaction(tx, k);
      if (!st.ok()) return st;
    }
    wakes = u->wakes();
    committed = std::move(u);
    return Status::Ok();
  });
  if (s.ok()) {
    for (const auto& k : wakes) notifier_.AfterCommit(k);
    if (committed) committed->RunAfterCommit();
  } else if (s.code() == StatusCode::kInternal || s.code() == StatusCode::kUnavailable ||
             s.code() == StatusCode::kDeadlineExceeded) {
    span.SetError(s.message());
  }
  return s;
}

// ---------------------------------------------------------------- execution helpers

namespace {

struct Locked {
  std::string id, tenant_id, kind, queue, status;
  int64_t last_seq = 0;
  std::optional<std::string> lease_owner, parent_id, parent_name;
  bool cancel_requested = false;
  bool lease_valid = false;
  std::vector<Event> appended;
};

template <typename U>
StatusOr<Locked> Lock(U& u, const std::string& tenant, const std::string& id) {
  if (!IsUuid(id)) return NotFound("workflow execution not found");
  auto r = u.Exec(
      "SELECT id, tenant_id, kind, queue, status, last_seq, lease_owner, parent_id, parent_name, cancel_requested, "
      "coalesce(lease_expires_at > now(), false) FROM workflow_executions WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
      {id, tenant});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("workflow execution not found");
  Locked e;
  e.id = Str(*r, 0, 0);
  e.tenant_id = Str(*r, 0, 1);
  e.kind = Str(*r, 0, 2);
  e.queue = Str(*r, 0, 3);
  e.status = Str(*r, 0, 4);
  e.last_seq = r->GetInt(0, 5);
  e.lease_owner = Opt(*r, 0, 6);
  e.parent_id = Opt(*r, 0, 7);
  e.parent_name = Opt(*r, 0, 8);
  e.cancel_requested = r->Get(0, 9) == "t";
  e.lease_valid = r->Get(0, 10) == "t";
  return e;
}

template <typename U>
Status Append(U& u, Locked& e, const std::string& type, const json& payload) {
  int64_t seq = e.last_seq + 1;
  std::string body = Dump(payload);
  auto r = u.Exec(
      "INSERT INTO workflow_events (execution_id, seq, type, payload) VALUES ($1, $2, $3, $4::jsonb) "
      "RETURNING (extract(epoch from created_at) * 1000)::bigint",
      {e.id, std::to_string(seq), type, body});
  if (!r.ok()) return r.status();
  e.last_seq = seq;
  e.appended.push_back(Event{seq, type, body, r->GetInt(0, 0)});
  return Status::Ok();
}

// Moves buffered events into the history after the worker's own; returns whether any wakes.
template <typename U>
StatusOr<bool> FlushBuffer(U& u, Locked& e) {
  auto r = u.Exec("DELETE FROM workflow_event_buffer WHERE execution_id = $1 RETURNING id, type, payload::text, wakes",
                  {e.id});
  if (!r.ok()) return r.status();
  std::vector<std::tuple<int64_t, std::string, std::string, bool>> rows;
  for (int i = 0; i < r->rows(); ++i) {
    rows.emplace_back(r->GetInt(i, 0), Str(*r, i, 1), Str(*r, i, 2), r->Get(i, 3) == "t");
  }
  std::sort(rows.begin(), rows.end());
  bool wakes = false;
  for (auto& [id, type, payload, w] : rows) {
    Status s = Append(u, e, type, json::parse(payload));
    if (!s.ok()) return s;
    wakes = wakes || w;
  }
  return wakes;
}

}  // namespace

namespace {

// Writes the mutable columns of a locked execution back.
template <typename U>
Status Save(U& u, const Locked& e, std::chrono::milliseconds lease, bool keep_lease) {
  return u
      .Exec(
          "UPDATE workflow_executions SET status = $2, last_seq = $3, cancel_requested = $4, "
          "lease_owner = CASE WHEN $5 THEN lease_owner ELSE NULL END, "
          "lease_expires_at = CASE WHEN $5 THEN now() + $6 * interval '1 millisecond' ELSE NULL END, "
          "updated_at = now(), completed_at = CASE WHEN $2 IN ('COMPLETED','FAILED','CANCELLED') THEN now() END "
          "WHERE id = $1",
          {e.id, e.status, std::to_string(e.last_seq), e.cancel_requested ? "true" : "false",
           keep_lease ? "true" : "false", std::to_string(lease.count())})
      .status();
}

// Inserts a new execution with its WORKFLOW_STARTED event; returns its id.
template <typename U>
StatusOr<StartResult> Insert(U& u, const std::string& tenant, const StartWorkflowRequest& req,
                             const std::optional<std::string>& parent_id, const std::optional<std::string>& parent_name,
                             const std::optional<std::string>& id_hint) {
  std::string id = id_hint.value_or(NewUuid());
  auto r = u.Exec(
      "INSERT INTO workflow_executions (id, tenant_id, kind, queue, input, idempotency_key, parent_id, parent_name, "
      "traceparent, last_seq) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, 1) "
      "ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
      {id, tenant, req.kind, req.queue, req.input_json, req.idempotency_key, parent_id, parent_name,
       req.traceparent.empty() ? std::nullopt : std::optional<std::string>(req.traceparent)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    auto existing = u.Exec("SELECT id FROM workflow_executions WHERE tenant_id = $1 AND idempotency_key = $2",
                           {tenant, req.idempotency_key});
    if (!existing.ok()) return existing.status();
    if (existing->rows() == 0) return Status(StatusCode::kAborted, "idempotency key race; retry");
    return StartResult{Str(*existing, 0, 0), false};
  }
  json payload = {{"kind", req.kind}, {"queue", req.queue}, {"input", json::parse(req.input_json)}};
  if (parent_id) payload["parentId"] = *parent_id;
  auto ev = u.Exec("INSERT INTO workflow_events (execution_id, seq, type, payload) VALUES ($1, 1, 'WORKFLOW_STARTED', $2::jsonb)",
                   {id, Dump(payload)});
  if (!ev.ok()) return ev.status();
  u.Wake(WorkKey(tenant, req.queue, WorkKind::kWorkflow));
  u.AfterCommit([kind = req.kind](EngineMetrics& m) { m.started.With({kind})->Inc(); });
  return StartResult{id, true};
}

Status ValidateStart(StartWorkflowRequest& req) {
  if (Status v = limits::Name(req.kind, "kind"); !v.ok()) return v;
  if (req.queue.empty()) req.queue = "default";
  if (Status v = limits::Name(req.queue, "queue"); !v.ok()) return v;
  auto input = NormaliseJson(req.input_json, "input");
  if (!input.ok()) return input.status();
  req.input_json = *input;
  if (req.idempotency_key) {
    if (Status v = limits::Name(*req.idempotency_key, "idempotencyKey"); !v.ok()) return v;
  }
  return Status::Ok();
}

}  // namespace

// Delivers an event from outside the workflow (task result, timer, promise, child, signal).
// While a worker holds the execution it is buffered and appended after the worker's commands.
template <typename U>
static Status Deliver(U& u, const std::string& tenant, const std::string& execution_id, const std::string& type,
                      const json& payload, bool wakes) {
  auto e = Lock(u, tenant, execution_id);
  if (!e.ok()) return e.status();
  if (IsTerminal(e->status)) return FailedPrecondition("workflow execution is " + e->status);
  if (e->status == "RUNNING" && e->lease_valid) {
    return u
        .Exec("INSERT INTO workflow_event_buffer (execution_id, type, payload, wakes) VALUES ($1, $2, $3::jsonb, $4)",
              {e->id, type, Dump(payload), wakes ? "true" : "false"})
        .status();
  }
  Status s = Append(u, *e, type, payload);
  if (!s.ok()) return s;
  if (wakes && e->status == "WAITING") {
    e->status = "PENDING";
    u.Wake(WorkKey(tenant, e->queue, WorkKind::kWorkflow));
  }
  return u.Exec("UPDATE workflow_executions SET status = $2, last_seq = $3, updated_at = now() WHERE id = $1",
                {e->id, e->status, std::to_string(e->last_seq)})
      .status();
}

// Ends an execution that is not running on a worker: cancels its open work and tells its parent.
template <typename U>
static Status Finish(U& u, Locked& e, const std::string& status, const json& result) {
  e.status = status;
  u.AfterCommit([kind = e.kind, status](EngineMetrics& m) {
    (status == "COMPLETED" ? m.completed : status == "FAILED" ? m.failed : m.cancelled).With({kind})->Inc();
  });
  Status s;
  if (status == "COMPLETED") {
    s = u.Exec("UPDATE workflow_executions SET output = $2::jsonb WHERE id = $1", {e.id, Dump(result)}).status();
  } else {
    s = u.Exec("UPDATE workflow_executions SET error = $2 WHERE id = $1",
               {e.id, result.is_string() ? result.get<std::string>() : Dump(result)})
            .status();
  }
  if (!s.ok()) return s;
  s = u.Exec("UPDATE timers SET status = 'CANCELLED' WHERE execution_id = $1 AND status = 'PENDING'", {e.id}).status();
  if (!s.ok()) return s;
  s = u.Exec("UPDATE task_executions SET status = 'CANCELLED', cancel_requested = true, updated_at = now(), "
             "completed_at = now() WHERE workflow_id = $1 AND status IN ('PENDING','RUNNING')",
             {e.id})
          .status();
  if (!s.ok()) return s;
  s = u.Exec("DELETE FROM workflow_event_buffer WHERE execution_id = $1", {e.id}).status();
  if (!s.ok()) return s;
  if (e.parent_id) {
    json p = {{"childId", e.id}, {"name", e.parent_name.value_or("")}};
    std::string type;
    if (status == "COMPLETED") {
      type = "CHILD_WORKFLOW_COMPLETED";
      p["output"] = result;
    } else {
      type = "CHILD_WORKFLOW_FAILED";
      p["error"] = result.is_string() ? result.get<std::string>() : Dump(result);
      p["status"] = status;
    }
    Status d = Deliver(u, e.tenant_id, *e.parent_id, type, p, true);
    if (!d.ok() && d.code() != StatusCode::kFailedPrecondition) return d;  // a finished parent ignores it
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- tenants

namespace {
constexpr const char* kTenantColumns = "id, slug, name, created_at::text, owner";
Tenant TenantFromRow(const Result& r, int i) { return Tenant{Str(r, i, 0), Str(r, i, 1), Str(r, i, 2), Str(r, i, 3), Str(r, i, 4)}; }
}  // namespace

StatusOr<Tenant> Store::CreateTenant(const std::string& slug, const std::string& name, const std::string& owner,
                                     bool claim_legacy) {
  if (!IsSlug(slug)) return Invalid("slug must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit");
  if (Status v = limits::Name(name, "name"); !v.ok()) return v;
  if (owner != kStaticOwner && !IsUuid(owner)) return Invalid("a tenant's owner is 'static' or an organisation id");
  Tenant t;
  Status s = Run([&](Unit& u) {
    auto r = u.Exec(std::string("INSERT INTO tenants (slug, name, owner) VALUES ($1, $2, $3) "
                                "ON CONFLICT (slug) DO NOTHING RETURNING ") + kTenantColumns,
                    {slug, name, owner});
    if (!r.ok()) {
      // The slug is free but this organisation owns another tenant already.
      if (r.status().code() == StatusCode::kAlreadyExists) {
        return Status(StatusCode::kAlreadyExists, "this organisation already owns a tenant");
      }
      return r.status();
    }
    if (r->rows() == 1) {
      t = TenantFromRow(*r, 0);
      return Status::Ok();
    }
    // The slug is taken. The same owner asking again gets its tenant (a repeated sign-up step); an
    // organisation that predates owners claims its legacy tenant when asked to; anyone else gets
    // a conflict.
    std::string sql = claim_legacy
        ? std::string("UPDATE tenants SET owner = $2 WHERE slug = $1 AND owner IN ('legacy', $2) RETURNING ") + kTenantColumns
        : std::string("SELECT ") + kTenantColumns + " FROM tenants WHERE slug = $1 AND owner = $2";
    auto mine = owner == kStaticOwner ? StatusOr<Result>(Result()) : u.Exec(sql, {slug, owner});
    if (!mine.ok()) return mine.status();
    if (mine->rows() == 1) {
      t = TenantFromRow(*mine, 0);
      t.existed = true;
      return Status::Ok();
    }
    return Status(StatusCode::kAlreadyExists, "the tenant slug '" + slug + "' is taken");
  });
  if (!s.ok()) return s;
  return t;
}

StatusOr<Tenant> Store::TenantWhere(const char* column, const std::string& value) {
  auto r = pool_.Query(std::string("SELECT ") + kTenantColumns + " FROM tenants WHERE " + column + " = $1", {value});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("tenant not found");
  return TenantFromRow(*r, 0);
}

StatusOr<Tenant> Store::TenantBySlug(const std::string& slug) { return TenantWhere("slug", slug); }

StatusOr<Tenant> Store::TenantById(const std::string& id) {
  if (!IsUuid(id)) return NotFound("tenant not found");
  return TenantWhere("id", id);
}

StatusOr<Tenant> Store::TenantByOwner(const std::string& owner) {
  if (!IsUuid(owner)) return NotFound("tenant not found");
  return TenantWhere("owner", owner);
}

StatusOr<std::vector<Tenant>> Store::ListTenants() {
  auto r = pool_.Query(std::string("SELECT ") + kTenantColumns + " FROM tenants ORDER BY slug");
  if (!r.ok()) return r.status();
  std::vector<Tenant> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(TenantFromRow(*r, i));
  return out;
}

// ---------------------------------------------------------------- workflows

StatusOr<StartResult> Store::StartWorkflow(const std::string& tenant, const StartWorkflowRequest& in) {
  StartWorkflowRequest req = in;
  if (Status v = ValidateStart(req); !v.ok()) return v;
  StartResult result;
  Status s = Run([&](Unit& u) {
    auto r = Insert(u, tenant, req, std::nullopt, std::nullopt, std::nullopt);
    if (!r.ok()) return r.status();
    result = *r;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return result;
}

StatusOr<std::optional<WorkflowClaim>> Store::ClaimWorkflow(const std::string& tenant, const std::string& worker,
                                                            const std::string& queue,
                                                            const std::vector<std::string>& kinds) {
  std::optional<WorkflowClaim> claim;
  Status s = Run([&](Unit& u) {
    claim.reset();
    auto r = u.Exec(
        "WITH c AS (SELECT id, updated_at AS pending_since FROM workflow_executions WHERE tenant_id = $1 AND queue = $2 "
        "AND status = 'PENDING' AND ($3::text[] IS NULL OR kind = ANY($3::text[])) ORDER BY created_at LIMIT 1 "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE workflow_executions w SET status = 'RUNNING', lease_owner = $4, "
        "lease_expires_at = now() + $5 * interval '1 millisecond', updated_at = now() FROM c WHERE w.id = c.id "
        "RETURNING w.id, greatest(extract(epoch from clock_timestamp() - c.pending_since), 0)",
        {tenant, queue, KindsParam(kinds), worker, std::to_string(options_.workflow_lease.count())});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return Status::Ok();
    std::string id = Str(*r, 0, 0);
    u.AfterCommit([waited = std::stod(Str(*r, 0, 1))](EngineMetrics& m) {
      m.dispatch.With({"workflow"})->Observe(waited);
    });
    auto e = Lock(u, tenant, id);
    if (!e.ok()) return e.status();
    auto flushed = FlushBuffer(u, *e);
    if (!flushed.ok()) return flushed.status();
    if (!e->appended.empty()) {
      auto up = u.Exec("UPDATE workflow_executions SET last_seq = $2 WHERE id = $1", {id, std::to_string(e->last_seq)});
      if (!up.ok()) return up.status();
    }
    auto w = u.Exec(std::string("SELECT ") + kWorkflowColumns + " FROM workflow_executions WHERE id = $1", {id});
    if (!w.ok()) return w.status();
    WorkflowClaim c;
    c.execution = WorkflowFromRow(*w, 0);
    auto ev = u.Exec(
        "SELECT seq, type, payload::text, (extract(epoch from created_at) * 1000)::bigint FROM workflow_events "
        "WHERE execution_id = $1 ORDER BY seq",
        {id});
    if (!ev.ok()) return ev.status();
    for (int i = 0; i < ev->rows(); ++i) {
      c.events.push_back({ev->GetInt(i, 0), Str(*ev, i, 1), Str(*ev, i, 2), ev->GetInt(i, 3)});
    }
    auto st = u.Exec("SELECT key, value::text FROM workflow_state WHERE execution_id = $1 ORDER BY key", {id});
    if (!st.ok()) return st.status();
    for (int i = 0; i < st->rows(); ++i) c.state.emplace_back(Str(*st, i, 0), Str(*st, i, 1));
    claim = std::move(c);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return claim;
}

StatusOr<SubmitResult> Store::SubmitCommands(const std::string& tenant, const std::string& worker,
                                             const std::string& execution_id, int64_t expected_sequence,
                                             const std::vector<v1::WorkflowCommand>& commands) {
  SubmitResult result;
  Status s = Run([&](Unit& u) {
    auto locked = Lock(u, tenant, execution_id);
    if (!locked.ok()) return locked.status();
    Locked& e = *locked;
    if (e.status != "RUNNING" || e.lease_owner.value_or("") != worker) {
      return Status(StatusCode::kAborted, "execution is not held by this worker (its lease may have expired)");
    }
    if (e.last_seq != expected_sequence) {
      return Status(StatusCode::kAborted, "stale sequence: expected " + std::to_string(expected_sequence) +
                                              ", history is at " + std::to_string(e.last_seq));
    }
    bool suspend = false;
    std::optional<std::pair<std::string, json>> terminal;
    if (commands.size() > static_cast<size_t>(limits::kCommandsPerSubmit.value)) {
      return limits::Exceeded("commands", limits::kCommandsPerSubmit);
    }
    for (const auto& cmd : commands) {
      if (terminal) return Invalid("no command may follow CompleteWorkflow or FailWorkflow");
      Status st;
      switch (cmd.command_case()) {
        case v1::WorkflowCommand::kScheduleTask: {
          const auto& c = cmd.schedule_task();
          if (Status v = limits::Name(c.kind(), "ScheduleTask.kind"); !v.ok()) return v;
          std::string queue = c.queue().empty() ? e.queue : c.queue();
          if (Status v = limits::Name(queue, "ScheduleTask.queue"); !v.ok()) return v;
          auto input = NormaliseJson(c.input_json(), "ScheduleTask.input_json");
          if (!input.ok()) return input.status();
          int max_attempts = c.max_attempts() == 0 ? 3 : c.max_attempts();
          if (max_attempts < 1 || max_attempts > 1000) return Invalid("ScheduleTask.max_attempts must be 1 to 1000");
          for (auto [ms, field] : {std::pair{c.initial_backoff_ms(), "ScheduleTask.initial_backoff_ms"},
                                   std::pair{c.max_backoff_ms(), "ScheduleTask.max_backoff_ms"},
                                   std::pair{c.lease_ms(), "ScheduleTask.lease_ms"}}) {
            if (Status v = limits::Duration(ms, field); !v.ok()) return v;
          }
          std::string task_id = NewUuid();
          st = Append(u, e, "TASK_SCHEDULED",
                      {{"taskId", task_id}, {"kind", c.kind()}, {"queue", queue}, {"input", json::parse(*input)},
                       {"maxAttempts", max_attempts}});
          if (!st.ok()) return st;
          st = u.Exec(
                    "INSERT INTO task_executions (id, tenant_id, workflow_id, workflow_seq, kind, queue, input, "
                    "max_attempts, initial_backoff_ms, max_backoff_ms, lease_ms, traceparent) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12)",
                    {task_id, tenant, e.id, std::to_string(e.last_seq), c.kind(), queue, *input,
                     std::to_string(max_attempts), std::to_string(c.initial_backoff_ms() ? c.initial_backoff_ms() : 1000),
                     std::to_string(c.max_backoff_ms() ? c.max_backoff_ms() : 60000),
                     std::to_string(c.lease_ms() ? c.lease_ms() : 30000), CurrentTraceParent()})
                   .status();
          u.Wake(WorkKey(tenant, queue, WorkKind::kTask));
          break;
        }
        case v1::WorkflowCommand::kStartTimer: {
          const auto& c = cmd.start_timer();
          if (Status v = limits::Name(c.name(), "StartTimer.name"); !v.ok()) return v;
          if (Status v = limits::Duration(c.duration_ms(), "StartTimer.duration_ms"); !v.ok()) return v;
          auto r = u.Exec(
              "INSERT INTO timers (execution_id, name, fire_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond') "
              "ON CONFLICT DO NOTHING RETURNING (extract(epoch from fire_at) * 1000)::bigint",
              {e.id, c.name(), std::to_string(c.duration_ms())});
          if (!r.ok()) return r.status();
          if (r->rows() == 0) return Invalid("timer '" + c.name() + "' already exists");
          st = Append(u, e, "TIMER_STARTED", {{"name", c.name()}, {"durationMs", c.duration_ms()}, {"fireAtMs", r->GetInt(0, 0)}});
          break;
        }
        case v1::WorkflowCommand::kCancelTimer: {
          if (Status v = limits::Name(cmd.cancel_timer().name(), "CancelTimer.name"); !v.ok()) return v;
          auto r = u.Exec("UPDATE timers SET status = 'CANCELLED' WHERE execution_id = $1 AND name = $2 AND status = 'PENDING'",
                          {e.id, cmd.cancel_timer().name()});
          if (!r.ok()) return r.status();
          if (r->affected() == 0) return Invalid("no pending timer named '" + cmd.cancel_timer().name() + "'");
          st = Append(u, e, "TIMER_CANCELLED", {{"name", cmd.cancel_timer().name()}});
          break;
        }
        case v1::WorkflowCommand::kCreatePromise: {
          const auto& c = cmd.create_promise();
          if (Status v = limits::Name(c.name(), "CreatePromise.name"); !v.ok()) return v;
          if (Status v = limits::Duration(c.timeout_ms(), "CreatePromise.timeout_ms"); !v.ok()) return v;
          std::string pid = NewUuid();
          auto r = u.Exec(
              "INSERT INTO promises (id, tenant_id, execution_id, name, timeout_at) VALUES ($1, $2, $3, $4, "
              "CASE WHEN $5::bigint > 0 THEN now() + $5::bigint * interval '1 millisecond' END) ON CONFLICT DO NOTHING",
              {pid, tenant, e.id, c.name(), std::to_string(c.timeout_ms())});
          if (!r.ok()) return r.status();
          if (r->affected() == 0) return Invalid("promise '" + c.name() + "' already exists");
          json p = {{"promiseId", pid}, {"name", c.name()}};
          if (c.timeout_ms() > 0) p["timeoutMs"] = c.timeout_ms();
          st = Append(u, e, "PROMISE_CREATED", p);
          break;
        }
        case v1::WorkflowCommand::kScheduleChildWorkflow: {
          const auto& c = cmd.schedule_child_workflow();
          if (Status v = limits::Name(c.name(), "ScheduleChildWorkflow.name"); !v.ok()) return v;
          StartWorkflowRequest child{c.kind(), c.queue().empty() ? e.queue : c.queue(), c.input_json(), std::nullopt,
                                     CurrentTraceParent().value_or("")};
          if (Status v = ValidateStart(child); !v.ok()) return v;
          std::string child_id = NewUuid();
          st = Append(u, e, "CHILD_WORKFLOW_SCHEDULED",
                      {{"childId", child_id}, {"name", c.name()}, {"kind", child.kind}, {"queue", child.queue}});
          if (!st.ok()) return st;
          auto r = Insert(u, tenant, child, e.id, c.name(), child_id);
          st = r.status();
          break;
        }
        case v1::WorkflowCommand::kSetState: {
          const auto& c = cmd.set_state();
          if (Status v = limits::Name(c.key(), "SetState.key"); !v.ok()) return v;
          auto value = NormaliseJson(c.value_json(), "SetState.value_json");
          if (!value.ok()) return value.status();
          st = u.Exec("INSERT INTO workflow_state (execution_id, key, value) VALUES ($1, $2, $3::jsonb) "
                      "ON CONFLICT (execution_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                      {e.id, c.key(), *value})
                   .status();
          if (!st.ok()) return st;
          st = Append(u, e, "STATE_SET", {{"key", c.key()}, {"value", json::parse(*value)}});
          break;
        }
        case v1::WorkflowCommand::kClearState: {
          if (Status v = limits::Name(cmd.clear_state().key(), "ClearState.key"); !v.ok()) return v;
          st = u.Exec("DELETE FROM workflow_state WHERE execution_id = $1 AND key = $2", {e.id, cmd.clear_state().key()})
                   .status();
          if (!st.ok()) return st;
          st = Append(u, e, "STATE_CLEARED", {{"key", cmd.clear_state().key()}});
          break;
        }
        case v1::WorkflowCommand::kRecordOperation: {
          const auto& c = cmd.record_operation();
          if (Status v = limits::Name(c.name(), "RecordOperation.name"); !v.ok()) return v;
          auto result_json = NormaliseJson(c.result_json(), "RecordOperation.result_json");
          if (!result_json.ok()) return result_json.status();
          st = Append(u, e, "OPERATION_COMPLETED", {{"name", c.name()}, {"result", json::parse(*result_json)}});
          break;
        }
        case v1::WorkflowCommand::kCompleteWorkflow: {
          auto out = NormaliseJson(cmd.complete_workflow().output_json(), "CompleteWorkflow.output_json");
          if (!out.ok()) return out.status();
          terminal = std::make_pair(std::string("COMPLETED"), json::parse(*out));
          st = Append(u, e, "WORKFLOW_COMPLETED", {{"output", terminal->second}});
          break;
        }
        case v1::WorkflowCommand::kFailWorkflow: {
          if (Status v = limits::Text(cmd.fail_workflow().error(), "FailWorkflow.error"); !v.ok()) return v;
          terminal = std::make_pair(std::string("FAILED"), json(cmd.fail_workflow().error()));
          st = Append(u, e, "WORKFLOW_FAILED", {{"error", cmd.fail_workflow().error()}});
          break;
        }
        case v1::WorkflowCommand::kSuspend:
          suspend = true;
          break;
        default:
          return Invalid("empty or unknown workflow command");
      }
      if (!st.ok()) return st;
    }
    bool keep_lease = false;
    if (terminal) {
      Status st = Finish(u, e, terminal->first, terminal->second);
      if (!st.ok()) return st;
    } else {
      auto wakes = FlushBuffer(u, e);
      if (!wakes.ok()) return wakes.status();
      if (e.cancel_requested) {
        Status st = Append(u, e, "WORKFLOW_CANCELLED", json::object());
        if (!st.ok()) return st;
        st = Finish(u, e, "CANCELLED", json("cancelled"));
        if (!st.ok()) return st;
      } else if (suspend) {
        e.status = *wakes ? "PENDING" : "WAITING";
        if (*wakes) u.Wake(WorkKey(tenant, e.queue, WorkKind::kWorkflow));
      } else {
        keep_lease = true;  // the worker goes on with this execution
      }
    }
    Status st = Save(u, e, options_.workflow_lease, keep_lease);
    if (!st.ok()) return st;
    result = SubmitResult{e.last_seq, e.status, e.appended};
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return result;
}

Status Store::Signal(const std::string& tenant, const std::string& execution_id, const std::string& name,
                     const std::string& payload_json) {
  if (Status v = limits::Name(name, "signal name"); !v.ok()) return v;
  auto payload = NormaliseJson(payload_json, "payload");
  if (!payload.ok()) return payload.status();
  return Run([&](Unit& u) {
    return Deliver(u, tenant, execution_id, "SIGNAL_RECEIVED", {{"name", name}, {"payload", json::parse(*payload)}}, true);
  });
}

StatusOr<StartResult> Store::SignalWithStart(const std::string& tenant, const StartWorkflowRequest& in,
                                             const std::string& name, const std::string& payload_json) {
  StartWorkflowRequest req = in;
  if (Status v = ValidateStart(req); !v.ok()) return v;
  if (Status v = limits::Name(name, "signal name"); !v.ok()) return v;
  auto payload = NormaliseJson(payload_json, "payload");
  if (!payload.ok()) return payload.status();
  StartResult result;
  Status s = Run([&](Unit& u) {
    auto r = Insert(u, tenant, req, std::nullopt, std::nullopt, std::nullopt);
    if (!r.ok()) return r.status();
    result = *r;
    return Deliver(u, tenant, r->execution_id, "SIGNAL_RECEIVED", {{"name", name}, {"payload", json::parse(*payload)}},
                   true);
  });
  if (!s.ok()) return s;
  return result;
}

Status Store::Cancel(const std::string& tenant, const std::string& execution_id, const std::string& reason) {
  if (Status v = limits::Text(reason, "reason"); !v.ok()) return v;
  json requested = reason.empty() ? json::object() : json{{"reason", reason}};
  return Run([&](Unit& u) {
    auto locked = Lock(u, tenant, execution_id);
    if (!locked.ok()) return locked.status();
    Locked& e = *locked;
    if (IsTerminal(e.status)) return FailedPrecondition("workflow execution is already " + e.status);
    if (e.cancel_requested) return Status::Ok();
    e.cancel_requested = true;
    if (e.status == "RUNNING" && e.lease_valid) {
      // The worker learns at its next submit; the execution is cancelled then.
      Status st = u.Exec("INSERT INTO workflow_event_buffer (execution_id, type, payload, wakes) "
                         "VALUES ($1, 'CANCELLATION_REQUESTED', $2::jsonb, true)", {e.id, Dump(requested)}).status();
      if (!st.ok()) return st;
      return u.Exec("UPDATE workflow_executions SET cancel_requested = true WHERE id = $1", {e.id}).status();
    }
    Status st = Append(u, e, "CANCELLATION_REQUESTED", requested);
    if (st.ok()) st = Append(u, e, "WORKFLOW_CANCELLED", json::object());
    if (st.ok()) st = Finish(u, e, "CANCELLED", json("cancelled"));
    if (st.ok()) st = Save(u, e, options_.workflow_lease, false);
    if (!st.ok()) return st;
    // Children go with their parent.
    auto kids = u.Exec("SELECT id FROM workflow_executions WHERE parent_id = $1 AND status NOT IN ('COMPLETED','FAILED','CANCELLED')",
                       {e.id});
    if (!kids.ok()) return kids.status();
    for (int i = 0; i < kids->rows(); ++i) {
      auto child = Lock(u, tenant, Str(*kids, i, 0));
      if (!child.ok()) return child.status();
      child->cancel_requested = true;
      if (child->status == "RUNNING" && child->lease_valid) {
        st = u.Exec("UPDATE workflow_executions SET cancel_requested = true WHERE id = $1", {child->id}).status();
      } else {
        child->parent_id.reset();  // the parent is cancelled already
        st = Append(u, *child, "CANCELLATION_REQUESTED", json::object());
        if (st.ok()) st = Append(u, *child, "WORKFLOW_CANCELLED", json::object());
        if (st.ok()) st = Finish(u, *child, "CANCELLED", json("cancelled"));
        if (st.ok()) st = Save(u, *child, options_.workflow_lease, false);
      }
      if (!st.ok()) return st;
    }
    return Status::Ok();
  });
}

static Status SettlePromise(Store::Unit&, const std::string&, const std::string&, const std::string&, const json&);

Status Store::ResolvePromise(const std::string& tenant, const std::string& promise_id, const std::string& value_json) {
  auto value = NormaliseJson(value_json, "value");
  if (!value.ok()) return value.status();
  return Run([&](Unit& u) { return SettlePromise(u, tenant, promise_id, "RESOLVED", json::parse(*value)); });
}

Status Store::RejectPromise(const std::string& tenant, const std::string& promise_id, const std::string& error) {
  if (Status v = limits::Text(error, "error"); !v.ok()) return v;
  return Run([&](Unit& u) { return SettlePromise(u, tenant, promise_id, "REJECTED", json(error)); });
}

static Status SettlePromise(Store::Unit& u, const std::string& tenant, const std::string& promise_id,
                            const std::string& status, const json& value) {
  if (!IsUuid(promise_id)) return NotFound("promise not found");
  auto r = u.Exec("SELECT execution_id, name, status FROM promises WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                  {promise_id, tenant});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("promise not found");
  if (r->Get(0, 2) != "PENDING") return FailedPrecondition("promise is already " + Str(*r, 0, 2));
  std::string execution = Str(*r, 0, 0), name = Str(*r, 0, 1);
  Status s;
  if (status == "RESOLVED") {
    s = u.Exec("UPDATE promises SET status = 'RESOLVED', value = $2::jsonb, settled_at = now() WHERE id = $1",
               {promise_id, Dump(value)})
            .status();
  } else {
    s = u.Exec("UPDATE promises SET status = $3, error = $2, settled_at = now() WHERE id = $1",
               {promise_id, value.get<std::string>(), status})
            .status();
  }
  if (!s.ok()) return s;
  json p = {{"promiseId", promise_id}, {"name", name}};
  std::string type;
  if (status == "RESOLVED") {
    type = "PROMISE_RESOLVED";
    p["value"] = value;
  } else if (status == "REJECTED") {
    type = "PROMISE_REJECTED";
    p["error"] = value;
  } else {
    type = "PROMISE_TIMED_OUT";
  }
  return Deliver(u, tenant, execution, type, p, true);
}

StatusOr<WorkflowView> Store::GetWorkflow(const std::string& tenant, const std::string& id) {
  if (!IsUuid(id)) return NotFound("workflow execution not found");
  auto r = pool_.Query(std::string("SELECT ") + kWorkflowColumns + " FROM workflow_executions WHERE id = $1 AND tenant_id = $2",
                       {id, tenant});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("workflow execution not found");
  return WorkflowFromRow(*r, 0);
}

StatusOr<Page<WorkflowView>> Store::ListWorkflows(const std::string& tenant, const ListFilter& f) {
  return ListPage<WorkflowView>(pool_, "workflow_executions", kWorkflowColumns, WorkflowFromRow, tenant, f);
}

StatusOr<std::map<std::string, int64_t>> Store::CountWorkflows(const std::string& tenant) {
  auto r = pool_.Query("SELECT status, count(*) FROM workflow_executions WHERE tenant_id = $1 GROUP BY status", {tenant});
  if (!r.ok()) return r.status();
  std::map<std::string, int64_t> out;
  for (int i = 0; i < r->rows(); ++i) out[Str(*r, i, 0)] = r->GetInt(i, 1);
  return out;
}

StatusOr<std::vector<Event>> Store::Events(const std::string& tenant, const std::string& id, int64_t after) {
  if (!IsUuid(id)) return NotFound("workflow execution not found");
  auto r = pool_.Query(
      "SELECT e.seq, e.type, e.payload::text, (extract(epoch from e.created_at) * 1000)::bigint FROM workflow_events e "
      "JOIN workflow_executions w ON w.id = e.execution_id WHERE w.id = $1 AND w.tenant_id = $2 AND e.seq > $3 "
      "ORDER BY e.seq",
      {id, tenant, std::to_string(after)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    auto w = GetWorkflow(tenant, id);
    if (!w.ok()) return w.status();
  }
  std::vector<Event> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back({r->GetInt(i, 0), Str(*r, i, 1), Str(*r, i, 2), r->GetInt(i, 3)});
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> Store::State(const std::string& tenant,
                                                                        const std::string& id) {
  auto w = GetWorkflow(tenant, id);
  if (!w.ok()) return w.status();
  auto r = pool_.Query("SELECT key, value::text FROM workflow_state WHERE execution_id = $1 ORDER BY key", {id});
  if (!r.ok()) return r.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < r->rows(); ++i) out.emplace_back(Str(*r, i, 0), Str(*r, i, 1));
  return out;
}

// ---------------------------------------------------------------- tasks

StatusOr<std::string> Store::SubmitTask(const std::string& tenant, const SubmitTaskRequest& in) {
  SubmitTaskRequest req = in;
  if (Status v = limits::Name(req.kind, "kind"); !v.ok()) return v;
  if (req.queue.empty()) req.queue = "default";
  if (Status v = limits::Name(req.queue, "queue"); !v.ok()) return v;
  auto input = NormaliseJson(req.input_json, "input");
  if (!input.ok()) return input.status();
  if (req.max_attempts == 0) req.max_attempts = 3;
  if (req.max_attempts < 1 || req.max_attempts > limits::kMaxAttempts.value) {
    return Invalid("maxAttempts must be 1 to " + std::to_string(limits::kMaxAttempts.value) + " (limit max_attempts)");
  }
  for (auto [ms, field] : {std::pair{req.initial_backoff_ms, "initial_backoff_ms"},
                           std::pair{req.max_backoff_ms, "max_backoff_ms"}, std::pair{req.lease_ms, "lease_ms"}}) {
    if (Status v = limits::Duration(ms, field); !v.ok()) return v;
  }
  if (req.initial_backoff_ms <= 0) req.initial_backoff_ms = 1000;
  if (req.max_backoff_ms <= 0) req.max_backoff_ms = 60000;
  if (req.lease_ms <= 0) req.lease_ms = 30000;
  std::string id = NewUuid();
  Status s = Run([&](Unit& u) {
    Status st = u.Exec("INSERT INTO task_executions (id, tenant_id, kind, queue, input, max_attempts, initial_backoff_ms, "
                       "max_backoff_ms, lease_ms, traceparent) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)",
                       {id, tenant, req.kind, req.queue, *input, std::to_string(req.max_attempts),
                        std::to_string(req.initial_backoff_ms), std::to_string(req.max_backoff_ms),
                        std::to_string(req.lease_ms),
                        req.traceparent.empty() ? std::nullopt : std::optional<std::string>(req.traceparent)})
                    .status();
    u.Wake(WorkKey(tenant, req.queue, WorkKind::kTask));
    return st;
  });
  if (!s.ok()) return s;
  return id;
}

StatusOr<std::optional<TaskClaim>> Store::ClaimTask(const std::string& tenant, const std::string& worker,
                                                    const std::string& queue, const std::vector<std::string>& kinds) {
  std::optional<TaskClaim> claim;
  Status s = Run([&](Unit& u) {
    claim.reset();
    auto r = u.Exec(
        "WITH c AS (SELECT id, next_attempt_at AS available_since FROM task_executions WHERE tenant_id = $1 "
        "AND queue = $2 AND status = 'PENDING' AND next_attempt_at <= now() AND ($3::text[] IS NULL OR kind = ANY($3::text[])) "
        "ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
        "UPDATE task_executions t SET status = 'RUNNING', attempt = t.attempt + 1, lease_owner = $4, "
        "lease_expires_at = now() + least(t.lease_ms, 31536000000) * interval '1 millisecond', heartbeat_at = now(), updated_at = now() "
        "FROM c WHERE t.id = c.id RETURNING t.id, (extract(epoch from t.lease_expires_at) * 1000)::bigint, "
        "greatest(extract(epoch from clock_timestamp() - c.available_since), 0)",
        {tenant, queue, KindsParam(kinds), worker});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return Status::Ok();
    std::string id = Str(*r, 0, 0);
    int64_t lease_ms = r->GetInt(0, 1);
    u.AfterCommit([waited = std::stod(Str(*r, 0, 2))](EngineMetrics& m) { m.dispatch.With({"task"})->Observe(waited); });
    auto t = u.Exec(std::string("SELECT ") + kTaskColumns + " FROM task_executions WHERE id = $1", {id});
    if (!t.ok()) return t.status();
    TaskClaim c{TaskFromRow(*t, 0), lease_ms};
    if (c.task.workflow_id) {
      Status d = Deliver(u, tenant, *c.task.workflow_id, "TASK_STARTED",
                         {{"taskId", id}, {"attempt", c.task.attempt}, {"workerId", worker}}, false);
      if (!d.ok() && d.code() != StatusCode::kFailedPrecondition) return d;
    }
    claim = std::move(c);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return claim;
}

namespace {
struct HeldTask {
  std::optional<std::string> workflow_id;
  int64_t workflow_seq = 0;
  int attempt = 0, max_attempts = 0;
  int64_t initial_backoff_ms = 0, max_backoff_ms = 0;
};

// Locks a task the worker holds; ABORTED when the worker no longer holds it.
template <typename U>
StatusOr<HeldTask> LockHeld(U& u, const std::string& tenant, const std::string& worker, const std::string& task_id,
                            int attempt) {
  if (!IsUuid(task_id)) return NotFound("task not found");
  auto r = u.Exec(
      "SELECT status, attempt, lease_owner, workflow_id, coalesce(workflow_seq, 0), max_attempts, initial_backoff_ms, "
      "max_backoff_ms FROM task_executions WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
      {task_id, tenant});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("task not found");
  if (r->Get(0, 0) != "RUNNING") return Status(StatusCode::kAborted, "task is " + Str(*r, 0, 0) + ", not running");
  if (r->GetInt(0, 1) != attempt || r->Get(0, 2) != worker) {
    return Status(StatusCode::kAborted, "task is not held by this worker for this attempt (its lease may have expired)");
  }
  HeldTask h;
  h.workflow_id = Opt(*r, 0, 3);
  h.workflow_seq = r->GetInt(0, 4);
  h.attempt = attempt;
  h.max_attempts = static_cast<int>(r->GetInt(0, 5));
  h.initial_backoff_ms = r->GetInt(0, 6);
  h.max_backoff_ms = r->GetInt(0, 7);
  return h;
}

// In [0, max_duration_ms] whatever the stored values: computed in double (no overflow) and
// clamped before it becomes an interval.
int64_t Backoff(const HeldTask& h) {
  double ms = static_cast<double>(h.initial_backoff_ms) * std::pow(2.0, std::clamp(h.attempt - 1, 0, 62));
  double capped = std::min({ms, static_cast<double>(h.max_backoff_ms), static_cast<double>(limits::kMaxDurationMs.value)});
  return static_cast<int64_t>(std::max(0.0, capped));
}

// A failed attempt (reported, or its lease expired): retry later or fail for good.
template <typename U>
StatusOr<FailResult> FailAttempt(U& u, const std::string& tenant, const std::string& task_id, const HeldTask& h,
                                 const std::string& error, bool non_retryable) {
  FailResult out;
  if (!non_retryable && h.attempt < h.max_attempts) {
    int64_t backoff = Backoff(h);
    auto r = u.Exec(
        "UPDATE task_executions SET status = 'PENDING', error = $2, lease_owner = NULL, lease_expires_at = NULL, "
        "next_attempt_at = now() + $3 * interval '1 millisecond', updated_at = now() WHERE id = $1 "
        "RETURNING (extract(epoch from next_attempt_at) * 1000)::bigint",
        {task_id, error, std::to_string(backoff)});
    if (!r.ok()) return r.status();
    out.will_retry = true;
    out.next_attempt_at_ms = r->GetInt(0, 0);
    u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"retried"})->Inc(); });
    return out;
  }
  Status s = u.Exec("UPDATE task_executions SET status = 'FAILED', error = $2, lease_owner = NULL, lease_expires_at = NULL, "
                    "updated_at = now(), completed_at = now() WHERE id = $1",
                    {task_id, error})
                 .status();
  if (!s.ok()) return s;
  u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"failed"})->Inc(); });
  if (h.workflow_id) {
    s = Deliver(u, tenant, *h.workflow_id, "TASK_FAILED",
                {{"taskId", task_id}, {"scheduledSequence", h.workflow_seq}, {"error", error}, {"attempts", h.attempt}},
                true);
    if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;
  }
  return out;
}
}  // namespace

Status Store::CompleteTask(const std::string& tenant, const std::string& worker, const std::string& task_id,
                           int attempt, const std::string& output_json) {
  auto output = NormaliseJson(output_json, "output");
  if (!output.ok()) return output.status();
  return Run([&](Unit& u) {
    auto h = LockHeld(u, tenant, worker, task_id, attempt);
    if (!h.ok()) return h.status();
    Status s = u.Exec("UPDATE task_executions SET status = 'COMPLETED', output = $2::jsonb, error = NULL, "
                      "lease_owner = NULL, lease_expires_at = NULL, completed_count = completed_count + 1, "
                      "updated_at = now(), completed_at = now() WHERE id = $1",
                      {task_id, *output})
                   .status();
    if (!s.ok()) return s;
    u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"completed"})->Inc(); });
    if (h->workflow_id) {
      s = Deliver(u, tenant, *h->workflow_id, "TASK_COMPLETED",
                  {{"taskId", task_id}, {"scheduledSequence", h->workflow_seq}, {"output", json::parse(*output)}}, true);
      if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;
    }
    return Status::Ok();
  });
}

StatusOr<FailResult> Store::FailTask(const std::string& tenant, const std::string& worker, const std::string& task_id,
                                     int attempt, const std::string& error, bool non_retryable) {
  if (Status v = limits::Text(error, "error"); !v.ok()) return v;
  FailResult result;
  Status s = Run([&](Unit& u) {
    auto h = LockHeld(u, tenant, worker, task_id, attempt);
    if (!h.ok()) return h.status();
    auto r = FailAttempt(u, tenant, task_id, *h, error, non_retryable);
    if (!r.ok()) return r.status();
    result = *r;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return result;
}

StatusOr<int64_t> Store::HeartbeatTask(const std::string& tenant, const std::string& worker,
                                                        const std::string& task_id, int attempt,
                                                        const std::optional<std::string>& progress_json) {
  std::optional<std::string> progress;
  if (progress_json) {
    auto p = NormaliseJson(*progress_json, "progress");
    if (!p.ok()) return p.status();
    progress = *p;
  }
  int64_t out = 0;
  Status s = Run([&](Unit& u) {
    auto h = LockHeld(u, tenant, worker, task_id, attempt);
    if (!h.ok()) return h.status();
    auto r = u.Exec("UPDATE task_executions SET heartbeat_at = now(), lease_expires_at = now() + least(lease_ms, 31536000000) * interval "
                    "'1 millisecond', progress = coalesce($2::jsonb, progress), updated_at = now() WHERE id = $1 "
                    "RETURNING (extract(epoch from lease_expires_at) * 1000)::bigint",
                    {task_id, progress});
    if (!r.ok()) return r.status();
    out = r->GetInt(0, 0);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status Store::CancelTask(const std::string& tenant, const std::string& task_id, const std::string& reason) {
  if (Status v = limits::Text(reason, "reason"); !v.ok()) return v;
  if (!IsUuid(task_id)) return NotFound("task not found");
  return Run([&](Unit& u) {
    auto r = u.Exec("SELECT status, workflow_id, coalesce(workflow_seq, 0) FROM task_executions WHERE id = $1 AND "
                    "tenant_id = $2 FOR UPDATE",
                    {task_id, tenant});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return NotFound("task not found");
    std::string status = Str(*r, 0, 0);
    if (IsTerminal(status)) return FailedPrecondition("task is already " + status);
    Status s = u.Exec("UPDATE task_executions SET status = 'CANCELLED', cancel_requested = true, error = $2, "
                      "lease_owner = NULL, lease_expires_at = NULL, updated_at = now(), completed_at = now() WHERE id = $1",
                      {task_id, reason.empty() ? std::string("cancelled") : reason})
                   .status();
    if (!s.ok()) return s;
    u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"cancelled"})->Inc(); });
    if (!r->IsNull(0, 1)) {
      s = Deliver(u, tenant, Str(*r, 0, 1), "TASK_CANCELLED",
                  {{"taskId", task_id}, {"scheduledSequence", r->GetInt(0, 2)}, {"reason", reason}}, true);
      if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;
    }
    return Status::Ok();
  });
}

StatusOr<TaskView> Store::GetTask(const std::string& tenant, const std::string& id) {
  if (!IsUuid(id)) return NotFound("task not found");
  auto r = pool_.Query(std::string("SELECT ") + kTaskColumns + " FROM task_executions WHERE id = $1 AND tenant_id = $2",
                       {id, tenant});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("task not found");
  return TaskFromRow(*r, 0);
}

StatusOr<Page<TaskView>> Store::ListTasks(const std::string& tenant, const ListFilter& f) {
  return ListPage<TaskView>(pool_, "task_executions", kTaskColumns, TaskFromRow, tenant, f);
}

// ---------------------------------------------------------------- workers

StatusOr<std::string> Store::RegisterWorker(const std::string& tenant, const v1::RegisterWorkerRequest& req) {
  if (Status v = limits::Name(req.name(), "worker name"); !v.ok()) return v;
  if (!req.version().empty()) {
    if (Status v = limits::Name(req.version(), "worker version"); !v.ok()) return v;
  }
  for (const auto& [list, field] : {std::pair{&req.queues(), "queues"}, std::pair{&req.workflow_kinds(), "workflow_kinds"},
                                    std::pair{&req.task_kinds(), "task_kinds"}}) {
    if (Status v = limits::Items(static_cast<size_t>(list->size()), field); !v.ok()) return v;
    for (const auto& item : *list) {
      if (Status v = limits::Name(item, field); !v.ok()) return v;
    }
  }
  auto list = [](const auto& items) { return PgArray(std::vector<std::string>(items.begin(), items.end())); };
  auto r = pool_.Query("INSERT INTO workers (tenant_id, name, version, queues, workflow_kinds, task_kinds) "
                       "VALUES ($1, $2, $3, $4::text[], $5::text[], $6::text[]) RETURNING id",
                       {tenant, req.name(), req.version(), list(req.queues()), list(req.workflow_kinds()),
                        list(req.task_kinds())});
  if (!r.ok()) return r.status();
  return Str(*r, 0, 0);
}

Status Store::WorkerHeartbeat(const std::string& tenant, const std::string& worker_id) {
  if (!IsUuid(worker_id)) return NotFound("worker not found");
  auto r = pool_.Query("UPDATE workers SET last_heartbeat_at = now() WHERE id = $1 AND tenant_id = $2",
                       {worker_id, tenant});
  if (!r.ok()) return r.status();
  if (r->affected() == 0) return NotFound("worker not found");
  return Status::Ok();
}

StatusOr<std::vector<WorkerView>> Store::ListWorkers(const std::string& tenant) {
  auto r = pool_.Query("SELECT id, name, version, queues::text, workflow_kinds::text, task_kinds::text, "
                       "registered_at::text, last_heartbeat_at::text, extract(epoch from now() - last_heartbeat_at) "
                       "FROM workers WHERE tenant_id = $1 ORDER BY last_heartbeat_at DESC LIMIT 1000",
                       {tenant});
  if (!r.ok()) return r.status();
  std::vector<WorkerView> out;
  for (int i = 0; i < r->rows(); ++i) {
    WorkerView w;
    w.id = Str(*r, i, 0);
    w.name = Str(*r, i, 1);
    w.version = Str(*r, i, 2);
    w.queues = ParsePgArray(r->Get(i, 3));
    w.workflow_kinds = ParsePgArray(r->Get(i, 4));
    w.task_kinds = ParsePgArray(r->Get(i, 5));
    w.registered_at = Str(*r, i, 6);
    w.last_heartbeat_at = Str(*r, i, 7);
    w.heartbeat_age_seconds = std::stod(Str(*r, i, 8));
    out.push_back(std::move(w));
  }
  return out;
}

// ---------------------------------------------------------------- background work

StatusOr<int> Store::Sweep(const char* name, const char* select_sql, int limit,
                           const std::function<Status(Unit&, const db::Result&, int)>& per_row,
                           std::source_location where) {
  int n = 0;
  std::vector<std::string> failures;
  Status s = Run(
      [&](Unit& u) {
        n = 0;
        failures.clear();
        auto r = u.Exec(select_sql, {std::to_string(limit)});
        if (!r.ok()) return r.status();
        // Each row in its own savepoint: a row that fails is rolled back alone, logged, counted and
        // skipped, so one bad row never stops the sweep for every other row and tenant.
        for (int i = 0; i < r->rows(); ++i) {
          Status sp = u.Exec("SAVEPOINT sweep_row").status();
          if (!sp.ok()) return sp;
          auto mark = u.Checkpoint();
          Status st = per_row(u, *r, i);
          if (st.ok()) {
            if (Status rel = u.Exec("RELEASE SAVEPOINT sweep_row").status(); !rel.ok()) return rel;
            ++n;
            continue;
          }
          if (st.code() == StatusCode::kUnavailable) return st;  // the database, not the row
          u.Rewind(std::move(mark));
          if (Status back = u.Exec("ROLLBACK TO SAVEPOINT sweep_row").status(); !back.ok()) return back;
          failures.push_back(std::string(r->Get(i, 0)) + ": " + st.message());
        }
        return Status::Ok();
      },
      where);
  if (!s.ok()) return s;
  for (const auto& f : failures) spdlog::error("sweep {} skipped row {}", name, f);
  if (metrics_ && !failures.empty()) metrics_->sweep_errors.With({name})->Inc(static_cast<double>(failures.size()));
  return n;
}

StatusOr<int> Store::FireDueTimers(int limit) {
  return Sweep("timers",
      "SELECT t.execution_id, t.name, w.tenant_id, extract(epoch from clock_timestamp() - t.fire_at) FROM timers t "
      "JOIN workflow_executions w ON w.id = t.execution_id WHERE t.status = 'PENDING' AND t.fire_at <= now() "
      "ORDER BY t.fire_at LIMIT $1 FOR UPDATE OF t SKIP LOCKED",
      limit, [](Unit& u, const db::Result& r, int i) {
        std::string exec = Str(r, i, 0), name = Str(r, i, 1), tenant = Str(r, i, 2);
        Status st = u.Exec("UPDATE timers SET status = 'FIRED', fired_at = now() WHERE execution_id = $1 AND name = $2",
                           {exec, name})
                        .status();
        if (!st.ok()) return st;
        st = Deliver(u, tenant, exec, "TIMER_FIRED", {{"name", name}}, true);
        if (!st.ok() && st.code() != StatusCode::kFailedPrecondition) return st;
        u.AfterCommit([lag = std::stod(Str(r, i, 3))](EngineMetrics& m) {
          m.timer_lag.Observe(lag);
          m.timers_fired.Inc();
        });
        return Status::Ok();
      });
}

StatusOr<int> Store::TimeOutPromises(int limit) {
  return Sweep("promise-timeouts",
      "SELECT id, tenant_id FROM promises WHERE status = 'PENDING' AND timeout_at <= now() "
      "ORDER BY timeout_at LIMIT $1 FOR UPDATE SKIP LOCKED",
      limit, [](Unit& u, const db::Result& r, int i) {
        Status st = SettlePromise(u, Str(r, i, 1), Str(r, i, 0), "TIMED_OUT", json("timed out"));
        return st.code() == StatusCode::kFailedPrecondition ? Status::Ok() : st;
      });
}

StatusOr<int> Store::ExpireWorkflowLeases(int limit) {
  return Sweep("workflow-leases",
      "SELECT id, tenant_id FROM workflow_executions WHERE status = 'RUNNING' AND lease_expires_at < now() "
      "LIMIT $1 FOR UPDATE SKIP LOCKED",
      limit, [this](Unit& u, const db::Result& r, int i) {
        auto e = Lock(u, Str(r, i, 1), Str(r, i, 0));
        if (!e.ok()) return e.status();
        auto flushed = FlushBuffer(u, *e);
        if (!flushed.ok()) return flushed.status();
        e->status = "PENDING";
        Status st = Save(u, *e, options_.workflow_lease, false);
        if (!st.ok()) return st;
        u.Wake(WorkKey(e->tenant_id, e->queue, WorkKind::kWorkflow));
        u.AfterCommit([](EngineMetrics& m) { m.lease_expiries.With({"workflow"})->Inc(); });
        return Status::Ok();
      });
}

StatusOr<int> Store::ExpireTaskLeases(int limit) {
  return Sweep("task-leases",
      "SELECT id, tenant_id, queue, attempt, lease_owner FROM task_executions WHERE status = 'RUNNING' "
      "AND lease_expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED",
      limit, [](Unit& u, const db::Result& r, int i) {
        std::string id = Str(r, i, 0), tenant = Str(r, i, 1), queue = Str(r, i, 2);
        auto h = LockHeld(u, tenant, Str(r, i, 4), id, static_cast<int>(r.GetInt(i, 3)));
        if (!h.ok()) return h.status();
        auto f = FailAttempt(u, tenant, id, *h, "lease expired (no heartbeat or result in time)", false);
        if (!f.ok()) return f.status();
        if (f->will_retry) u.Wake(WorkKey(tenant, queue, WorkKind::kTask));
        u.AfterCommit([](EngineMetrics& m) { m.lease_expiries.With({"task"})->Inc(); });
        return Status::Ok();
      });
}

Status Store::RefreshQueueDepth() {
  if (metrics_ == nullptr) return Status::Ok();
  // Queue names come from the network: the deepest kDepthQueues queues of each kind get their
  // own series and the rest are summed into queue="other", so the series stay bounded.
  auto r = pool_.Query(
      "WITH d AS (SELECT 'task' AS kind, queue, count(*) AS n FROM task_executions WHERE status = 'PENDING' "
      "AND next_attempt_at <= now() GROUP BY queue UNION ALL SELECT 'workflow', queue, count(*) FROM "
      "workflow_executions WHERE status = 'PENDING' GROUP BY queue), "
      "r AS (SELECT kind, queue, n, row_number() OVER (PARTITION BY kind ORDER BY n DESC, queue) AS rank FROM d) "
      "SELECT kind, CASE WHEN rank <= $1 THEN queue ELSE 'other' END, sum(n)::bigint FROM r GROUP BY 1, 2",
      {std::to_string(kDepthQueues)});
  if (!r.ok()) return r.status();
  std::set<std::pair<std::string, std::string>> seen;
  for (int i = 0; i < r->rows(); ++i) {
    seen.emplace(Str(*r, i, 0), Str(*r, i, 1));
    metrics_->depth.With({Str(*r, i, 0), Str(*r, i, 1)})->Set(static_cast<double>(r->GetInt(i, 2)));
  }
  for (const auto& [kind, queue] : depth_labels_) {
    if (seen.count({kind, queue})) continue;
    // A queue that emptied reads 0 until the next refresh, then its series goes.
    if (queue == "other" || zeroed_.count({kind, queue})) metrics_->depth.Remove({kind, queue});
    else metrics_->depth.With({kind, queue})->Set(0);
  }
  std::set<std::pair<std::string, std::string>> zeroed;
  for (const auto& l : depth_labels_) {
    if (!seen.count(l) && !zeroed_.count(l) && l.second != "other") zeroed.insert(l);
  }
  zeroed_ = std::move(zeroed);
  depth_labels_ = seen;
  depth_labels_.insert(zeroed_.begin(), zeroed_.end());
  return Status::Ok();
}

}  // namespace flovyn::engine
