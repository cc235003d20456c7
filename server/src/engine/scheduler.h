// Background work every replica runs: fires due timers, times out promises, returns work whose
// lease expired, cancels executions whose grace period ended, refreshes the queue-depth gauges.
// Row locks make each item happen once however many replicas run.
//
// Timers are precise. The scheduler keeps the upcoming deadlines it knows (the next few the
// database reported after each run, and every deadline hinted since by a commit here or, through
// the notifier, on another replica) and starts a run at the earliest, and at least every `sweep`
// as the safety net for a hint that was lost. A run fires what is due by its transaction's
// start. Runs go on `lanes` timer threads: a deadline that falls due while a run is under way
// gets a run of its own on a free lane instead of waiting for the first to commit. A run looks
// for overdue promises only when a promise deadline (or a hint, which does not say its kind) is
// due. The sweep (leases, overdue cancellations, queue depth) runs every `sweep` on a timer of
// its own, so a slow sweep never delays a timer.
//
// Ticks come from TimeSources: by default a timer thread for each lane and one for the sweep; in
// tests one ManualTime for everything (one lane), which ticks when the test advances it.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/store.h"
#include "flovyn/core/mutex.h"
#include "flovyn/core/time_source.h"

namespace flovyn::engine {

class Scheduler {
 public:
  using time_point = TimeSource::time_point;
  // `time`: null for timer threads of its own (`lanes` of them for runs); otherwise it must
  // outlive the scheduler, and runs go one at a time on it.
  explicit Scheduler(Store& store, std::chrono::milliseconds sweep = std::chrono::milliseconds(500),
                     TimeSource* time = nullptr, int lanes = kLanes);
  ~Scheduler() { Stop(); }
  // The first run is at once: it sweeps and learns the next deadlines.
  void Start();
  // No run starts after this; those running are waited for.
  void Stop();
  // A timer or promise timeout falls due at `unix_us` (Unix microseconds): a run then.
  void Hint(int64_t unix_us);
  // When the next run is planned (tests).
  time_point planned() const;
  uint64_t runs() const;          // runs so far (tests)
  uint64_t promise_runs() const;  // of which looked for overdue promises (tests)
  size_t known() const;           // upcoming deadlines kept in memory (tests)

  static constexpr int kLanes = 2;
  static constexpr int kDepthEvery = 4;  // queue depth for the metrics, every fourth sweep
  // Deadlines kept in memory: the next kKnownTimers the database reports after a run, and up to
  // kKnownDeadlines in all (the latest are forgotten first; the database reports them again).
  static constexpr int kKnownTimers = 8;
  static constexpr size_t kKnownDeadlines = 1024;
  // When the database reports a deadline already past after a run that fired nothing (another
  // replica holds it, or the database fails) and no other run is under way, the next run is
  // this much later. After a run that fired something, the next one is at once.
  static constexpr std::chrono::milliseconds kOverdueRetry{10};
  // An overdue deadline counts as being fired by a run under way that started up to this much
  // before it (the deadlines the database reports are as late as its answer; the run's own
  // report says so if it did not fire it).
  static constexpr std::chrono::milliseconds kCoverSlack{1};

 private:
  void Tick(size_t lane, uint64_t plan);
  void SweepTick();
  // Fires what is due (promise timeouts only when `promises`); returns how many it fired.
  int FireDue(bool promises);
  void Sweep();
  void KnowLocked(time_point at) REQUIRES(mu_);
  // Plans a tick at the earliest known deadline (or the safety net) on a free lane; with no
  // free lane, the first run to end plans it.
  void PlanLocked() REQUIRES(mu_);
  Store& store_;
  std::chrono::milliseconds sweep_;
  std::vector<std::unique_ptr<SystemTime>> own_lanes_;
  std::unique_ptr<SystemTime> own_sweep_time_;
  std::vector<TimeSource*> lanes_;
  TimeSource* sweep_time_;
  mutable Mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = true;
  std::vector<bool> busy_ GUARDED_BY(mu_);           // by lane: a run is under way on it
  std::vector<time_point> started_ GUARDED_BY(mu_);  // by lane: when its run started
  uint64_t runs_ GUARDED_BY(mu_) = 0, promise_runs_ GUARDED_BY(mu_) = 0;
  uint64_t next_ GUARDED_BY(mu_) = 0;   // the planned tick's id, on lane next_lane_
  uint64_t plans_ GUARDED_BY(mu_) = 0;  // ticks planned so far; the planned one is the last
  size_t next_lane_ GUARDED_BY(mu_) = 0;
  time_point planned_ GUARDED_BY(mu_);  // and when it is
  // Upcoming deadlines, each with the count of deadlines learned when it was learned.
  std::map<time_point, uint64_t> known_ GUARDED_BY(mu_);
  uint64_t learned_ GUARDED_BY(mu_) = 0;
  time_point safety_ GUARDED_BY(mu_);        // a run by then whatever is known
  time_point promises_at_ GUARDED_BY(mu_);   // from when a run looks for overdue promises
  uint64_t next_sweep_ GUARDED_BY(mu_) = 0;  // the planned sweep's id in sweep_time_
  int depth_every_ = 0;                      // the sweeping thread's
};

}  // namespace flovyn::engine
