// Test harness: real PostgreSQL and NATS servers started on loopback in temporary directories,
// child processes of the programs under test, a small HTTP client and a TCP proxy that can
// turn into a black hole (accepts, never answers) for fault injection.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace flovyn::testing {

using namespace std::chrono_literals;

int FreePort();
std::string MakeTempDir(const std::string& prefix);
// Runs a shell command; returns its exit status and fills `output` (stdout+stderr).
int RunCommand(const std::string& cmd, std::string* output = nullptr);

class Postgres {
 public:
  // initdb + start on a free port. As root the server runs as the `postgres` user.
  Postgres();
  // Attaches to a server started by scripts/test-services (not stopped by this object).
  Postgres(int port, std::string bindir);
  ~Postgres();
  void Start();
  void Stop();
  int port() const { return port_; }
  // A URL for database `db` (created by CreateDatabase).
  std::string Url(const std::string& db = "postgres") const;
  // Creates a fresh database and returns its URL.
  std::string CreateDatabase(const std::string& prefix = "t");
  // `url`, a URL of this server, reaching it through a proxy on `proxy_port` (a TcpProxy).
  std::string Through(const std::string& url, int proxy_port) const;
  // Runs SQL with psql against `db`; returns the unaligned output.
  std::string Psql(const std::string& db, const std::string& sql) const;
  // The server started by scripts/test-services when FLOVYN_TEST_SERVICES names its folder,
  // otherwise one started for this test binary. Tests that stop PostgreSQL use their own.
  static Postgres& Shared();

 private:
  std::string Bin(const std::string& tool) const;
  std::string AsOwner(const std::string& cmd) const;
  std::string dir_, bindir_;
  int port_;
  bool running_ = false;
  bool owned_ = true;
};

class Nats {
 public:
  Nats();
  ~Nats();
  void Start();
  void Stop();
  int port() const { return port_; }
  std::string Url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
  std::string dir_;
};

struct HttpResult {
  int status = 0;                              // 0 = connection failed
  std::map<std::string, std::string> headers;  // lower-case names; a repeated header's values one per line
  std::string body;
  std::string error;
};

HttpResult HttpRequest(const std::string& method, int port, const std::string& target, const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {}, std::chrono::milliseconds timeout = 10s);
inline HttpResult HttpGet(int port, const std::string& target, std::chrono::milliseconds timeout = 10s) {
  return HttpRequest("GET", port, target, "", {}, timeout);
}

// A child process of a program under test, with its output in a log file.
class ChildProcess {
 public:
  ChildProcess(std::string binary, std::vector<std::string> args, std::map<std::string, std::string> env);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit code, or -1 on timeout (the process keeps running).
  int Wait(std::chrono::milliseconds timeout);
  bool running();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// flovyn-server started with the given environment on free ports.
class ServerProcess {
 public:
  struct Options {
    std::string database_url;
    std::map<std::string, std::string> env;  // extra or overriding variables
    std::vector<std::string> args;
    bool testbed = false;  // the binary with test-only routes (slow requests)
    // A program that runs the server (e.g. {"/usr/bin/prlimit", "--nofile=256:4096", "--"}).
    std::vector<std::string> launcher;
    int http_port = 0;  // 0: a free port (likewise below)
    int grpc_port = 0;
  };
  explicit ServerProcess(Options o);
  int http_port() const { return http_port_; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  // Polls the ready probe until 200; false on timeout or exit.
  bool WaitReady(std::chrono::milliseconds timeout = 20s);
  ChildProcess& process() { return *child_; }

 private:
  int http_port_, grpc_port_, metrics_port_;
  std::unique_ptr<ChildProcess> child_;
};

std::string ServerBinary();
std::string TestbedBinary();

// Forwards 127.0.0.1:port() to 127.0.0.1:target. In black-hole mode it stops forwarding in
// both directions and accepts new connections without ever answering them.
class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  int port() const { return port_; }
  void SetBlackhole(bool on) { blackhole_ = on; }
  // How many times a client's bytes were read and passed on: one per flight of messages the
  // client sent before it waited for an answer.
  int client_flights() const { return client_flights_; }

 private:
  void AcceptLoop();
  void Pump(int a, int b);
  int target_, port_, listen_fd_;
  std::atomic<bool> blackhole_{false}, stop_{false};
  std::atomic<int> client_flights_{0};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::vector<int> fds_;
};

// Waits for a condition the test can observe instead of sleeping for a guess: polls `cond`
// every 10 ms until it holds (true) or `timeout` passes (false).
bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s);

// The sum of a metric's samples in a Prometheus text scrape whose series contain `labels`
// (all of them when empty); 0 when absent.
double MetricValue(const std::string& scrape, const std::string& name, const std::string& labels = "");
// Scrapes a server's /metrics and reads one metric (as MetricValue).
double ScrapeMetric(int metrics_port, const std::string& name, const std::string& labels = "");

}  // namespace flovyn::testing
