// The console's credentials pages: worker tokens (kept by the server) and API keys (kept by
// the console), created and revoked by the organisation's admins.
#include <spdlog/spdlog.h>

#include "console_common.h"

namespace flovyn::app {

namespace {
// The credentials template's view for one kind of credential.
struct Credentials {
  const char* heading = "";
  const char* base = "";  // the list's path; create posts here, revoke under it
  const char* create_label = "";
  const char* what = "";  // in "Copy this <what> now"
  const char* intro = "";
  const char* code = "";  // an example after the intro, and the words after it
  const char* code_tail = "";
};

const Credentials kWorkerTokens{"Worker tokens", "/worker-tokens", "Create token", "worker token",
                                "Workers connect to the server's gRPC port with one of these."};
const Credentials kApiKeys{"API keys",
                           "/api-keys",
                           "Create API key",
                           "API key",
                           "For scripts and the CLI: send",
                           "Authorization: Bearer flk_…",
                           "to the server's REST API."};

json CredentialsView(const Credentials& c, const json& items, const std::string& csrf, bool with_intro,
                     const std::string& secret = "") {
  json rows = json::array();
  for (const auto& t : items) {
    rows.push_back({{"id", Str(t, "id")},
                    {"name", Str(t, "name")},
                    {"prefix", Str(t, "prefix")},
                    {"createdAt", Str(t, "createdAt")},
                    {"lastUsedAt", Str(t, "lastUsedAt")},
                    {"revoked", t.contains("revokedAt") && t["revokedAt"].is_string()}});
  }
  return {{"heading", c.heading},
          {"base", c.base},
          {"createLabel", c.create_label},
          {"what", c.what},
          {"secret", secret},
          {"items", rows},
          {"csrf", csrf},
          {"intro", with_intro ? c.intro : ""},
          {"code", c.code},
          {"codeTail", c.code_tail}};
}
}  // namespace

Response ConsoleModule::WorkerTokens(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/worker-tokens");
  return WithBackend(v.Frame("Worker tokens", "worker-tokens"), list.status(), [&] {
    return Render("credentials", CredentialsView(kWorkerTokens, (*list)["items"], v.csrf, true));
  });
}

Response ConsoleModule::CreateWorkerToken(const Request&, Visit& v) {
  std::string name = Field(v.form, "name");
  auto fr = v.Frame("Worker tokens", "worker-tokens");
  if (name.empty() || name.size() > 200) {
    fr.error = "Name the token (1 to 200 characters).";
    return Html(400, Layout(fr, Render("message", Message("Worker tokens", "", "/worker-tokens"))));
  }
  json body = {{"name", name}};
  auto created = backend_->Call(*v.session, "POST", "/worker-tokens", &body);
  if (!created.ok()) return WithBackend(fr, created.status(), [] { return std::string(); });
  auto list = backend_->Call(*v.session, "GET", "/worker-tokens");
  return WithBackend(fr, list.status(), [&] {
    return Render("credentials",
                  CredentialsView(kWorkerTokens, (*list)["items"], v.csrf, false, Str(*created, "token")));
  });
}

Response ConsoleModule::RevokeWorkerToken(const Request& req, Visit& v) {
  auto r = backend_->Call(*v.session, "DELETE", "/worker-tokens/" + UrlEncode(req.path_params.at("id")));
  if (!r.ok()) return WithBackend(v.Frame("Worker tokens", "worker-tokens"), r.status(), [] { return std::string(); });
  return Redirect("/worker-tokens");
}

namespace {
json KeysJson(const std::vector<ApiKeyInfo>& keys) {
  json items = json::array();
  for (const auto& k : keys) {
    items.push_back({{"id", k.id},
                     {"name", k.name},
                     {"prefix", k.prefix},
                     {"createdAt", k.created_at},
                     {"lastUsedAt", k.last_used_at ? json(*k.last_used_at) : json(nullptr)},
                     {"revokedAt", k.revoked_at ? json(*k.revoked_at) : json(nullptr)}});
  }
  return items;
}
}  // namespace

Response ConsoleModule::ApiKeys(const Request&, Visit& v) {
  auto keys = identity_->ListApiKeys(*v.session);
  return WithBackend(v.Frame("API keys", "api-keys"), keys.status(),
                     [&] { return Render("credentials", CredentialsView(kApiKeys, KeysJson(*keys), v.csrf, true)); });
}

Response ConsoleModule::CreateApiKey(const Request&, Visit& v) {
  std::string name = Field(v.form, "name");
  auto fr = v.Frame("API keys", "api-keys");
  if (name.empty() || name.size() > 200) {
    fr.error = "Name the key (1 to 200 characters).";
    return Html(400, Layout(fr, Render("message", Message("API keys", "", "/api-keys"))));
  }
  auto created = identity_->CreateApiKey(*v.session, name);
  if (!created.ok()) return WithBackend(fr, created.status(), [] { return std::string(); });
  auto keys = identity_->ListApiKeys(*v.session);
  return WithBackend(fr, keys.status(), [&] {
    return Render("credentials", CredentialsView(kApiKeys, KeysJson(*keys), v.csrf, false, created->second));
  });
}

Response ConsoleModule::RevokeApiKey(const Request& req, Visit& v) {
  Status s = identity_->RevokeApiKey(*v.session, req.path_params.at("id"));
  if (!s.ok()) return WithBackend(v.Frame("API keys", "api-keys"), s, [] { return std::string(); });
  return Redirect("/api-keys");
}

}  // namespace flovyn::app
