// The console's credentials pages: worker tokens (kept by the server) and API keys (kept by
// the console), created and revoked by the organisation's admins.
#include <spdlog/spdlog.h>

#include "console_common.h"

namespace flovyn::app {

namespace {
std::string TokenTable(const json& items, const std::string& csrf, const std::string& base) {
  std::string h =
      "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th>Name</th><th>Prefix</th>"
      "<th>Created</th><th>Last used</th><th></th></tr></thead><tbody>";
  for (const auto& t : items) {
    bool revoked = t.contains("revokedAt") && t["revokedAt"].is_string();
    h += "<tr data-name=\"" + Esc(Str(t, "name")) + "\"><td>" + Esc(Str(t, "name")) + "</td><td class=\"mono\">" +
         Esc(Str(t, "prefix")) + "…</td><td>" + Esc(Str(t, "createdAt")) + "</td><td>" +
         (t.contains("lastUsedAt") && t["lastUsedAt"].is_string() ? Esc(Str(t, "lastUsedAt")) : "never") + "</td><td>";
    if (revoked) {
      h += "<span class=\"badge cancelled\">revoked</span>";
    } else {
      h += "<form method=\"post\" action=\"" + base + "/" + Esc(Str(t, "id")) + "/revoke\" class=\"inline\">" +
           CsrfField(csrf) +
           "<button type=\"submit\" class=\"danger\" data-confirm=\"Revoke this token?\">Revoke</button></form>";
    }
    h += "</td></tr>";
  }
  if (items.empty()) h += "<tr><td colspan=\"5\" class=\"muted\">None yet.</td></tr>";
  return h + "</tbody></table></div>";
}

std::string CreateForm(const std::string& csrf, const std::string& action, const std::string& label) {
  return "<form method=\"post\" action=\"" + action + "\" class=\"filters\" id=\"create-token\">" + CsrfField(csrf) +
         "<label>Name <input name=\"name\" required maxlength=\"200\"></label><button type=\"submit\">" + label +
         "</button></form>";
}

std::string ShownOnce(const std::string& secret, const std::string& what) {
  return "<div class=\"alert ok once\"><p><strong>Copy this " + what +
         " now; it is not shown again.</strong></p>"
         "<code id=\"new-secret\">" +
         Esc(secret) + "</code> <button type=\"button\" data-copy=\"new-secret\">Copy</button></div>";
}
}  // namespace

Response ConsoleModule::WorkerTokens(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/worker-tokens");
  return WithBackend(v.Frame("Worker tokens", "worker-tokens"), list.status(), [&] {
    return "<h1>Worker tokens</h1><p>Workers connect to the server's gRPC port with one of these.</p>" +
           CreateForm(v.csrf, "/worker-tokens", "Create token") +
           TokenTable((*list)["items"], v.csrf, "/worker-tokens");
  });
}

Response ConsoleModule::CreateWorkerToken(const Request&, Visit& v) {
  std::string name = Field(v.form, "name");
  auto fr = v.Frame("Worker tokens", "worker-tokens");
  if (name.empty() || name.size() > 200) {
    fr.error = "Name the token (1 to 200 characters).";
    return Html(400, Layout(fr, "<p><a href=\"/worker-tokens\">Back</a></p>"));
  }
  json body = {{"name", name}};
  auto created = backend_->Call(*v.session, "POST", "/worker-tokens", &body);
  if (!created.ok()) return WithBackend(fr, created.status(), [] { return std::string(); });
  auto list = backend_->Call(*v.session, "GET", "/worker-tokens");
  return WithBackend(fr, list.status(), [&] {
    return "<h1>Worker tokens</h1>" + ShownOnce(Str(*created, "token"), "worker token") +
           CreateForm(v.csrf, "/worker-tokens", "Create token") +
           TokenTable((*list)["items"], v.csrf, "/worker-tokens");
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
  return WithBackend(v.Frame("API keys", "api-keys"), keys.status(), [&] {
    return "<h1>API keys</h1><p>For scripts and the CLI: send <code>Authorization: Bearer flk_…</code> to the server's "
           "REST API.</p>" +
           CreateForm(v.csrf, "/api-keys", "Create API key") + TokenTable(KeysJson(*keys), v.csrf, "/api-keys");
  });
}

Response ConsoleModule::CreateApiKey(const Request&, Visit& v) {
  std::string name = Field(v.form, "name");
  auto fr = v.Frame("API keys", "api-keys");
  if (name.empty() || name.size() > 200) {
    fr.error = "Name the key (1 to 200 characters).";
    return Html(400, Layout(fr, "<p><a href=\"/api-keys\">Back</a></p>"));
  }
  auto created = identity_->CreateApiKey(*v.session, name);
  if (!created.ok()) return WithBackend(fr, created.status(), [] { return std::string(); });
  auto keys = identity_->ListApiKeys(*v.session);
  return WithBackend(fr, keys.status(), [&] {
    return "<h1>API keys</h1>" + ShownOnce(created->second, "API key") +
           CreateForm(v.csrf, "/api-keys", "Create API key") + TokenTable(KeysJson(*keys), v.csrf, "/api-keys");
  });
}

Response ConsoleModule::RevokeApiKey(const Request& req, Visit& v) {
  Status s = identity_->RevokeApiKey(*v.session, req.path_params.at("id"));
  if (!s.ok()) return WithBackend(v.Frame("API keys", "api-keys"), s, [] { return std::string(); });
  return Redirect("/api-keys");
}

}  // namespace flovyn::app
