// What every REST handler of the engine needs: the caller's tenant (authenticated, and matched
// against the {tenant} in the path), a JSON body checked for shape, and JSON views of the model.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/auth.h"
#include "engine/model.h"
#include "engine/policy.h"
#include "engine/tenancy.h"
#include "flovyn/http/message.h"

namespace flovyn::engine {

// An admitted REST caller: who, and the tenant the path names (empty when it names none).
struct Caller {
  Principal principal;
  TenantId tenant_id;
};

class RestContext {
 public:
  RestContext(AuthChain& auth, Tenancy& tenancy) : auth_(auth), tenancy_(tenancy) {}
  // REST accepts API keys (and console JWTs); worker tokens are for the gRPC protocol.
  StatusOr<Principal> Who(const http::Request& req);
  // Authenticates, authorises `action` (policy.h) and resolves the path's {tenant} against the
  // caller: 401, 403, or the admitted caller.
  StatusOr<Caller> Admit(const http::Request& req, Action action);
  Tenancy& tenancy() { return tenancy_; }

 private:
  AuthChain& auth_;
  Tenancy& tenancy_;
};

// The body as a JSON object: 415 for another content type, 400 for malformed JSON or UTF-8.
StatusOr<nlohmann::json> JsonBody(const http::Request& req);
// Field accessors: absent -> nullopt (or the default); wrong type -> INVALID_ARGUMENT naming the field.
StatusOr<std::optional<std::string>> StringField(const nlohmann::json& body, const char* name);
StatusOr<std::optional<int64_t>> IntField(const nlohmann::json& body, const char* name);
// Any JSON value, as text ("null" when absent).
std::string ValueField(const nlohmann::json& body, const char* name);
// A body naming work to create: JSON with a required "kind", a "queue" ("default" when absent)
// and an "input" value.
struct WorkBody {
  nlohmann::json body;
  std::string kind, queue, input_json;
};
StatusOr<WorkBody> ParseWorkBody(const http::Request& req);

nlohmann::json ToJson(const Tenant& t);
nlohmann::json ToJson(const WorkflowView& w);
nlohmann::json ToJson(const TaskView& t);
nlohmann::json ToJson(const Event& e);
nlohmann::json ToJson(const WorkerView& w);

http::Response Json(int status, const nlohmann::json& body);
// The value, or JSON null when absent.
template <typename T>
nlohmann::json OrNull(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
// Parses limit/cursor/status/kind query parameters; INVALID_ARGUMENT on bad values.
StatusOr<ListFilter> ListFilterFrom(const http::Request& req, const std::vector<std::string>& statuses);

}  // namespace flovyn::engine
