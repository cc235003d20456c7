#include "console_module.h"

#include <spdlog/spdlog.h>

#include "flovyn/crypto/crypto.h"
#include "flovyn/health/monitor.h"
#include "flovyn/http/router.h"
#include "pages.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> app_migrations();
const std::map<std::string, std::pair<std::string, std::string>>& app_assets();
}  // namespace flovyn::generated

namespace flovyn::app {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr const char* kSessionCookie = "flovyn_session";
constexpr const char* kVisitorCookie = "flovyn_visitor";
constexpr size_t kMaxField = 10000;

const std::vector<std::string> kWorkflowStatuses{"PENDING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"};
const std::vector<std::string> kTaskStatuses{"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"};

std::string CookieValue(const Request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view part = rest.substr(0, semi);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      auto eq = part.find('=');
      if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return "";
}

Response WithSecurityHeaders(Response r) {
  r.With("Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
         "form-action 'self'; base-uri 'none'")
      .With("X-Content-Type-Options", "nosniff")
      .With("X-Frame-Options", "DENY")
      .With("Referrer-Policy", "same-origin")
      .With("Cache-Control", "no-store");
  return r;
}

Response Html(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  return WithSecurityHeaders(std::move(r));
}

Response Redirect(const std::string& location) {
  Response r;
  r.status = 303;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "See " + location + "\n";
  r.With("Location", location);
  return WithSecurityHeaders(std::move(r));
}

// A plain page for a refused request: a short message, never internals.
Response Refusal(int status, const std::string& title, const std::string& message) {
  Frame f;
  f.title = title;
  return Html(status, Layout(f, "<h1>" + Esc(title) + "</h1><p>" + Esc(message) + "</p><p><a href=\"/\">Back to the console</a></p>"));
}

// application/x-www-form-urlencoded fields, or the reason they cannot be read.
StatusOr<std::map<std::string, std::string>> FormOf(const Request& req) {
  std::string_view ct = req.Header("content-type");
  ct = ct.substr(0, ct.find(';'));
  if (ct != "application/x-www-form-urlencoded") {
    return Status(StatusCode::kInvalidArgument, "forms must be sent as application/x-www-form-urlencoded");
  }
  auto fields = http::ParseQuery(req.body);
  for (const auto& [k, v] : fields) {
    if (v.size() > kMaxField) return InvalidArgument("the field '" + k + "' is too long");
  }
  return fields;
}

std::string Field(const std::map<std::string, std::string>& f, const char* name) {
  auto it = f.find(name);
  if (it == f.end()) return "";
  std::string v = it->second;
  auto b = v.find_first_not_of(" \t\r\n");
  auto e = v.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : v.substr(b, e - b + 1);
}

std::string Query(const Request& req, const char* name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? "" : it->second;
}

int HttpFor(const Status& s) { return HttpStatusFor(s.code()); }

std::string Str(const json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

bool Terminal(const std::string& status) {
  return status == "COMPLETED" || status == "FAILED" || status == "CANCELLED";
}

std::string Options(const std::vector<std::string>& values, const std::string& selected) {
  std::string h = "<option value=\"\">any status</option>";
  for (const auto& v : values) {
    h += "<option" + std::string(v == selected ? " selected" : "") + ">" + Esc(v) + "</option>";
  }
  return h;
}

}  // namespace

struct ConsoleModule::Visit {
  std::optional<Session> session;
  std::string csrf;  // the token forms on this page must carry
  std::vector<std::string> set_cookies;
  std::map<std::string, std::string> form;  // POST fields, CSRF already checked
  flovyn::app::Frame Frame(std::string title, std::string nav) const {
    flovyn::app::Frame f;
    f.title = std::move(title);
    f.nav = std::move(nav);
    f.session = session ? &*session : nullptr;
    return f;
  }
};

ConsoleModule::ConsoleModule(Settings settings) : settings_(std::move(settings)) {}
ConsoleModule::~ConsoleModule() = default;

Status ConsoleModule::Start(const runtime::Context& ctx) {
  passwords_ = std::make_unique<PasswordPool>(settings_.hash_threads, settings_.hash_queue);
  identity_ = std::make_unique<Identity>(ctx.pool, settings_.auth_secret, std::chrono::hours(settings_.session_ttl_hours),
                                         *passwords_);
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

std::string ConsoleModule::Origin(const Request& req) const {
  if (settings_.trust_host) {
    std::string host(req.Header("x-forwarded-host"));
    if (!host.empty()) {
      std::string proto(req.Header("x-forwarded-proto"));
      host = host.substr(0, host.find(','));
      proto = proto.substr(0, proto.find(','));
      return (proto == "https" ? "https" : "http") + std::string("://") + host;
    }
  }
  auto scheme = settings_.public_url.find("://");
  auto slash = settings_.public_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return settings_.public_url.substr(0, slash);
}

std::string ConsoleModule::ClientAddress(const Request& req) const {
  if (settings_.trust_host) {
    // The last hop is the one the trusted proxy appended; earlier ones are the client's to write.
    std::string_view fwd = req.Header("x-forwarded-for");
    auto comma = fwd.rfind(',');
    if (comma != std::string_view::npos) fwd.remove_prefix(comma + 1);
    while (!fwd.empty() && fwd.front() == ' ') fwd.remove_prefix(1);
    while (!fwd.empty() && fwd.back() == ' ') fwd.remove_suffix(1);
    if (!fwd.empty() && fwd.size() <= 64) return std::string(fwd);
  }
  return req.remote_address;
}

Response ConsoleModule::Finish(Response r, const Visit& v) const {
  for (const auto& c : v.set_cookies) r.With("Set-Cookie", c);
  // Browsers remember to use https only; over plain http in development it would lock them out.
  if (settings_.production()) r.With("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
  return r;
}

bool ConsoleModule::SecureCookies(const Request& req) const {
  return settings_.production() || Origin(req).rfind("https://", 0) == 0;
}

std::string ConsoleModule::SessionCookie(const Request& req, const std::string& value, long max_age) const {
  return std::string(kSessionCookie) + "=" + value + "; Path=/; Max-Age=" + std::to_string(max_age) +
         "; HttpOnly; SameSite=Lax" + (SecureCookies(req) ? "; Secure" : "");
}

namespace {
// The Origin header, when a browser sent one, must be the console's own.
bool SameOrigin(const Request& req, const std::string& origin) {
  std::string_view sent = req.Header("origin");
  return sent.empty() || sent == origin;
}
}  // namespace

http::Handler ConsoleModule::Member(Page page) {
  return http::Sync([this, page = std::move(page)](const Request& req) -> Response {
    Visit v;
    auto found = identity_->FindSession(CookieValue(req, kSessionCookie));
    if (!found.ok()) {
      spdlog::warn("session lookup failed: {}", found.status().message());
      return Refusal(503, "Temporarily unavailable", "The console's database cannot be reached. Try again in a moment.");
    }
    if (!*found) {
      if (req.method == "GET") return Redirect("/sign-in");
      return Refusal(401, "Signed out", "Your session has ended. Sign in again.");
    }
    v.session = std::move(**found);
    v.csrf = v.session->csrf_token;
    if (req.method == "POST") {
      if (!SameOrigin(req, Origin(req))) return Refusal(403, "Refused", "Cross-origin form submissions are refused.");
      auto form = FormOf(req);
      if (!form.ok()) return Refusal(415, "Unsupported form", form.status().message());
      if (!crypto::ConstantTimeEqual(Field(*form, "_csrf"), v.csrf)) {
        return Refusal(403, "Refused", "The form's security token is missing or stale. Reload the page and try again.");
      }
      v.form = std::move(*form);
    }
    // An organisation whose tenant is not on the server yet (it was down at sign-up) gets it now.
    if (!v.session->org.tenant_ready) {
      Status t = backend_->EnsureTenant(*v.session, *identity_);
      if (!t.ok()) spdlog::warn("creating tenant '{}' on the server: {}", v.session->org.slug, t.message());
    }
    return Finish(page(req, v), v);
  });
}

http::Handler ConsoleModule::Anonymous(Page page) {
  return http::Sync([this, page = std::move(page)](const Request& req) -> Response {
    Visit v;
    std::string visitor = CookieValue(req, kVisitorCookie);
    if (req.method == "POST") {
      if (!SameOrigin(req, Origin(req))) return Refusal(403, "Refused", "Cross-origin form submissions are refused.");
      auto form = FormOf(req);
      if (!form.ok()) return Refusal(415, "Unsupported form", form.status().message());
      if (visitor.empty() ||
          !crypto::ConstantTimeEqual(Field(*form, "_csrf"), identity_->cookies().AnonymousCsrf(visitor))) {
        return Refusal(403, "Refused", "The form's security token is missing or stale. Reload the page and try again.");
      }
      v.form = std::move(*form);
    }
    if (visitor.empty() || visitor.size() > 100) {
      visitor = crypto::RandomToken(24);
      v.set_cookies.push_back(std::string(kVisitorCookie) + "=" + visitor + "; Path=/; HttpOnly; SameSite=Lax" +
                              (SecureCookies(req) ? "; Secure" : ""));
    }
    v.csrf = identity_->cookies().AnonymousCsrf(visitor);
    return Finish(page(req, v), v);
  });
}

void ConsoleModule::AddRoutes(http::Router& r) {
  using std::placeholders::_1;
  using std::placeholders::_2;
  auto member = [this](auto fn) { return Member([this, fn](const Request& q, Visit& v) { return (this->*fn)(q, v); }); };
  auto anon = [this](auto fn) { return Anonymous([this, fn](const Request& q, Visit& v) { return (this->*fn)(q, v); }); };
  http::RouteOptions page{.tag = "console"};

  r.Add("GET", "/", http::Sync([this](const Request& req) {
          auto token = identity_->cookies().Unwrap(CookieValue(req, kSessionCookie));
          return Redirect(token ? "/overview" : "/sign-in");
        }), {.summary = "Home: the overview or the sign-in page", .tag = "console"});
  r.Add("GET", "/sign-in", anon(&ConsoleModule::SignInPage), page);
  r.Add("POST", "/sign-in", anon(&ConsoleModule::SignIn), page);
  r.Add("GET", "/sign-up", anon(&ConsoleModule::SignUpPage), page);
  r.Add("POST", "/sign-up", anon(&ConsoleModule::SignUp), page);
  r.Add("POST", "/sign-out", member(&ConsoleModule::SignOut), page);
  r.Add("GET", "/overview", member(&ConsoleModule::Overview), page);
  r.Add("GET", "/workflows", member(&ConsoleModule::Workflows), page);
  r.Add("POST", "/workflows", member(&ConsoleModule::StartWorkflow), page);
  r.Add("GET", "/workflows/{id}", member(&ConsoleModule::WorkflowDetail), page);
  r.Add("POST", "/workflows/{id}/cancel", member(&ConsoleModule::CancelWorkflow), page);
  r.Add("POST", "/workflows/{id}/promises/{promise}", member(&ConsoleModule::ResolvePromise), page);
  r.Add("GET", "/tasks", member(&ConsoleModule::Tasks), page);
  r.Add("GET", "/workers", member(&ConsoleModule::Workers), page);
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
          }), {.run_inline = true, .summary = "Static asset", .tag = "assets"});
  }

  // ---- identity endpoints flovyn-server relies on
  r.Add("GET", "/.well-known/jwks.json", http::Sync([this](const Request&) {
          Response res = http::JsonResponse(200, keys_->Jwks().dump());
          res.With("Cache-Control", "public, max-age=300");
          return res;
        }), {.summary = "Public keys of the tokens the console signs", .tag = "identity"});
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
        }), {.summary = "Validate a console API key (for flovyn-server)", .tag = "identity", .has_body = true});
}

