// HTTP/1.1 server on Boost.Beast: keep-alive, header and body limits, read timeouts, JSON
// errors, and a drain protocol (stop accepting, let in-flight requests finish, then cut the
// rest). Handlers that may block run on a separate thread pool so probes never wait behind them.
// Public methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "flovyn/core/status.h"
#include "flovyn/http/router.h"
#include "flovyn/lifecycle/drain.h"

namespace flovyn::metrics {
class Registry;
}

namespace flovyn::http {

struct ServerOptions {
  std::string bind_address = "0.0.0.0";
  int port = 0;  // 0 = pick a free port
  int io_threads = 2;
  int handler_threads = 16;
  size_t max_header_bytes = size_t{16} * 1024;
  size_t max_body_bytes = size_t{1024} * 1024;
  std::chrono::seconds read_timeout{30};  // per read, including an idle keep-alive wait
  // Open connections at most; a connection beyond it is answered 503 and closed. When accept
  // fails for want of descriptors or memory the listener backs off (10 ms doubling to 1 s).
  int max_connections = 1000;
  const char* listener_label = "http";  // the `listener` label of the connection metrics
  // Consulted per connection after each response: once it says so, the response carries
  // `Connection: close` and the connection ends. Null: only StopAccepting closes connections.
  const lifecycle::DrainManager* drain = nullptr;
};

class Server {
 public:
  // `api_open` says whether routes without before_running may be served now.
  Server(ServerOptions options, const Router& router, std::function<bool()> api_open,
         metrics::Registry* metrics = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start();  // binds and starts serving
  int port() const;

  // Closes the listener and idle keep-alive connections; connections busy with a request
  // close after their response.
  void StopAccepting();
  int in_flight() const;
  // Waits until no request is in flight or the deadline passes; true when idle.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline);
  // Closes every remaining connection; returns how many requests were cut.
  int CloseAll();
  // Joins threads, waiting at most `handler_grace` for handlers still running.
  void Stop(std::chrono::milliseconds handler_grace = std::chrono::seconds(1));

  class Impl;  // public so the connection class in server.cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace flovyn::http
