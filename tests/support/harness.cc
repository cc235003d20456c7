#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace flovyn::testing {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  ::chmod(tmpl.c_str(), 0777);
  return tmpl;
}

int RunCommand(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

namespace {
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

bool WaitPort(int port, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}
}  // namespace

// ---- Postgres ----

Postgres::Postgres() : port_(FreePort()) {
  const char* env = std::getenv("FLOVYN_PG_BINDIR");
  if (env != nullptr) {
    bindir_ = env;
  } else {
    for (const char* v : {"17", "16", "15", "14", "13"}) {
      std::string d = std::string("/usr/lib/postgresql/") + v + "/bin";
      if (fs::exists(d + "/initdb")) {
        bindir_ = d;
        break;
      }
    }
  }
  if (bindir_.empty()) throw std::runtime_error("PostgreSQL server binaries not found (apt-get install postgresql)");
  dir_ = MakeTempDir("flovyn-pg");
  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root needs the postgres user");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown");
  }
  std::string out;
  if (RunCommand(AsOwner(Bin("initdb") + " -D " + dir_ + "/data -A trust -U postgres --no-sync -E UTF8"), &out) != 0) {
    throw std::runtime_error("initdb failed: " + out);
  }
  Start();
}

Postgres::Postgres(int port, std::string bindir) : bindir_(std::move(bindir)), port_(port), owned_(false) {}

