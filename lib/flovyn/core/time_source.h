// Time, for code whose behaviour depends on it (deadlines, sweeps, evictions): the current
// time and callbacks at a given time. SystemTime is the real one (one timer thread);
// ManualTime moves only when a test says, and runs what became due on the test's thread, so
// tests of timing need no sleeps. Both thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>

#include "flovyn/core/mutex.h"
#include "flovyn/core/timers.h"

namespace flovyn {

class TimeSource {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~TimeSource() = default;
  virtual time_point Now() const = 0;
  // Runs `fn` at `when` (at once when it has passed); an id for Cancel, never 0.
  virtual uint64_t At(time_point when, std::function<void()> fn) = 0;
  // True when the callback was removed before it started.
  virtual bool Cancel(uint64_t id) = 0;
  // Pending callbacks never run after this.
  virtual void Stop() = 0;
};

class SystemTime final : public TimeSource {
 public:
  explicit SystemTime(const char* thread_name = "flovyn-timers") : timers_(thread_name) {}
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  uint64_t At(time_point when, std::function<void()> fn) override { return timers_.At(when, std::move(fn)); }
  bool Cancel(uint64_t id) override { return timers_.Cancel(id); }
  void Stop() override { timers_.Stop(); }

 private:
  Timers timers_;
};

class ManualTime final : public TimeSource {
 public:
  time_point Now() const override;
  uint64_t At(time_point when, std::function<void()> fn) override;
  bool Cancel(uint64_t id) override;
  void Stop() override;
  // Moves time forward by `d`, running each callback that falls due, in time order, on this
  // thread (callbacks may schedule more; those due by the new time run too).
  void Advance(std::chrono::nanoseconds d);

 private:
  mutable Mutex mu_;
  time_point now_ GUARDED_BY(mu_) = std::chrono::steady_clock::now();
  std::multimap<time_point, uint64_t> due_ GUARDED_BY(mu_);
  std::map<uint64_t, std::pair<time_point, std::function<void()>>> entries_ GUARDED_BY(mu_);
  uint64_t next_ GUARDED_BY(mu_) = 1;
  bool stopped_ GUARDED_BY(mu_) = false;
};

}  // namespace flovyn
