// One run of `serve` (operations.md §1 and §4), as named phases over what the process builds:
// listen (HTTP first, so probes answer during migrations), migrate, start components (NATS,
// modules, gRPC last), run until a drain is requested, then drain in the documented order.
// Members are declared in the order they are built and are destroyed in reverse. Used by
// Process::Serve on the main thread, after the signal mask is set.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flovyn/core/mutex.h"
#include "flovyn/db/pool.h"
#include "flovyn/grpc/server.h"
#include "flovyn/health/monitor.h"
#include "flovyn/http/server.h"
#include "flovyn/lifecycle/drain.h"
#include "flovyn/lifecycle/signals.h"
#include "flovyn/lifecycle/stage.h"
#include "flovyn/metrics/registry.h"
#include "flovyn/nats/connection.h"
#include "flovyn/runtime/process.h"

namespace flovyn::runtime {

db::PoolOptions PoolOptionsFor(const ProcessSpec& s, int size, const std::string& application);

class Serving {
 public:
  Serving(const ProcessSpec& spec, const config::Values& config, std::vector<std::unique_ptr<Module>>& modules,
          std::vector<migrate::Migration> migrations);
  ~Serving();

  // Each phase returns false when the process must exit with status 1 (the reason is logged).
  bool Listen();
  enum class Migrated { kDone, kStopRequested, kFailed };
  Migrated Migrate();
  bool StartComponents();
  void WaitForDrainRequest() { drain_.Wait(); }
  // The drain; returns the exit code (or ends the process when requests had to be cut).
  int Drain();
  // Stopped before it ran (a drain requested during migrations).
  void StopEarly();

 private:
  using Clock = std::chrono::steady_clock;
  void SetStage(lifecycle::Stage s);
  void StartTracing();
  void AddHealthChecks();
  void AddLivenessCheck();
  bool StartMetricsListener();
  bool StartModules();
  bool StartGrpc();
  void FinishInFlight(Clock::time_point deadline);
  void StopComponents(Clock::time_point deadline);

  const ProcessSpec& spec_;
  const config::Values& config_;
  std::vector<std::unique_ptr<Module>>& modules_;
  const std::vector<migrate::Migration> migrations_;
  const Clock::time_point started_ = Clock::now();
  lifecycle::DrainManager drain_;
  lifecycle::SignalWatcher signals_;
  lifecycle::StageCell stage_;
  metrics::Registry registry_;
  runtime::Services services_;  // what modules provide each other while starting
  std::unique_ptr<trace::Tracer> tracer_;
  db::Pool pool_;
  db::Pool probe_pool_;  // probes get their own connection so they never queue behind traffic
  std::unique_ptr<nats::Connection> nats_;
  health::Monitor monitor_;
  health::Monitor live_monitor_;
  std::atomic<int> grpc_port_bound_{0};
  Mutex unknown_mu_;
  std::vector<std::string> unknown_migrations_ GUARDED_BY(unknown_mu_);
  http::Router router_;
  std::unique_ptr<http::Server> http_;
  http::Router metrics_router_;
  std::unique_ptr<http::Server> metrics_http_;
  std::unique_ptr<grpcsvc::Server> grpc_;
  int cut_ = 0;  // HTTP requests cancelled at the shutdown timeout
};

}  // namespace flovyn::runtime
