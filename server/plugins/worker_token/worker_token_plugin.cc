#include "worker_token_plugin.h"

#include "flovyn/http/router.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> worker_token_migrations();
}

namespace flovyn::plugins {

using http::Request;
using http::Response;
using nlohmann::json;

std::vector<migrate::Migration> WorkerTokenPlugin::migrations() const { return generated::worker_token_migrations(); }

Status WorkerTokenPlugin::Start(const runtime::Context& ctx) {
  pool_ = &ctx.pool;
  if (secret_.empty()) return Status::Ok();  // security off: tokens cannot be verified, nor needed
  authenticator_ = std::make_shared<engine::WorkerTokenAuthenticator>(ctx.pool, secret_);
  engine_.auth().Add(authenticator_);
  return Status::Ok();
}

void WorkerTokenPlugin::AddRoutes(http::Router& r) {
  r.Add("POST", "/api/tenants/{tenant}/worker-tokens", http::Sync([this](const Request& req) -> Response {
          auto caller = engine_.rest().Admit(req, engine::Action::kWorkerTokensManage);
          if (!caller.ok()) return http::ErrorResponse(caller.status());
          const std::string* tenant = &caller->tenant_id;
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
          std::string token = engine::NewWorkerToken();
          auto row = pool_->Query(
              "INSERT INTO worker_tokens (tenant_id, name, token_hash, prefix) VALUES ($1, $2, $3, $4) "
              "RETURNING id, created_at::text",
              {*tenant, **name, engine::TokenHash(secret_, token), token.substr(0, 12)});
          if (!row.ok()) return http::ErrorResponse(row.status());
          return engine::Json(201, {{"id", std::string(row->Get(0, 0))},
                                    {"name", **name},
                                    {"token", token},
                                    {"prefix", token.substr(0, 12)},
                                    {"createdAt", std::string(row->Get(0, 1))}});
        }),
        {.summary = "Create a worker token; the token is shown only in this response",
         .tag = "worker-tokens",
         .has_body = true,
         .permission = std::string(engine::ActionName(engine::Action::kWorkerTokensManage))});

  r.Add("GET", "/api/tenants/{tenant}/worker-tokens", http::Sync([this](const Request& req) -> Response {
          auto caller = engine_.rest().Admit(req, engine::Action::kWorkerTokensRead);
          if (!caller.ok()) return http::ErrorResponse(caller.status());
          const std::string* tenant = &caller->tenant_id;
          auto rows = pool_->Query(
              "SELECT id, name, prefix, created_at::text, last_used_at::text, revoked_at::text "
              "FROM worker_tokens WHERE tenant_id = $1 ORDER BY created_at DESC",
              {*tenant});
          if (!rows.ok()) return http::ErrorResponse(rows.status());
          json items = json::array();
          for (int i = 0; i < rows->rows(); ++i) {
            auto opt = [&](int c) { return rows->IsNull(i, c) ? json(nullptr) : json(std::string(rows->Get(i, c))); };
            items.push_back({{"id", std::string(rows->Get(i, 0))},
                             {"name", std::string(rows->Get(i, 1))},
                             {"prefix", std::string(rows->Get(i, 2))},
                             {"createdAt", std::string(rows->Get(i, 3))},
                             {"lastUsedAt", opt(4)},
                             {"revokedAt", opt(5)}});
          }
          return engine::Json(200, {{"items", items}});
        }),
        {.summary = "List worker tokens (never the tokens themselves)",
         .tag = "worker-tokens",
         .permission = std::string(engine::ActionName(engine::Action::kWorkerTokensRead))});

  r.Add("DELETE", "/api/tenants/{tenant}/worker-tokens/{id}", http::Sync([this](const Request& req) -> Response {
          auto caller = engine_.rest().Admit(req, engine::Action::kWorkerTokensManage);
          if (!caller.ok()) return http::ErrorResponse(caller.status());
          const std::string* tenant = &caller->tenant_id;
          const std::string& id = req.path_params.at("id");
          if (!engine::IsUuid(id)) return http::ErrorResponse(NotFound("worker token not found"));
          auto r2 = pool_->Query(
              "UPDATE worker_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND "
              "tenant_id = $2 RETURNING revoked_at::text",
              {id, *tenant});
          if (!r2.ok()) return http::ErrorResponse(r2.status());
          if (r2->rows() == 0) return http::ErrorResponse(NotFound("worker token not found"));
          if (authenticator_) authenticator_->Invalidate();
          return engine::Json(200, {{"id", id}, {"revokedAt", std::string(r2->Get(0, 0))}});
        }),
        {.summary = "Revoke a worker token",
         .tag = "worker-tokens",
         .permission = std::string(engine::ActionName(engine::Action::kWorkerTokensManage))});
}

}  // namespace flovyn::plugins
