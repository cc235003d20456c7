// Drivers for hostile load against a running flovyn-server, shared by tests/abuse (bounded,
// asserting) and bench/abuse (full scale, printing figures): raw HTTP/2 frames (rapid reset,
// half-open streams, idle connections), descriptor exhaustion, many waiting long-polls and
// notification streams, and label-cardinality floods. Each reads the server's threads, memory
// and CPU from /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "flovyn/sdk/client.h"

namespace flovyn::testing {

struct ProcStats {
  long threads = 0;
  double rss_mb = 0;
  double cpu_s = 0;  // user + system
  int fds = 0;
};
ProcStats ReadProc(pid_t pid);

// A TCP connection to 127.0.0.1:port (2 s send timeout); -1 when refused.
int ConnectLoopback(int port);

// One HTTP/2 connection speaking raw frames (prior knowledge, no TLS).
class H2Conn {
 public:
  explicit H2Conn(int port);
  ~H2Conn();
  H2Conn(const H2Conn&) = delete;
  H2Conn& operator=(const H2Conn&) = delete;
  bool ok() const { return fd_ >= 0 && !broken_; }
  // Queues a gRPC request's HEADERS on a new stream (no message follows); returns its id.
  uint32_t OpenStream(const std::string& path);
  void Reset(uint32_t stream);  // RST_STREAM CANCEL
  bool Flush();                 // writes what is queued; false when the server closed
  void Drain();                 // reads and discards what the server sent
  // Waits for the server to close the connection.
  bool WaitClosed(std::chrono::milliseconds timeout);
  uint32_t streams_opened() const { return (next_ - 1) / 2; }

 private:
  int fd_ = -1;
  bool broken_ = false;
  uint32_t next_ = 1;
  std::string out_;
};

struct RapidResetResult {
  long pairs = 0;
  double baseline_mb = 0;  // the server's resident memory before the flood
  int connections = 0;
  ProcStats peak;
  double recovery_ms = -1;  // a normal call from another client after the flood; -1: failed
};
// HEADERS+RST_STREAM pairs for `duration`, and on (up to four times the duration) until
// `at_least_pairs` were sent and, when `until_shed`, until the server closed a connection.
RapidResetResult RapidReset(int grpc_port, pid_t pid, std::chrono::milliseconds duration, long at_least_pairs = 0,
                            bool until_shed = false);

struct HalfOpenResult {
  long streams = 0;
  int connections = 0;
  double baseline_mb = 0, held_mb = 0, after_mb = 0;
  long max_threads = 0;
};
HalfOpenResult HalfOpen(int grpc_port, pid_t pid, long streams, int per_connection, std::chrono::milliseconds hold);

// A normal unauthenticated grpc.health.v1 call on a fresh connection; milliseconds, or -1.
double HealthCallMs(int grpc_port, std::chrono::milliseconds deadline);

struct ExhaustionResult {
  int held = 0;
  double cpu_while_full = 0;  // cores used by the server while descriptors were exhausted
  double grpc_back_ms = -1;   // from release until a fresh gRPC call succeeds
  int live_status_after = 0;
};
// Holds `connections` TCP connections (three in four on the HTTP port) for `hold`, then releases them.
ExhaustionResult ExhaustDescriptors(int http_port, int grpc_port, pid_t pid, int connections,
                                    std::chrono::milliseconds hold);

struct WaitersResult {
  int polls = 0, streams = 0, refused = 0;
  ProcStats held;
  double baseline_tx_per_s = 0, waiting_tx_per_s = 0;
  double other_tenant_max_ms = 0;
  double release_ms = -1;        // SIGTERM until every poll and stream ended
  double polls_release_ms = -1;  // SIGTERM until every poll ended
  int released = 0;
};
struct WaitersSpec {
  sdk::ClientOptions client;  // the waiting tenant's worker
  sdk::ClientOptions other;   // another tenant, whose calls are timed
  std::string database_url;   // the server's database (transactions per second)
  int polls = 1000, streams = 1000;
  int per_channel = 200;  // calls per connection
  std::chrono::milliseconds window{5000};
};
// Parks polls and streams, measures, then sends SIGTERM to `pid` and times their release.
WaitersResult ManyWaiters(pid_t pid, const WaitersSpec& spec);

}  // namespace flovyn::testing