// ---------------------------------------------------------------- sign-in, sign-up, sign-out

namespace {
std::string SignInForm(const std::string& csrf, const std::string& email) {
  return "<section class=\"auth\"><h1>Sign in</h1><form method=\"post\" action=\"/sign-in\">" + CsrfField(csrf) +
         "<label>Email <input type=\"email\" name=\"email\" required autocomplete=\"username\" value=\"" + Esc(email) +
         "\"></label><label>Password <input type=\"password\" name=\"password\" required "
         "autocomplete=\"current-password\"></label><button type=\"submit\">Sign in</button></form>"
         "<p>No account yet? <a href=\"/sign-up\">Create one</a>.</p></section>";
}

std::string SignUpForm(const std::string& csrf, const std::map<std::string, std::string>& f) {
  auto val = [&f](const char* k) { return Esc(Field(f, k)); };
  return "<section class=\"auth\"><h1>Create your account</h1><form method=\"post\" action=\"/sign-up\">" +
         CsrfField(csrf) + "<label>Name <input name=\"name\" required maxlength=\"200\" value=\"" + val("name") +
         "\"></label><label>Email <input type=\"email\" name=\"email\" required maxlength=\"320\" "
         "autocomplete=\"username\" value=\"" + val("email") +
         "\"></label><label>Password <input type=\"password\" name=\"password\" required minlength=\"10\" "
         "autocomplete=\"new-password\"></label><label>Organisation <input name=\"organization\" required "
         "maxlength=\"200\" value=\"" + val("organization") +
         "\"></label><label>Organisation slug <small>(the server's tenant; letters, digits, dashes)</small> "
         "<input name=\"slug\" pattern=\"[a-z0-9][a-z0-9-]{1,38}[a-z0-9]\" value=\"" + val("slug") +
         "\"></label><button type=\"submit\">Create account</button></form>"
         "<p>Have an account? <a href=\"/sign-in\">Sign in</a>.</p></section>";
}
}  // namespace

