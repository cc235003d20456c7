// flovyn-app under test: the process on a free port, a browser-like client (cookie jar, CSRF
// tokens read from the pages), and a console + server pair where the server trusts the console.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "engine_harness.h"
#include "harness.h"

namespace flovyn::testing {

constexpr const char* kAppSecret = "test-better-auth-secret-0123456789abcdef";

std::string AppBinary();
std::string AppTestbedBinary();

class AppProcess {
 public:
  struct Options {
    std::string database_url;
    std::string backend_url;
    int port = 0;  // 0: a free port
    std::map<std::string, std::string> env;
    std::vector<std::string> args;
    bool testbed = false;
  };
  explicit AppProcess(Options o);
  int port() const { return port_; }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool WaitReady(std::chrono::milliseconds timeout = 20s);
  ChildProcess& process() { return *child_; }

 private:
  int port_;
  std::unique_ptr<ChildProcess> child_;
};

// Keeps cookies like a browser and fills in the CSRF token of the last page it saw.
class ConsoleClient {
 public:
  explicit ConsoleClient(int port) : port_(port) {}
  HttpResult Get(const std::string& target);
  // Posts a form; `_csrf` is added from the last page unless the fields carry one.
  HttpResult Post(const std::string& target, std::map<std::string, std::string> fields,
                  std::map<std::string, std::string> headers = {});
  // Sign-up through the pages; true when it lands on the overview.
  bool SignUp(const std::string& email, const std::string& password, const std::string& org, const std::string& slug);
  bool SignIn(const std::string& email, const std::string& password);
  const std::string& csrf() const { return csrf_; }
  std::string Cookie(const std::string& name) const;
  void SetCookie(const std::string& name, const std::string& value) { cookies_[name] = value; }

 private:
  void Absorb(const HttpResult& r);
  int port_;
  std::map<std::string, std::string> cookies_;
  std::string csrf_;
};

std::string FormEncode(const std::map<std::string, std::string>& fields);
// The value of the first `<code id="new-secret">` on a page (a token shown once).
std::string ShownSecret(const std::string& html);

// A flovyn-server that trusts a flovyn-app (JWKS and API keys), each on its own database.
class ConsoleStack {
 public:
  struct Options {
    std::map<std::string, std::string> server_env;
    std::map<std::string, std::string> app_env;
    std::string app_database_url;  // empty: a fresh database on the shared PostgreSQL
  };
  explicit ConsoleStack(Options o);
  ConsoleStack() : ConsoleStack(Options{}) {}
  EngineServer& engine() { return *engine_; }
  AppProcess& app() { return *app_; }
  const std::string& app_database() const { return app_db_; }
  // Starts the console again (same port and database), with `extra_env` on top.
  void RestartApp(const std::map<std::string, std::string>& extra_env = {});

 private:
  Options options_;
  int app_port_;
  std::string app_db_;
  std::unique_ptr<EngineServer> engine_;
  std::unique_ptr<AppProcess> app_;
};

}  // namespace flovyn::testing
