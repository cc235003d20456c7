// The gRPC listener: services registered by the program's modules, the standard health
// service, request metrics, explicit limits on what a connection may hold, and a bounded
// shutdown. Flovyn accepts the connections itself and hands them to grpc++, so the accept loop
// caps connections and backs off when descriptors run out instead of giving up (the accept
// loop inside grpc 1.51 stops for good after EMFILE). Thread-safe after Start.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "flovyn/core/mutex.h"
#include "flovyn/core/status.h"
#include "flovyn/grpc/health_service.h"
#include "flovyn/trace/trace.h"

namespace flovyn::metrics {
class Registry;
class Counter;
class Gauge;
}  // namespace flovyn::metrics

namespace flovyn::grpcsvc {

// Canonical Status -> grpc::Status.
::grpc::Status ToGrpc(const Status& s);

// The caller's trace context from its `traceparent` metadata, if any.
std::optional<trace::SpanContext> CallerContext(::grpc::ServerContextBase* ctx);

// The server span of one call: child of the caller's `traceparent` metadata, current on this
// thread for the handler's duration (so store spans nest under it). `name` is the program's
// ("flovyn.v1/PollWorkflow").
class CallSpan {
 public:
  CallSpan(::grpc::ServerContextBase* ctx, std::string name);
  trace::Span& span() { return span_; }

 private:
  trace::Span span_;
  trace::ScopedContext scope_;
};

// What the network may make the gRPC server hold (docs/deployment.md).
struct ServerLimits {
  int max_connections = 300;        // beyond it a new connection is closed at once
  int max_concurrent_streams = 64;  // per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)
  int max_receive_message_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds max_connection_idle{300000};  // no call in flight: GOAWAY
  std::chrono::milliseconds max_connection_age{1800000};  // then GOAWAY; calls get the grace
  std::chrono::milliseconds max_connection_age_grace{90000};
  std::chrono::milliseconds handshake_timeout{10000};  // HTTP/2 preface and settings
  std::chrono::milliseconds keepalive_time{60000};     // server pings an idle connection
  std::chrono::milliseconds keepalive_timeout{20000};
  std::chrono::milliseconds min_client_ping_interval{10000};  // faster pings are strikes
  size_t memory_quota_bytes = size_t{128} * 1024 * 1024;      // grpc core buffers (ResourceQuota)
  int max_sync_threads = 8;                                   // ResourceQuota thread cap
  int max_health_watches = 100;
  // Above this resident size the connection sending the most is closed (0: never). Guards
  // against floods the HTTP/2 transport cannot refuse (rapid reset).
  size_t shed_above_bytes = size_t{128} * 1024 * 1024;
  int receive_buffer_bytes = 64 * 1024;  // per connection (SO_RCVBUF): bounds an unread backlog
};

// Accepts TCP connections and hands them to grpc++: caps open connections and backs off on
// EMFILE/ENFILE/ENOBUFS/ENOMEM rather than spinning or stopping. Thread-safe.
class Listener {
 public:
  Listener(const ServerLimits& limits, metrics::Registry* metrics);
  ~Listener();
  Status Bind(const std::string& address);  // host:port, [v6]:port; port 0 picks one
  int port() const { return port_; }
  void Start(std::unique_ptr<::grpc::experimental::ExternalConnectionAcceptor> acceptor);
  void Stop();
  // A call from `peer` (grpc's "ipv4:a.b.c.d:port") reached a handler: its connection is
  // doing useful work, so it is not the one to shed.
  void NoteCall(const std::string& peer);

 private:
  void Loop();
  void Prune() REQUIRES(conns_mu_);  // forgets connections grpc++ has closed
  void Maintain();                   // prunes, sheds under memory pressure, hands memory back; accept thread
  void ShedLocked(bool over) REQUIRES(conns_mu_);
  int fd_ = -1, port_ = 0;
  int wake_[2] = {-1, -1};
  const int max_connections_;
  const size_t shed_above_;
  const int receive_buffer_;
  std::unique_ptr<::grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  Mutex conns_mu_;
  std::unordered_map<int, unsigned long> conns_ GUARDED_BY(conns_mu_);  // fd -> inode
  size_t peak_since_trim_ = 0;                                          // the accept thread only
  std::chrono::steady_clock::time_point last_trim_;                     // the accept thread only
  std::chrono::steady_clock::time_point last_prune_, trim_due_;         // the accept thread only
  std::unordered_map<int, uint64_t> last_bytes_ GUARDED_BY(conns_mu_);  // fd -> bytes received
  std::unordered_map<std::string, int> peer_fd_ GUARDED_BY(conns_mu_);
  std::unordered_map<int, std::chrono::steady_clock::time_point> last_call_ GUARDED_BY(conns_mu_);
  metrics::Counter* shed_ = nullptr;
  metrics::Counter* refused_ = nullptr;
  metrics::Counter* accept_errors_ = nullptr;
  metrics::Gauge* open_ = nullptr;
  std::thread thread_;
};

class Server {
 public:
  Server(std::string address, const lifecycle::StageCell& stage, health::Monitor& monitor, metrics::Registry* metrics,
         ServerLimits limits = {});
  ~Server();

  // Before Start. The service must outlive the server.
  void AddService(::grpc::Service* service, std::string full_name);
  Status Start();
  int port() const { return listener_ ? listener_->port() : 0; }
  // Stops accepting calls, waits for in-flight calls until the deadline, then cancels them.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  std::string address_;
  metrics::Registry* metrics_;
  ServerLimits limits_;
  std::vector<std::pair<::grpc::Service*, std::string>> services_;
  std::unique_ptr<HealthService> health_;
  const lifecycle::StageCell& stage_;
  health::Monitor& monitor_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<::grpc::Server> server_;
  std::atomic<int64_t> live_calls_{0};  // calls whose interceptor exists (received, not yet done)
};

// A call reached the program's own handler code (not a stream the transport cancelled before
// that): its connection is doing useful work and is not shed under memory pressure.
void NoteHandledCall(::grpc::ServerContextBase* ctx);

// Whether a fresh connection to the gRPC listener at `target` (host:port) completes a
// grpc.health.v1 call by `deadline` (the liveness self-check: any answer counts).
bool ListenerAnswers(const std::string& target, std::chrono::steady_clock::time_point deadline);

}  // namespace flovyn::grpcsvc