Response ConsoleModule::SignInPage(const Request&, Visit& v) {
  return Html(200, Layout(v.Frame("Sign in", ""), SignInForm(v.csrf, "")));
}

Response ConsoleModule::SignIn(const Request& req, Visit& v) {
  std::string email = Field(v.form, "email");
  std::string password = v.form.count("password") ? v.form.at("password") : "";
  auto fr = v.Frame("Sign in", "");
  if (email.empty() || password.empty()) {
    fr.error = "Enter your email and password.";
    return Html(400, Layout(fr, SignInForm(v.csrf, email)));
  }
  auto r = identity_->SignIn(email, password, ClientAddress(req));
  if (!r.ok()) {
    fr.error = r.status().code() == StatusCode::kUnavailable ? "The console's database cannot be reached; try again."
                                                             : r.status().message();
    Response res = Html(HttpFor(r.status()), Layout(fr, SignInForm(v.csrf, email)));
    if (r.status().code() == StatusCode::kResourceExhausted) {
      const std::string& m = r.status().message();
      auto in = m.rfind(" in ");
      if (in != std::string::npos) res.With("Retry-After", m.substr(in + 4, m.find(' ', in + 4) - in - 4));
    }
    return res;
  }
  v.set_cookies.push_back(SessionCookie(req, r->first, settings_.session_ttl_hours * 3600));
  return Redirect("/overview");
}

