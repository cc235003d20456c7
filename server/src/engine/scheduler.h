// Background work every replica runs: fires due timers, times out promises, returns work whose
// lease expired, refreshes the queue-depth gauges. Row locks make each item happen once however
// many replicas run. Ticks come from a TimeSource: by default its own timer thread, in tests a
// ManualTime that ticks when the test advances it. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "engine/store.h"
#include "flovyn/core/mutex.h"
#include "flovyn/core/time_source.h"

namespace flovyn::engine {

class Scheduler {
 public:
  // `time`: null for a timer thread of its own; otherwise it must outlive the scheduler.
  explicit Scheduler(Store& store, std::chrono::milliseconds tick = std::chrono::milliseconds(100),
                     TimeSource* time = nullptr);
  ~Scheduler() { Stop(); }
  // The first tick comes one `tick` from now.
  void Start();
  // No tick starts after this; one running is waited for.
  void Stop();

  static constexpr int kLeaseEvery = 5;   // leases are coarse: every half second is plenty
  static constexpr int kDepthEvery = 20;  // queue depth for the metrics, every two seconds

 private:
  void Tick();
  void ScheduleNext();
  Store& store_;
  std::chrono::milliseconds tick_;
  std::unique_ptr<SystemTime> own_time_;
  TimeSource* time_;
  Mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = false;
  uint64_t next_ GUARDED_BY(mu_) = 0;
  int lease_every_ = 0, depth_every_ = 0;  // the ticking thread's
};

}  // namespace flovyn::engine
