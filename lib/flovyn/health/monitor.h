// Dependency health checks with the probe contract: every check has a deadline, concurrent
// probes share one in-flight evaluation, and a result is reused for at most `max_age`, so a
// probe storm never becomes a query storm and no probe waits behind another. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flovyn/core/mutex.h"

namespace flovyn::metrics {
class Registry;
template <typename T>
class Family;
class Gauge;
class Counter;
}  // namespace flovyn::metrics

namespace flovyn::health {

using Clock = std::chrono::steady_clock;

struct CheckResult {
  bool up = false;
  double latency_ms = 0;
  std::string error;  // short, never a secret or connection string
};

struct Report {
  bool all_up = true;
  std::map<std::string, CheckResult> checks;
  // Unique to the run that produced it, across monitors: what is built from a report (a probe's
  // body) is kept until the next run.
  uint64_t id = 0;
};

// Must return by `deadline`; the monitor stops waiting at the deadline regardless.
using CheckFn = std::function<CheckResult(Clock::time_point deadline)>;

class Monitor {
 public:
  explicit Monitor(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                   std::chrono::milliseconds max_age = std::chrono::seconds(1), metrics::Registry* metrics = nullptr);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Register before the first Evaluate.
  void Register(std::string name, CheckFn check);
  // Calls `done` with a report no older than max_age; from the caller's thread when cached.
  void Evaluate(std::function<void(const Report&)> done);
  Report EvaluateBlocking();
  uint64_t runs() const;  // evaluations started (for tests of sharing and caching)

 private:
  struct Run;
  void StartRun() REQUIRES(mu_);
  void Finish(const std::shared_ptr<Run>& run);

  std::chrono::milliseconds timeout_, max_age_;
  std::vector<std::pair<std::string, CheckFn>> checks_;
  metrics::Family<metrics::Gauge>* status_gauge_ = nullptr;
  metrics::Family<metrics::Counter>* runs_counter_ = nullptr;

  mutable Mutex mu_;
  CondVar threads_cv_;
  bool running_ GUARDED_BY(mu_) = false;
  std::vector<std::function<void(const Report&)>> waiters_ GUARDED_BY(mu_);
  std::shared_ptr<const Report> cached_ GUARDED_BY(mu_);
  Clock::time_point cached_at_ GUARDED_BY(mu_){};
  bool has_cache_ GUARDED_BY(mu_) = false;
  uint64_t runs_ GUARDED_BY(mu_) = 0;
  int live_threads_ GUARDED_BY(mu_) = 0;
};

}  // namespace flovyn::health