Response ConsoleModule::SignUpPage(const Request&, Visit& v) {
  return Html(200, Layout(v.Frame("Create your account", ""), SignUpForm(v.csrf, {})));
}

Response ConsoleModule::SignUp(const Request& req, Visit& v) {
  std::string name = Field(v.form, "name"), email = Field(v.form, "email"), org = Field(v.form, "organization");
  std::string password = v.form.count("password") ? v.form.at("password") : "";
  std::string slug = Field(v.form, "slug");
  if (slug.empty()) slug = SlugFrom(org);
  std::string problem;
  if (name.empty() || name.size() > 200) problem = "Enter your name (up to 200 characters).";
  else if (email.size() > 320 || email.find('@') == std::string::npos || email.find_first_of(" <>\"") != std::string::npos)
    problem = "Enter a valid email address.";
  else if (auto weak = PasswordProblem(password, email); !weak.empty()) problem = weak;
  else if (org.empty() || org.size() > 200) problem = "Name your organisation (up to 200 characters).";
  else if (!ValidSlug(slug)) problem = "The organisation slug must be 3 to 40 lower-case letters, digits or dashes.";
  auto fr = v.Frame("Create your account", "");
  if (!problem.empty()) {
    fr.error = problem;
    return Html(400, Layout(fr, SignUpForm(v.csrf, v.form)));
  }
  // The organisation's tenant is created on the server inside the sign-up's transaction, owned by
  // the new organisation's id: a slug taken there, or a server that cannot be reached, creates
  // nothing here either.
  auto r = identity_->SignUp(email, name, password, org, slug,
                             [this](const Session& s) { return backend_->CreateTenant(s); });
  if (!r.ok()) {
    switch (r.status().code()) {
      case StatusCode::kAlreadyExists:
      case StatusCode::kResourceExhausted: fr.error = r.status().message(); break;
      case StatusCode::kUnavailable:
      case StatusCode::kDeadlineExceeded: fr.error = "The Flovyn server cannot be reached; try again in a moment."; break;
      default: fr.error = "Your account could not be created; try again.";
    }
    Response res = Html(HttpFor(r.status()), Layout(fr, SignUpForm(v.csrf, v.form)));
    if (r.status().code() == StatusCode::kResourceExhausted) res.With("Retry-After", "1");
    return res;
  }
  v.set_cookies.push_back(SessionCookie(req, r->first, settings_.session_ttl_hours * 3600));
  return Redirect("/overview");
}

