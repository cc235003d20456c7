#include "console_module.h"

#include "console_common.h"
#include "flovyn/health/monitor.h"
#include "flovyn/http/router.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> app_migrations();
const std::map<std::string, std::pair<std::string, std::string>>& app_assets();
}  // namespace flovyn::generated

namespace flovyn::app {

ConsoleModule::ConsoleModule(Settings settings) : settings_(std::move(settings)) {}
ConsoleModule::~ConsoleModule() = default;

Status ConsoleModule::Start(const runtime::Context& ctx) {
  (void)Views();  // parses every page template now: one that does not parse stops the start, not a visitor
  passwords_ = std::make_unique<PasswordPool>(settings_.hash_threads, settings_.hash_queue);
  identity_ = std::make_unique<Identity>(ctx.pool, settings_.auth_secret,
                                         std::chrono::hours(settings_.session_ttl_hours), *passwords_);
  keys_ = std::make_unique<KeyRing>(ctx.pool, settings_.auth_secret);
  Status s = keys_->Load();
  if (!s.ok()) return Status(s.code(), "loading the token-signing keys: " + s.message());
  backend_ = std::make_unique<Backend>(settings_.backend_url, *keys_, settings_.public_url,
                                       std::chrono::seconds(settings_.token_ttl_secs),
                                       std::chrono::milliseconds(settings_.backend_timeout_ms));
  return Status::Ok();
}

void ConsoleModule::AddHealthChecks(health::Monitor& monitor) {
  monitor.Register("backend", [url = settings_.backend_url](health::Clock::time_point deadline) {
    return Backend::Check(url, deadline);
  });
}

void ConsoleModule::AddRoutes(http::Router& r) {
  using std::placeholders::_1;
  using std::placeholders::_2;
  auto member = [this](auto fn) {
    return Member([this, fn](const Request& q, Visit& v) { return (this->*fn)(q, v); });
  };
  auto anon = [this](auto fn) {
    return Anonymous([this, fn](const Request& q, Visit& v) { return (this->*fn)(q, v); });
  };
  http::RouteOptions page{.tag = "console"};

  r.Add("GET", "/", http::Sync([this](const Request& req) {
          auto token = identity_->cookies().Unwrap(http::CookieValue(req, kSessionCookie));
          return Redirect(token ? "/overview" : "/sign-in");
        }),
        {.summary = "Home: the overview or the sign-in page", .tag = "console"});
  r.Add("GET", "/sign-in", anon(&ConsoleModule::SignInPage), page);
  r.Add("POST", "/sign-in", anon(&ConsoleModule::SignIn), page);
  r.Add("GET", "/sign-up", anon(&ConsoleModule::SignUpPage), page);
  r.Add("POST", "/sign-up", anon(&ConsoleModule::SignUp), page);
  r.Add("POST", "/sign-out", member(&ConsoleModule::SignOut), page);
  r.Add("GET", "/overview", member(&ConsoleModule::Overview), page);
  r.Add("GET", "/workflows", member(&ConsoleModule::Workflows), page);
  r.Add("POST", "/workflows", member(&ConsoleModule::StartWorkflow), page);
  r.Add("GET", "/workflows/{id}", member(&ConsoleModule::WorkflowDetail), page);
  r.Add("GET", "/workflows/{id}/live", member(&ConsoleModule::WorkflowLive), page);
  r.Add("POST", "/workflows/{id}/cancel", member(&ConsoleModule::CancelWorkflow), page);
  r.Add("POST", "/workflows/{id}/promises/{promise}", member(&ConsoleModule::ResolvePromise), page);
  r.Add("GET", "/tasks", member(&ConsoleModule::Tasks), page);
  r.Add("GET", "/workers", member(&ConsoleModule::Workers), page);
  r.Add("GET", "/schedules", member(&ConsoleModule::Schedules), page);
  r.Add("GET", "/schedules/{id}", member(&ConsoleModule::ScheduleDetail), page);
  r.Add("POST", "/schedules/{id}/{action}", member(&ConsoleModule::ScheduleAction), page);
  r.Add("GET", "/eventhooks", member(&ConsoleModule::Eventhooks), page);
  r.Add("POST", "/eventhooks/events/{id}/reprocess", member(&ConsoleModule::ReprocessEvent), page);
  r.Add("GET", "/worker-tokens", member(&ConsoleModule::WorkerTokens), page);
  r.Add("POST", "/worker-tokens", member(&ConsoleModule::CreateWorkerToken), page);
  r.Add("POST", "/worker-tokens/{id}/revoke", member(&ConsoleModule::RevokeWorkerToken), page);
  r.Add("GET", "/api-keys", member(&ConsoleModule::ApiKeys), page);
  r.Add("POST", "/api-keys", member(&ConsoleModule::CreateApiKey), page);
  r.Add("POST", "/api-keys/{id}/revoke", member(&ConsoleModule::RevokeApiKey), page);

  // Static assets, compiled in: exact names only, so no path ever reaches a file system.
  for (const auto& [name, asset] : generated::app_assets()) {
    const auto* a = &asset;
    r.Add("GET", "/assets/" + name, http::Sync([a](const Request&) {
            Response res;
            res.content_type = a->first;
            res.body = a->second;
            res.With("Cache-Control", "public, max-age=3600").With("X-Content-Type-Options", "nosniff");
            return res;
          }),
          {.run_inline = true, .summary = "Static asset", .tag = "assets"});
  }
  AddIdentityRoutes(r);
}

// The identity endpoints flovyn-server relies on.
void ConsoleModule::AddIdentityRoutes(http::Router& r) {
  r.Add("GET", "/.well-known/jwks.json", http::Sync([this](const Request&) {
          Response res = http::JsonResponse(200, keys_->Jwks().dump());
          res.With("Cache-Control", "public, max-age=300");
          return res;
        }),
        {.summary = "Public keys of the tokens the console signs", .tag = "identity"});
  r.Add("POST", "/api/auth/validate-key", http::Sync([this](const Request& req) {
          std::string_view ct = req.Header("content-type");
          if (ct.substr(0, ct.find(';')) != "application/json") {
            return http::ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
          }
          json body = json::parse(req.body, nullptr, false);
          if (body.is_discarded() || !body.is_object() || !body.contains("key") || !body["key"].is_string()) {
            return http::ErrorResponse(400, "INVALID_ARGUMENT", "body must be {\"key\": \"flk_...\"}");
          }
          auto valid = identity_->ValidateApiKey(body["key"].get<std::string>());
          if (!valid.ok()) return http::ErrorResponse(valid.status());
          if (!*valid) return http::JsonResponse(401, R"({"valid":false})");
          const ValidKey& k = **valid;
          json out = {{"valid", true},
                      {"keyId", k.key_id},
                      {"role", k.role},
                      {"user", {{"id", k.user.id}, {"email", k.user.email}, {"name", k.user.name}}},
                      {"org", {{"id", k.org.id}, {"slug", k.org.slug}, {"name", k.org.name}}}};
          return http::JsonResponse(200, out.dump());
        }),
        {.summary = "Validate a console API key (for flovyn-server)", .tag = "identity", .has_body = true});
}

}  // namespace flovyn::app
