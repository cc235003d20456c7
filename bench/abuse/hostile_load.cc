// Hostile-load benchmark (prints figures; not a test): the attacks of tests/abuse at full
// scale against a fresh flovyn-server each, on PostgreSQL with production durability (started
// by bench/abuse/run), beside the idle server as the reference row.
// Usage: bench_hostile_load [seconds of rapid reset, default 10] [waiters | waiters=N/P]
//   waiters: only the waiting rows; waiters=N/P: only N polls + N streams, P per connection.
// FLOVYN_BENCH_LAUNCHER (e.g. "heaptrack -o /tmp/hl"): a program that runs each server.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine_harness.h"
#include "hostile.h"

using namespace flovyn::testing;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  std::string which = argc > 2 ? argv[2] : "";
  bool only_waiters = which.rfind("waiters", 0) == 0;
  std::vector<std::string> launcher;
  if (const char* l = std::getenv("FLOVYN_BENCH_LAUNCHER")) {
    std::istringstream words(l);
    for (std::string w; words >> w;) launcher.push_back(w);
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  std::printf("| run | figures |\n|---|---|\n");
  for (int once = 0; once < (only_waiters ? 0 : 1); ++once) {
    EngineServer s({.launcher = launcher});
    std::this_thread::sleep_for(2s);
    ProcStats p = ReadProc(s.server().process().pid());
    std::printf("| idle server (reference) | %ld threads, %.0f MiB RSS, %d descriptors |\n", p.threads, p.rss_mb,
                p.fds);
  }
  if (!only_waiters) {
    EngineServer s({.launcher = launcher});
    auto r = RapidReset(s.server().grpc_port(), s.server().process().pid(), std::chrono::seconds(seconds));
    std::printf(
        "| rapid reset, %d s, one connection | %ld HEADERS+RST_STREAM pairs; peak %ld threads, %.0f MiB RSS; "
        "alive: %s; next call from another client %.1f ms |\n",
        seconds, r.pairs, r.peak.threads, r.peak.rss_mb, s.server().process().running() ? "yes" : "NO", r.recovery_ms);
  }
  if (!only_waiters) {
    EngineServer s({.launcher = launcher});
    auto r = HalfOpen(s.server().grpc_port(), s.server().process().pid(), 100000, 64, 5s);
    std::printf(
        "| 100k half-open streams (64 per connection; defaults: 300 connections) | %d connections opened; "
        "RSS %.0f -> %.0f MiB held -> %.0f MiB after close; max %ld threads |\n",
        r.connections, r.baseline_mb, r.held_mb, r.after_mb, r.max_threads);
  }
  if (!only_waiters) {
    EngineServer s({.launcher = launcher});
    pid_t pid = s.server().process().pid();
    rlimit low{1024, 1024};
    prlimit(pid, RLIMIT_NOFILE, &low, nullptr);
    auto r = ExhaustDescriptors(s.http_port(), s.server().grpc_port(), pid, 1300, 5s);
    std::printf(
        "| descriptors: 1300 connections held 5 s, RLIMIT_NOFILE 1024 | server CPU while full %.2f cores; "
        "gRPC serving again %.0f ms after release; liveness %d |\n",
        r.cpu_while_full, r.grpc_back_ms, r.live_status_after);
  }
  struct Waiters {
    int n, per_connection;
  };
  std::vector<Waiters> rows = {{1000, 60}, {10000, 60}, {10000, 250}};
  if (int n = 0, p = 0; std::sscanf(which.c_str(), "waiters=%d/%d", &n, &p) == 2) rows = {{n, p}};
  for (Waiters w : rows) {
    int n = w.n;
    EngineServer s({.tenants = {"acme", "beta"},
                    .env = {{"GRPC__MAX_CONNECTIONS", "1000"},
                            {"GRPC__MAX_CONCURRENT_STREAMS", std::to_string(std::max(64, w.per_connection))},
                            {"ENGINE__MAX_POLLS_PER_TENANT", "10000"},
                            {"ENGINE__MAX_STREAMS_PER_TENANT", "10000"},
                            {"GRPC__HANDLER_QUEUE", "20000"}},
                    .launcher = launcher});
    WaitersSpec spec{.client = s.ClientFor("acme"),
                     .other = s.ClientFor("beta"),
                     .database_url = s.database_url(),
                     .polls = n,
                     .streams = n,
                     .per_channel = w.per_connection,
                     .window = 5000ms};
    auto r = ManyWaiters(s.server().process().pid(), spec);
    std::printf(
        "| %d long-polls + %d notification streams, %d per connection | %d refused; %ld threads, %.0f MiB RSS; "
        "database "
        "%.1f tx/s idle without them, %.1f tx/s with them; another tenant's call max %.1f ms; SIGTERM "
        "released %d of %d, every poll in %.0f ms and everything in %.0f ms |\n",
        r.polls, r.streams, w.per_connection, r.refused, r.held.threads, r.held.rss_mb, r.baseline_tx_per_s,
        r.waiting_tx_per_s, r.other_tenant_max_ms, r.released, r.polls + r.streams, r.polls_release_ms, r.release_ms);
  }
  return 0;
}