Response ConsoleModule::SignOut(const Request& req, Visit& v) {
  Status s = identity_->EndSession(CookieValue(req, kSessionCookie));
  if (!s.ok()) return Refusal(503, "Temporarily unavailable", "Signing out failed; try again.");
  v.set_cookies.push_back(SessionCookie(req, "", 0));
  return Redirect("/sign-in");
}

// ---------------------------------------------------------------- pages

namespace {
// Renders the page, or the frame with the "server unreachable" banner (503) or the error.
template <typename F>
Response WithBackend(Frame frame, const Status& s, F body) {
  if (s.ok()) return Html(200, Layout(frame, body()));
  if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded) {
    frame.backend_down = true;
    return Html(503, Layout(frame, "<h1>" + Esc(frame.title) + "</h1>"));
  }
  frame.error = s.message();
  return Html(HttpFor(s), Layout(frame, "<h1>" + Esc(frame.title) + "</h1>"));
}

std::string WorkflowRows(const json& items) {
  std::string h = "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th>Kind</th><th>Status</th>"
                  "<th>Queue</th><th>Created</th><th>Execution</th></tr></thead><tbody>";
  for (const auto& w : items) {
    std::string id = Str(w, "id");
    h += "<tr><td><a href=\"/workflows/" + Esc(id) + "\">" + Esc(Str(w, "kind")) + "</a></td><td>" +
         StatusBadge(Str(w, "status")) + "</td><td>" + Esc(Str(w, "queue")) + "</td><td>" + Esc(Str(w, "createdAt")) +
         "</td><td class=\"mono\">" + Esc(id.substr(0, 8)) + "</td></tr>";
  }
  if (items.empty()) h += "<tr><td colspan=\"5\" class=\"muted\">No workflows yet.</td></tr>";
  return h + "</tbody></table></div>";
}
}  // namespace

Response ConsoleModule::Overview(const Request&, Visit& v) {
  auto counts = backend_->Call(*v.session, "GET", "/workflow-counts");
  StatusOr<json> recent = counts.ok() ? backend_->Call(*v.session, "GET", "/workflows?limit=10") : counts.status();
  return WithBackend(v.Frame("Overview", "overview"), recent.status(), [&] {
    std::string h = "<h1>Overview</h1><div class=\"cards\">";
    for (const auto& s : kWorkflowStatuses) {
      int64_t n = (*counts)["counts"].value(s, 0);
      h += "<a class=\"card\" href=\"/workflows?status=" + s + "\"><span class=\"count\" data-status=\"" + s + "\">" +
           std::to_string(n) + "</span><span class=\"label\">" + StatusBadge(s) + "</span></a>";
    }
    h += "</div><h2>Recent workflows</h2>" + WorkflowRows((*recent)["items"]);
    return h;
  });
}

Response ConsoleModule::Workflows(const Request& req, Visit& v) {
  std::string status = Query(req, "status"), kind = Query(req, "kind"), cursor = Query(req, "cursor");
  if (!status.empty() && std::find(kWorkflowStatuses.begin(), kWorkflowStatuses.end(), status) == kWorkflowStatuses.end()) {
    return Refusal(400, "Bad filter", "Unknown workflow status.");
  }
  std::string q = "/workflows?limit=25";
  if (!status.empty()) q += "&status=" + UrlEncode(status);
  if (!kind.empty()) q += "&kind=" + UrlEncode(kind);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  auto list = backend_->Call(*v.session, "GET", q);
  return WithBackend(v.Frame("Workflows", "workflows"), list.status(), [&] {
    std::string h = "<h1>Workflows</h1><form method=\"get\" action=\"/workflows\" class=\"filters\">"
                    "<label>Status <select name=\"status\">" + Options(kWorkflowStatuses, status) +
                    "</select></label><label>Kind <input name=\"kind\" value=\"" + Esc(kind) +
                    "\"></label><button type=\"submit\">Filter</button></form>";
    h += WorkflowRows((*list)["items"]);
    if ((*list)["nextCursor"].is_string()) {
      std::string next = "/workflows?cursor=" + UrlEncode((*list)["nextCursor"].get<std::string>());
      if (!status.empty()) next += "&status=" + UrlEncode(status);
      if (!kind.empty()) next += "&kind=" + UrlEncode(kind);
      h += "<p class=\"pager\"><a href=\"" + Esc(next) + "\" rel=\"next\">Older →</a></p>";
    }
    h += "<h2>Start a workflow</h2><form method=\"post\" action=\"/workflows\" class=\"stack\" id=\"start-workflow\">" +
         CsrfField(v.csrf) +
         "<label>Kind <input name=\"kind\" required maxlength=\"200\"></label>"
         "<label>Queue <input name=\"queue\" value=\"default\" maxlength=\"200\"></label>"
         "<label>Input (JSON) <textarea name=\"input\" rows=\"4\">{}</textarea></label>"
         "<button type=\"submit\">Start</button></form>";
    return h;
  });
}

