#include "engine/rest_support.h"

#include <algorithm>

#include "engine/limits.h"

namespace flovyn::engine {

using nlohmann::json;

StatusOr<Principal> RestContext::Who(const http::Request& req) {
  auto p = auth_.Authenticate(std::string(req.Header("authorization")), req.remote_address);
  if (!p.ok()) return p.status();
  if (p->kind == Principal::Kind::kWorkerToken) {
    return Status(StatusCode::kPermissionDenied, "worker tokens are accepted by the gRPC worker protocol only");
  }
  return p;
}

StatusOr<Caller> RestContext::Admit(const http::Request& req, Action action) {
  auto p = Who(req);
  if (!p.ok()) return p.status();
  if (Status a = Authorize(*p, action); !a.ok()) return a;
  Caller c{std::move(*p), TenantId()};
  auto it = req.path_params.find("tenant");
  if (it == req.path_params.end()) return c;
  auto id = tenancy_.Resolve(c.principal, it->second);
  if (!id.ok()) return id.status();
  c.tenant_id = TenantId(std::move(*id));
  return c;
}

StatusOr<json> JsonBody(const http::Request& req) {
  std::string_view ct = req.Header("content-type");
  if (ct.substr(0, ct.find(';')) != "application/json") {
    return Status(StatusCode::kInvalidArgument, "Content-Type must be application/json");
  }
  // Bounded while parsing: nothing below ever recurses deeper than json_max_depth.
  auto j = json_input::Parse(req.body, "the request body", limits::JsonBounds());
  if (!j.ok()) return j.status();
  if (!j->is_object()) return InvalidArgument("the request body must be a JSON object");
  return std::move(*j);
}

StatusOr<std::optional<std::string>> StringField(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return InvalidArgument(std::string("'") + name + "' must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

StatusOr<std::optional<int64_t>> IntField(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return InvalidArgument(std::string("'") + name + "' must be an integer");
  return std::optional<int64_t>(it->get<int64_t>());
}

std::string ValueField(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() ? "null" : it->dump();
}

namespace {
json Parsed(const std::string& text) { return text.empty() ? json(nullptr) : json::parse(text, nullptr, false); }
}  // namespace

json ToJson(const Tenant& t) {
  return {{"id", t.id}, {"slug", t.slug}, {"name", t.name}, {"owner", t.owner}, {"createdAt", t.created_at}};
}

json ToJson(const WorkflowView& w) {
  return {{"id", w.id},
          {"kind", w.kind},
          {"queue", w.queue},
          {"status", w.status},
          {"input", Parsed(w.input_json)},
          {"output", Parsed(w.output_json)},
          {"error", OrNull(w.error)},
          {"parentId", OrNull(w.parent_id)},
          {"idempotencyKey", OrNull(w.idempotency_key)},
          {"lastSequence", w.last_sequence},
          {"createdAt", w.created_at},
          {"updatedAt", w.updated_at},
          {"completedAt", OrNull(w.completed_at)},
          {"searchAttributes", Parsed(w.search_attributes_json)},
          {"problem", w.problem ? json{{"message", *w.problem}, {"at", OrNull(w.problem_at)}} : json(nullptr)}};
}

json ToJson(const TaskView& t) {
  return {{"id", t.id},
          {"kind", t.kind},
          {"queue", t.queue},
          {"status", t.status},
          {"input", Parsed(t.input_json)},
          {"output", Parsed(t.output_json)},
          {"progress", Parsed(t.progress_json)},
          {"error", OrNull(t.error)},
          {"workflowId", OrNull(t.workflow_id)},
          {"workflowSequence", OrNull(t.workflow_sequence)},
          {"attempt", t.attempt},
          {"maxAttempts", t.max_attempts},
          {"createdAt", t.created_at},
          {"updatedAt", t.updated_at},
          {"completedAt", OrNull(t.completed_at)},
          {"leaseExpiresAt", OrNull(t.lease_expires_at)}};
}

json ToJson(const Event& e) {
  return {{"sequence", e.sequence},
          {"type", e.type},
          {"payload", Parsed(e.payload_json)},
          {"createdAtMs", e.created_at_ms}};
}

json ToJson(const WorkerView& w) {
  return {{"id", w.id},
          {"name", w.name},
          {"version", w.version},
          {"queues", w.queues},
          {"workflowKinds", w.workflow_kinds},
          {"taskKinds", w.task_kinds},
          {"registeredAt", w.registered_at},
          {"lastHeartbeatAt", w.last_heartbeat_at},
          {"heartbeatAgeSeconds", w.heartbeat_age_seconds}};
}

http::Response Json(int status, const json& body) {
  return http::JsonResponse(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

StatusOr<ListFilter> ListFilterFrom(const http::Request& req, const std::vector<std::string>& statuses) {
  ListFilter f;
  auto q = [&](const char* k) -> std::optional<std::string> {
    auto it = req.query.find(k);
    if (it == req.query.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  if (auto limit = q("limit")) {
    try {
      size_t pos = 0;
      int n = std::stoi(*limit, &pos);
      if (pos != limit->size() || n < 1 || n > limits::kPageSize.value) throw std::out_of_range("limit");
      f.limit = n;
    } catch (const std::exception&) {
      return InvalidArgument("limit must be an integer from 1 to " + std::to_string(limits::kPageSize.value) +
                             " (limit page_size)");
    }
  }
  f.status = q("status");
  if (f.status && std::find(statuses.begin(), statuses.end(), *f.status) == statuses.end()) {
    std::string list;
    for (const auto& s : statuses) list += (list.empty() ? "" : ", ") + s;
    return InvalidArgument("status must be one of " + list);
  }
  f.kind = q("kind");
  f.cursor = q("cursor");
  f.queue = q("queue");
  f.parent = q("parent");
  f.query = q("q");
  return f;
}

StatusOr<WorkBody> ParseWorkBody(const http::Request& req) {
  auto body = JsonBody(req);
  if (!body.ok()) return body.status();
  auto kind = StringField(*body, "kind");
  if (!kind.ok()) return kind.status();
  auto queue = StringField(*body, "queue");
  if (!queue.ok()) return queue.status();
  if (!*kind) return InvalidArgument("'kind' is required");
  return WorkBody{*body, **kind, queue->value_or("default"), ValueField(*body, "input")};
}

}  // namespace flovyn::engine
