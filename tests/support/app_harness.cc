#include "app_harness.h"

#include <regex>
#include <sstream>
#include <thread>

#include "flovyn/http/message.h"

namespace flovyn::testing {

std::string AppBinary() { return FLOVYN_APP_BINARY; }
std::string AppTestbedBinary() { return FLOVYN_APP_TESTBED_BINARY; }

AppProcess::AppProcess(Options o) : port_(o.port ? o.port : FreePort()) {
  std::map<std::string, std::string> env{
      {"DATABASE_URL", o.database_url},   {"BACKEND_URL", o.backend_url},
      {"BETTER_AUTH_SECRET", kAppSecret}, {"NEXT_PUBLIC_APP_URL", "http://127.0.0.1:" + std::to_string(port_)},
      {"PORT", std::to_string(port_)},    {"BIND_ADDRESS", "127.0.0.1"},
      {"NODE_ENV", "development"},        {"RUST_LOG", "info"},
  };
  for (const auto& [k, v] : o.env) env[k] = v;
  child_ = std::make_unique<ChildProcess>(o.testbed ? AppTestbedBinary() : AppBinary(), o.args, env);
}

bool AppProcess::WaitReady(std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (!child_->running()) return false;
    if (HttpGet(port_, "/api/health/ready", 2s).status == 200) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string FormEncode(const std::map<std::string, std::string>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + http::UrlEncode(k) + "=" + http::UrlEncode(v);
  return out;
}

std::string ShownSecret(const std::string& html) {
  std::smatch m;
  if (std::regex_search(html, m, std::regex("<code id=\"new-secret\">([^<]*)</code>"))) return m[1];
  return "";
}

void ConsoleClient::Absorb(const HttpResult& r) {
  auto it = r.headers.find("set-cookie");
  if (it != r.headers.end()) {
    std::istringstream lines(it->second);
    std::string line;
    while (std::getline(lines, line)) {
      auto eq = line.find('=');
      auto semi = line.find(';');
      if (eq == std::string::npos) continue;
      std::string name = line.substr(0, eq), value = line.substr(eq + 1, semi - eq - 1);
      if (value.empty() || line.find("Max-Age=0") != std::string::npos) {
        cookies_.erase(name);
      } else {
        cookies_[name] = value;
      }
    }
  }
  std::smatch m;
  if (std::regex_search(r.body, m, std::regex("name=\"_csrf\" value=\"([^\"]*)\""))) csrf_ = m[1];
}

std::string ConsoleClient::Cookie(const std::string& name) const {
  auto it = cookies_.find(name);
  return it == cookies_.end() ? "" : it->second;
}

namespace {
std::string CookieHeader(const std::map<std::string, std::string>& cookies) {
  std::string h;
  for (const auto& [k, v] : cookies) h += (h.empty() ? "" : "; ") + k + "=" + v;
  return h;
}
}  // namespace

HttpResult ConsoleClient::Get(const std::string& target) {
  std::map<std::string, std::string> headers;
  if (!cookies_.empty()) headers["Cookie"] = CookieHeader(cookies_);
  auto r = HttpRequest("GET", port_, target, "", headers);
  Absorb(r);
  return r;
}

HttpResult ConsoleClient::Post(const std::string& target, std::map<std::string, std::string> fields,
                               std::map<std::string, std::string> headers) {
  if (!fields.count("_csrf")) fields["_csrf"] = csrf_;
  if (!cookies_.empty()) headers["Cookie"] = CookieHeader(cookies_);
  if (!headers.count("Content-Type")) headers["Content-Type"] = "application/x-www-form-urlencoded";
  auto r = HttpRequest("POST", port_, target, FormEncode(fields), headers);
  Absorb(r);
  return r;
}

bool ConsoleClient::SignUp(const std::string& email, const std::string& password, const std::string& org,
                           const std::string& slug) {
  Get("/sign-up");
  auto r =
      Post("/sign-up",
           {{"name", "Test User"}, {"email", email}, {"password", password}, {"organization", org}, {"slug", slug}});
  return r.status == 303 && r.headers["location"] == "/overview";
}

bool ConsoleClient::SignIn(const std::string& email, const std::string& password) {
  Get("/sign-in");
  auto r = Post("/sign-in", {{"email", email}, {"password", password}});
  return r.status == 303 && r.headers["location"] == "/overview";
}

ConsoleStack::ConsoleStack(Options o) : options_(std::move(o)), app_port_(FreePort()) {
  std::string app_url = "http://127.0.0.1:" + std::to_string(app_port_);
  EngineServerOptions eo;
  eo.tenants = {"other"};
  eo.env = {{"AUTH__JWT__JWKS_URI", app_url + "/.well-known/jwks.json"},
            {"AUTH__JWT__ISSUER", app_url},
            {"AUTH__API_KEY__VALIDATE_URL", app_url + "/api/auth/validate-key"}};
  for (const auto& [k, v] : options_.server_env) eo.env[k] = v;
  engine_ = std::make_unique<EngineServer>(eo);
  app_db_ = options_.app_database_url.empty() ? Postgres::Shared().CreateDatabase("app") : options_.app_database_url;
  RestartApp();
}

void ConsoleStack::RestartApp(const std::map<std::string, std::string>& extra_env) {
  app_.reset();
  AppProcess::Options ao;
  ao.database_url = app_db_;
  ao.backend_url = "http://127.0.0.1:" + std::to_string(engine_->http_port());
  ao.port = app_port_;
  ao.env = options_.app_env;
  for (const auto& [k, v] : extra_env) ao.env[k] = v;
  app_ = std::make_unique<AppProcess>(ao);
  if (!app_->WaitReady()) ADD_FAILURE() << "flovyn-app did not become ready:\n" << app_->process().Log();
}

}  // namespace flovyn::testing