Response ConsoleModule::StartWorkflow(const Request&, Visit& v) {
  std::string kind = Field(v.form, "kind"), queue = Field(v.form, "queue"), input = Field(v.form, "input");
  auto fr = v.Frame("Workflows", "workflows");
  json in = input.empty() ? json(nullptr) : json::parse(input, nullptr, false);
  if (kind.empty()) fr.error = "Name the workflow kind to start.";
  else if (in.is_discarded()) fr.error = "The input is not valid JSON.";
  if (!fr.error.empty()) return Html(400, Layout(fr, "<h1>Workflows</h1><p><a href=\"/workflows\">Back</a></p>"));
  json body = {{"kind", kind}, {"queue", queue.empty() ? "default" : queue}, {"input", in}};
  auto r = backend_->Call(*v.session, "POST", "/workflows", &body);
  if (!r.ok()) return WithBackend(fr, r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(Str(*r, "id")));
}

Response ConsoleModule::WorkflowDetail(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  auto w = backend_->Call(*v.session, "GET", "/workflows/" + UrlEncode(id));
  StatusOr<json> events = w.ok() ? backend_->Call(*v.session, "GET", "/workflows/" + UrlEncode(id) + "/events") : w.status();
  auto fr = v.Frame("Workflow", "workflows");
  if (w.ok() && !Terminal(Str(*w, "status"))) fr.refresh_secs = 3;
  return WithBackend(fr, events.status(), [&] {
    const json& x = *w;
    std::string status = Str(x, "status");
    std::string h = "<p class=\"crumbs\"><a href=\"/workflows\">Workflows</a> /</p><h1>" + Esc(Str(x, "kind")) + " " +
                    StatusBadge(status) + "</h1>";
    h += "<dl class=\"facts\"><dt>Execution</dt><dd class=\"mono\">" + Esc(Str(x, "id")) + "</dd><dt>Queue</dt><dd>" +
         Esc(Str(x, "queue")) + "</dd><dt>Created</dt><dd>" + Esc(Str(x, "createdAt")) + "</dd><dt>Updated</dt><dd>" +
         Esc(Str(x, "updatedAt")) + "</dd>";
    if (x["parentId"].is_string()) {
      h += "<dt>Parent</dt><dd><a class=\"mono\" href=\"/workflows/" + Esc(Str(x, "parentId")) + "\">" +
           Esc(Str(x, "parentId")) + "</a></dd>";
    }
    h += "</dl><div class=\"io\"><section><h2>Input</h2>" + JsonBlock(x["input"]) + "</section><section><h2>Output</h2>" +
         JsonBlock(x["output"]) + "</section>";
    if (x["error"].is_string()) h += "<section><h2>Error</h2><pre class=\"error\">" + Esc(Str(x, "error")) + "</pre></section>";
    h += "</div>";
    // Promises created and not yet settled can be resolved here.
    std::map<std::string, std::string> pending;
    for (const auto& e : (*events)["items"]) {
      std::string type = Str(e, "type");
      const json& p = e["payload"];
      if (!p.is_object()) continue;
      if (type == "PROMISE_CREATED") pending[Str(p, "promiseId")] = Str(p, "name");
      if (type == "PROMISE_RESOLVED" || type == "PROMISE_REJECTED" || type == "PROMISE_TIMED_OUT") {
        pending.erase(Str(p, "promiseId"));
      }
    }
    for (const auto& [pid, name] : pending) {
      if (pid.empty() || Terminal(status)) continue;
      h += "<section class=\"promise\"><h2>Waiting for promise “" + Esc(name) + "”</h2><form method=\"post\" action=\"/workflows/" +
           Esc(Str(x, "id")) + "/promises/" + Esc(pid) + "\" class=\"stack\">" + CsrfField(v.csrf) +
           "<label>Value (JSON) <textarea name=\"value\" rows=\"3\">null</textarea></label>"
           "<button type=\"submit\">Resolve</button></form></section>";
    }
    if (!Terminal(status)) {
      h += "<form method=\"post\" action=\"/workflows/" + Esc(Str(x, "id")) + "/cancel\" class=\"inline\">" +
           CsrfField(v.csrf) + "<button type=\"submit\" class=\"danger\" data-confirm=\"Cancel this workflow?\">Cancel "
           "workflow</button></form>";
    }
    h += "<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">";
    for (const auto& e : (*events)["items"]) {
      int64_t ms = e.contains("createdAtMs") && e["createdAtMs"].is_number() ? e["createdAtMs"].get<int64_t>() : 0;
      h += "<li><div class=\"ev-head\"><span class=\"seq\">#" + std::to_string(e.value("sequence", 0)) +
           "</span> <strong class=\"ev-type\">" + Esc(Str(e, "type")) + "</strong> <time>" + Esc(FormatMillis(ms)) +
           "</time></div>";
      if (!e["payload"].is_null() && !(e["payload"].is_object() && e["payload"].empty())) {
        h += "<details><summary>payload</summary>" + JsonBlock(e["payload"]) + "</details>";
      }
      h += "</li>";
    }
    h += "</ol>";
    return h;
  });
}