Postgres::~Postgres() {
  if (!owned_) return;
  if (running_) Stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string Postgres::Bin(const std::string& tool) const { return bindir_ + "/" + tool; }

std::string Postgres::AsOwner(const std::string& cmd) const {
  if (::geteuid() == 0) return "runuser -u postgres -- " + cmd;
  return cmd;
}

void Postgres::Start() {
  std::string opts = "-p " + std::to_string(port_) + " -k " + dir_ +
                     " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                     " -c full_page_writes=off -c max_connections=300";
  std::string out;
  if (RunCommand(AsOwner(Bin("pg_ctl") + " -D " + dir_ + "/data -o " + ShellQuote(opts) + " -l " + dir_ +
                         "/log -w -t 60 start"),
                 &out) != 0) {
    throw std::runtime_error("pg_ctl start failed: " + out);
  }
  running_ = true;
}

void Postgres::Stop() {
  std::string out;
  RunCommand(AsOwner(Bin("pg_ctl") + " -D " + dir_ + "/data -m fast -w -t 60 stop"), &out);
  running_ = false;
}

std::string Postgres::Url(const std::string& db) const {
  return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

std::string Postgres::Through(const std::string& url, int proxy_port) const {
  std::string at = ":" + std::to_string(port_) + "/", via = url;
  via.replace(via.find(at), at.size(), ":" + std::to_string(proxy_port) + "/");
  return via;
}

std::string Postgres::CreateDatabase(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::string name = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  Psql("postgres", "CREATE DATABASE " + name);
  return Url(name);
}

std::string Postgres::Psql(const std::string& db, const std::string& sql) const {
  std::string out;
  std::string cmd = "psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " + std::to_string(port_) + " -U postgres -d " +
                    db + " -c " + ShellQuote(sql);
  if (RunCommand(cmd, &out) != 0) throw std::runtime_error("psql failed: " + out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Postgres& Postgres::Shared() {
  static std::unique_ptr<Postgres> pg = [] {
    const char* dir = std::getenv("FLOVYN_TEST_SERVICES");
    if (dir != nullptr) {
      std::ifstream in(std::string(dir) + "/pg_port");
      int port = 0;
      if (in >> port && port > 0) return std::make_unique<Postgres>(port, "");
    }
    return std::make_unique<Postgres>();
  }();
  return *pg;
}

// ---- Nats ----

Nats::Nats() : port_(FreePort()), dir_(MakeTempDir("flovyn-nats")) { Start(); }

Nats::~Nats() {
  Stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Nats::Start() {
  pid_ = ::fork();
  if (pid_ == 0) {
    std::string log = dir_ + "/nats.log";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::string port = std::to_string(port_);
    const char* bin = fs::exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
    ::execlp(bin, "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (!WaitPort(port_, 10s)) throw std::runtime_error("nats-server did not start");
}

void Nats::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

// ---- HTTP ----

HttpResult HttpRequest(const std::string& method, int port, const std::string& target, const std::string& body,
                       const std::map<std::string, std::string>& headers, std::chrono::milliseconds timeout) {
  HttpResult result;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    if (headers.count("Content-Type") == 0 && headers.count("content-type") == 0) {
      req.set(bhttp::field::content_type, "application/json");
    }
    req.body() = body;
    req.prepare_payload();
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  stream.expires_after(timeout);
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  stream.async_connect(ep, [&](beast::error_code ec) {
    if (ec) {
      result.error = "connect: " + ec.message();
      return;
    }
    bhttp::async_write(stream, req, [&](beast::error_code ec2, size_t) {
      if (ec2) {
        result.error = "write: " + ec2.message();
        return;
      }
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec3, size_t) {
        if (ec3) {
          result.error = "read: " + ec3.message();
          return;
        }
        auto& res = parser.get();
        result.status = static_cast<int>(res.result_int());
        for (const auto& f : res) {
          std::string n(f.name_string());
          for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          auto& slot = result.headers[n];
          slot += (slot.empty() ? "" : "\n") + std::string(f.value());  // repeated headers (Set-Cookie), one per line
        }
        result.body = res.body();
      });
    });
  });
  ioc.run();
  return result;
}

// ---- ChildProcess ----

ChildProcess::ChildProcess(std::string binary, std::vector<std::string> args, std::map<std::string, std::string> env) {
  std::string dir = MakeTempDir("flovyn-proc");
  log_path_ = dir + "/output.log";
  if (env.count("PATH") == 0) env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  std::vector<std::string> argv_s{binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> a, e;
    for (auto& s : argv_s) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : env_s) e.push_back(s.data());
    e.push_back(nullptr);
    ::execve(binary.c_str(), a.data(), e.data());
    ::_exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    Wait(10s);
  }
}

void ChildProcess::Signal(int sig) { ::kill(pid_, sig); }

bool ChildProcess::running() {
  if (exit_code_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= end) return -1;
    std::this_thread::sleep_for(5ms);
  }
  return exit_code_.value_or(-1);
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- ServerProcess ----

std::string ServerBinary() { return FLOVYN_SERVER_BINARY; }
std::string TestbedBinary() { return FLOVYN_TESTBED_BINARY; }

ServerProcess::ServerProcess(Options o)
    : http_port_(o.http_port ? o.http_port : FreePort()),
      grpc_port_(o.grpc_port ? o.grpc_port : FreePort()),
      metrics_port_(FreePort()) {
  std::map<std::string, std::string> env{
      {"DATABASE_URL", o.database_url},
      {"SERVER_PORT", std::to_string(http_port_)},
      {"GRPC_SERVER_PORT", std::to_string(grpc_port_)},
      {"METRICS__PORT", std::to_string(metrics_port_)},
      {"BIND_ADDRESS", "127.0.0.1"},
      {"WORKER_TOKEN_SECRET", "test-worker-token-secret-0123456789abcdef"},
      {"RUST_LOG", "info"},
  };
  for (const auto& [k, v] : o.env) env[k] = v;
  std::string binary = o.testbed ? TestbedBinary() : ServerBinary();
  if (o.launcher.empty()) {
    child_ = std::make_unique<ChildProcess>(binary, o.args, env);
  } else {
    std::vector<std::string> args(o.launcher.begin() + 1, o.launcher.end());
    args.push_back(binary);
    args.insert(args.end(), o.args.begin(), o.args.end());
    child_ = std::make_unique<ChildProcess>(o.launcher.front(), args, env);
  }
}

bool ServerProcess::WaitReady(std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (!child_->running()) return false;
    if (HttpGet(http_port_, "/_/health/ready", 2s).status == 200) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// ---- TcpProxy ----

TcpProxy::TcpProxy(int target_port) : target_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("proxy bind");
  ::listen(listen_fd_, 128);
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  for (auto& t : pumps_) t.join();
  for (int fd : fds_) ::close(fd);
}

void TcpProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) continue;
    fds_.push_back(c);
    if (blackhole_) continue;  // hold it open, never answer
    int u = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(target_));
    if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(u);
      ::shutdown(c, SHUT_RDWR);
      continue;
    }
    fds_.push_back(u);
    pumps_.emplace_back([this, c, u] { Pump(c, u); });
  }
}

void TcpProxy::Pump(int a, int b) {
  char buf[16384];
  while (!stop_) {
    if (blackhole_) {
      std::this_thread::sleep_for(20ms);
      continue;
    }
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (::poll(p, 2, 50) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (blackhole_) break;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      int other = i == 0 ? b : a;
      if (i == 0 && n > 0) ++client_flights_;
      if (n <= 0) {
        ::shutdown(other, SHUT_RDWR);
        ::shutdown(p[i].fd, SHUT_RDWR);
        return;
      }
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = ::write(other, buf + off, static_cast<size_t>(n - off));
        if (w <= 0) return;
        off += w;
      }
    }
  }
}

bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

double MetricValue(const std::string& scrape, const std::string& name, const std::string& labels) {
  double sum = 0;
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    std::string series = line.substr(0, space);
    if (series.substr(0, series.find('{')) != name) continue;
    if (!labels.empty() && series.find(labels) == std::string::npos) continue;
    sum += std::stod(line.substr(space + 1));
  }
  return sum;
}

double ScrapeMetric(int metrics_port, const std::string& name, const std::string& labels) {
  return MetricValue(HttpGet(metrics_port, "/metrics", 2s).body, name, labels);
}

}  // namespace flovyn::testing
