// Background work every replica runs: fires due timers, times out promises, returns work whose
// lease expired, cancels executions whose grace period ended, refreshes the queue-depth gauges.
// Row locks make each item happen once however many replicas run.
//
// Timers are precise: the scheduler sleeps until the earliest of the next sweep, the next
// pending deadline the database reported after its last run, and any deadline hinted since (a
// commit here or, through the notifier, on another replica). The sweep every `sweep` is the
// safety net for a hint that was lost. Ticks come from a TimeSource: by default its own timer
// thread, in tests a ManualTime that ticks when the test advances it. Thread-safe.
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
  using time_point = TimeSource::time_point;
  // `time`: null for a timer thread of its own; otherwise it must outlive the scheduler.
  explicit Scheduler(Store& store, std::chrono::milliseconds sweep = std::chrono::milliseconds(500),
                     TimeSource* time = nullptr);
  ~Scheduler() { Stop(); }
  // The first run is at once: it sweeps and learns the next deadline.
  void Start();
  // No run starts after this; one running is waited for.
  void Stop();
  // A timer or promise timeout falls due at `unix_ms` (Unix milliseconds): run then, unless a
  // run is already planned before it.
  void Hint(int64_t unix_ms);
  // When the next run is planned (tests).
  time_point planned() const;
  uint64_t runs() const;  // runs so far (tests)

  static constexpr int kDepthEvery = 4;  // queue depth for the metrics, every fourth sweep
  // When the database reports a deadline already past after a run that fired nothing (another
  // replica holds it, or the database fails), the next run is this much later. After a run that
  // fired something, the next one is at once: what fell due meanwhile goes without waiting.
  static constexpr std::chrono::milliseconds kOverdueRetry{10};

 private:
  void Tick();
  // Fires what is due; returns how many timers and promise timeouts it fired.
  int FireDue();
  void Sweep();
  void PlanLocked(time_point at) REQUIRES(mu_);
  Store& store_;
  std::chrono::milliseconds sweep_;
  std::unique_ptr<SystemTime> own_time_;
  TimeSource* time_;
  mutable Mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = true;
  bool running_ GUARDED_BY(mu_) = false;  // a run is under way: hints are kept for its end
  uint64_t runs_ GUARDED_BY(mu_) = 0;
  uint64_t next_ GUARDED_BY(mu_) = 0;   // the planned run's id in time_
  time_point planned_ GUARDED_BY(mu_);  // and when it is
  time_point hinted_ GUARDED_BY(mu_);   // the earliest hint received during a run
  time_point next_sweep_ GUARDED_BY(mu_);
  int depth_every_ = 0;  // the running thread's
};

}  // namespace flovyn::engine