Response ConsoleModule::CancelWorkflow(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  json body = {{"reason", "cancelled from the console by " + v.session->user.email}};
  auto r = backend_->Call(*v.session, "POST", "/workflows/" + UrlEncode(id) + "/cancel", &body);
  if (!r.ok()) return WithBackend(v.Frame("Workflow", "workflows"), r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(id));
}

Response ConsoleModule::ResolvePromise(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  json value = json::parse(Field(v.form, "value").empty() ? "null" : Field(v.form, "value"), nullptr, false);
  auto fr = v.Frame("Workflow", "workflows");
  if (value.is_discarded()) {
    fr.error = "The value is not valid JSON.";
    return Html(400, Layout(fr, "<p><a href=\"/workflows/" + Esc(UrlEncode(id)) + "\">Back to the workflow</a></p>"));
  }
  json body = {{"value", value}};
  auto r = backend_->Call(*v.session, "POST", "/promises/" + UrlEncode(req.path_params.at("promise")) + "/resolve", &body);
  if (!r.ok()) return WithBackend(fr, r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(id));
}

Response ConsoleModule::Tasks(const Request& req, Visit& v) {
  std::string status = Query(req, "status"), cursor = Query(req, "cursor");
  if (!status.empty() && std::find(kTaskStatuses.begin(), kTaskStatuses.end(), status) == kTaskStatuses.end()) {
    return Refusal(400, "Bad filter", "Unknown task status.");
  }
  std::string q = "/tasks?limit=25";
  if (!status.empty()) q += "&status=" + UrlEncode(status);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  auto list = backend_->Call(*v.session, "GET", q);
  return WithBackend(v.Frame("Tasks", "tasks"), list.status(), [&] {
    std::string h = "<h1>Tasks</h1><form method=\"get\" action=\"/tasks\" class=\"filters\"><label>Status <select "
                    "name=\"status\">" + Options(kTaskStatuses, status) +
                    "</select></label><button type=\"submit\">Filter</button></form><div class=\"table-wrap\"><table "
                    "class=\"list\"><thead><tr><th>Kind</th><th>Status</th><th>Attempt</th><th>Workflow</th>"
                    "<th>Created</th></tr></thead><tbody>";
    for (const auto& t : (*list)["items"]) {
      std::string wf = Str(t, "workflowId");
      h += "<tr><td>" + Esc(Str(t, "kind")) + "</td><td>" + StatusBadge(Str(t, "status")) + "</td><td>" +
           std::to_string(t.value("attempt", 0)) + " / " + std::to_string(t.value("maxAttempts", 0)) + "</td><td>" +
           (wf.empty() ? std::string("—") : "<a class=\"mono\" href=\"/workflows/" + Esc(wf) + "\">" + Esc(wf.substr(0, 8)) + "</a>") +
           "</td><td>" + Esc(Str(t, "createdAt")) + "</td></tr>";
    }
    if ((*list)["items"].empty()) h += "<tr><td colspan=\"5\" class=\"muted\">No tasks.</td></tr>";
    h += "</tbody></table></div>";
    if ((*list)["nextCursor"].is_string()) {
      std::string next = "/tasks?cursor=" + UrlEncode((*list)["nextCursor"].get<std::string>());
      if (!status.empty()) next += "&status=" + UrlEncode(status);
      h += "<p class=\"pager\"><a href=\"" + Esc(next) + "\" rel=\"next\">Older →</a></p>";
    }
    return h;
  });
}

