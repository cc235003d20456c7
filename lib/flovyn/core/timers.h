// One thread running callbacks at their due time. Callbacks run on that thread, outside the
// lock, so they may schedule or cancel others; they must be short (hand real work to a pool).
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "flovyn/core/mutex.h"

namespace flovyn {

class Timers {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Timers(const char* thread_name = "flovyn-timers");
  ~Timers();
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  // Returns an id for Cancel (never 0).
  uint64_t At(Clock::time_point when, std::function<void()> fn);
  // True when the callback was removed before it started.
  bool Cancel(uint64_t id);
  // Stops the thread; pending callbacks never run.
  void Stop();

 private:
  void Run();
  mutable Mutex mu_;
  CondVar cv_;
  std::multimap<Clock::time_point, uint64_t> due_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::pair<std::multimap<Clock::time_point, uint64_t>::iterator, std::function<void()>>>
      entries_ GUARDED_BY(mu_);
  uint64_t next_ GUARDED_BY(mu_) = 1;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace flovyn
