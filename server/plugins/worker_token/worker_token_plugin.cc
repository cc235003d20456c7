#include "worker_token_plugin.h"

#include "engine/values.h"
#include "flovyn/http/router.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> worker_token_migrations();
}

namespace flovyn::plugins {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {
json TokenJson(const WorkerTokenInfo& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"prefix", t.prefix},
          {"createdAt", t.created_at},
          {"lastUsedAt", engine::OrNull(t.last_used_at)},
          {"revokedAt", engine::OrNull(t.revoked_at)}};
}
}  // namespace

std::vector<migrate::Migration> WorkerTokenPlugin::migrations() const { return generated::worker_token_migrations(); }

Status WorkerTokenPlugin::Start(const runtime::Context& ctx) {
  auto* auth = ctx.services.Find<engine::AuthChain>();
  rest_ = ctx.services.Find<engine::RestContext>();
  if (auth == nullptr || rest_ == nullptr) {
    return FailedPrecondition("the worker-token plugin needs the engine, started before it");
  }
  store_ = std::make_unique<WorkerTokenStore>(ctx.pool);
  if (secret_.empty()) return Status::Ok();  // security off: tokens cannot be verified, nor needed
  authenticator_ = std::make_shared<WorkerTokenAuthenticator>(*store_, secret_);
  auth->Add(authenticator_);
  return Status::Ok();
}

Response WorkerTokenPlugin::Create(const Request& req) {
  auto caller = rest_->Admit(req, engine::Action::kWorkerTokensManage);
  if (!caller.ok()) return http::ErrorResponse(caller.status());
  auto body = engine::JsonBody(req);
  if (!body.ok()) return http::ErrorResponse(body.status());
  auto name = engine::StringField(*body, "name");
  if (!name.ok()) return http::ErrorResponse(name.status());
  if (!*name || (*name)->empty() || (*name)->size() > 200) {
    return http::ErrorResponse(InvalidArgument("'name' is required (1 to 200 characters)"));
  }
  if (secret_.empty()) {
    return http::ErrorResponse(FailedPrecondition("worker tokens need WORKER_TOKEN_SECRET to be set"));
  }
  std::string token = NewWorkerToken();
  auto created = store_->Create(caller->tenant_id, **name, TokenHash(secret_, token), token.substr(0, 12));
  if (!created.ok()) return http::ErrorResponse(created.status());
  json out = TokenJson(*created);
  out.erase("lastUsedAt");
  out.erase("revokedAt");
  out["token"] = token;
  return engine::Json(201, out);
}

Response WorkerTokenPlugin::List(const Request& req) {
  auto caller = rest_->Admit(req, engine::Action::kWorkerTokensRead);
  if (!caller.ok()) return http::ErrorResponse(caller.status());
  auto tokens = store_->List(caller->tenant_id);
  if (!tokens.ok()) return http::ErrorResponse(tokens.status());
  json items = json::array();
  for (const auto& t : *tokens) items.push_back(TokenJson(t));
  return engine::Json(200, {{"items", items}});
}

Response WorkerTokenPlugin::Revoke(const Request& req) {
  auto caller = rest_->Admit(req, engine::Action::kWorkerTokensManage);
  if (!caller.ok()) return http::ErrorResponse(caller.status());
  const std::string& id = req.path_params.at("id");
  if (!engine::IsUuid(id)) return http::ErrorResponse(NotFound("worker token not found"));
  auto revoked = store_->Revoke(caller->tenant_id, id);
  if (!revoked.ok()) return http::ErrorResponse(revoked.status());
  if (!*revoked) return http::ErrorResponse(NotFound("worker token not found"));
  if (authenticator_) authenticator_->Invalidate();
  return engine::Json(200, {{"id", id}, {"revokedAt", **revoked}});
}

void WorkerTokenPlugin::AddRoutes(http::Router& r) {
  auto route = [this](Response (WorkerTokenPlugin::*fn)(const Request&)) {
    return http::Sync([this, fn](const Request& req) { return (this->*fn)(req); });
  };
  auto permission = [](engine::Action a) { return std::string(engine::ActionName(a)); };
  r.Add("POST", "/api/tenants/{tenant}/worker-tokens", route(&WorkerTokenPlugin::Create),
        {.summary = "Create a worker token; the token is shown only in this response",
         .tag = "worker-tokens",
         .has_body = true,
         .permission = permission(engine::Action::kWorkerTokensManage)});
  r.Add("GET", "/api/tenants/{tenant}/worker-tokens", route(&WorkerTokenPlugin::List),
        {.summary = "List worker tokens (never the tokens themselves)",
         .tag = "worker-tokens",
         .permission = permission(engine::Action::kWorkerTokensRead)});
  r.Add("DELETE", "/api/tenants/{tenant}/worker-tokens/{id}", route(&WorkerTokenPlugin::Revoke),
        {.summary = "Revoke a worker token",
         .tag = "worker-tokens",
         .permission = permission(engine::Action::kWorkerTokensManage)});
}

}  // namespace flovyn::plugins