Response ConsoleModule::Workers(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/workers");
  return WithBackend(v.Frame("Workers", "workers"), list.status(), [&] {
    std::string h = "<h1>Workers</h1><div class=\"table-wrap\"><table class=\"list\"><thead><tr><th>Name</th>"
                    "<th>Queues</th><th>Kinds</th><th>Last heartbeat</th></tr></thead><tbody>";
    auto joined = [](const json& a) {
      std::string s;
      if (a.is_array()) for (const auto& x : a) if (x.is_string()) s += (s.empty() ? "" : ", ") + x.get<std::string>();
      return s;
    };
    for (const auto& w : (*list)["items"]) {
      double age = w.contains("heartbeatAgeSeconds") && w["heartbeatAgeSeconds"].is_number()
                       ? w["heartbeatAgeSeconds"].get<double>() : -1;
      std::string ago = age < 0 ? "—" : std::to_string(static_cast<int64_t>(age)) + " s ago";
      h += "<tr><td>" + Esc(Str(w, "name")) + " <span class=\"muted\">" + Esc(Str(w, "version")) + "</span></td><td>" +
           Esc(joined(w["queues"])) + "</td><td>" + Esc(joined(w["workflowKinds"])) +
           (w["taskKinds"].empty() ? "" : "; " + Esc(joined(w["taskKinds"]))) + "</td><td class=\"" +
           (age > 60 ? "stale" : "fresh") + "\">" + Esc(ago) + "</td></tr>";
    }
    if ((*list)["items"].empty()) h += "<tr><td colspan=\"4\" class=\"muted\">No workers registered.</td></tr>";
    return h + "</tbody></table></div>";
  });
}

namespace {
std::string TokenTable(const json& items, const std::string& csrf, const std::string& base) {
  std::string h = "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th>Name</th><th>Prefix</th>"
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
           CsrfField(csrf) + "<button type=\"submit\" class=\"danger\" data-confirm=\"Revoke this token?\">Revoke</button></form>";
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
  return "<div class=\"alert ok once\"><p><strong>Copy this " + what + " now; it is not shown again.</strong></p>"
         "<code id=\"new-secret\">" + Esc(secret) + "</code> <button type=\"button\" data-copy=\"new-secret\">Copy</button></div>";
}
}  // namespace

Response ConsoleModule::WorkerTokens(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/worker-tokens");
  return WithBackend(v.Frame("Worker tokens", "worker-tokens"), list.status(), [&] {
    return "<h1>Worker tokens</h1><p>Workers connect to the server's gRPC port with one of these.</p>" +
           CreateForm(v.csrf, "/worker-tokens", "Create token") + TokenTable((*list)["items"], v.csrf, "/worker-tokens");
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
           CreateForm(v.csrf, "/worker-tokens", "Create token") + TokenTable((*list)["items"], v.csrf, "/worker-tokens");
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
    items.push_back({{"id", k.id}, {"name", k.name}, {"prefix", k.prefix}, {"createdAt", k.created_at},
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
           "REST API.</p>" + CreateForm(v.csrf, "/api-keys", "Create API key") + TokenTable(KeysJson(*keys), v.csrf, "/api-keys");
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
    return "<h1>API keys</h1>" + ShownOnce(created->second, "API key") + CreateForm(v.csrf, "/api-keys", "Create API key") +
           TokenTable(KeysJson(*keys), v.csrf, "/api-keys");
  });
}

Response ConsoleModule::RevokeApiKey(const Request& req, Visit& v) {
  Status s = identity_->RevokeApiKey(*v.session, req.path_params.at("id"));
  if (!s.ok()) return WithBackend(v.Frame("API keys", "api-keys"), s, [] { return std::string(); });
  return Redirect("/api-keys");
}

}  // namespace flovyn::app
