// The one stage value of a process. Every probe answer, gRPC health status and the API gate
// is derived from it. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "flovyn/core/mutex.h"

namespace flovyn::lifecycle {

enum class Stage { kStarting, kMigrating, kStartingComponents, kRunning, kDraining, kStopped };

const char* StageName(Stage s);

class StageCell {
 public:
  Stage get() const { return stage_.load(std::memory_order_acquire); }
  void Set(Stage s);
  // API routes are served while running and while draining (in-flight work finishes).
  bool ApiOpen() const {
    Stage s = get();
    return s == Stage::kRunning || s == Stage::kDraining;
  }
  bool StartupDone() const { return get() >= Stage::kRunning; }
  // Blocks until the stage reaches at least `s`.
  void WaitAtLeast(Stage s);
  template <typename Rep, typename Period>
  bool WaitAtLeastFor(Stage s, std::chrono::duration<Rep, Period> d) {
    auto until = std::chrono::steady_clock::now() + d;
    MutexLock l(mu_);
    while (get() < s) {
      if (!cv_.WaitUntil(mu_, until)) return get() >= s;
    }
    return true;
  }

 private:
  std::atomic<Stage> stage_{Stage::kStarting};
  Mutex mu_;
  CondVar cv_;
};

}  // namespace flovyn::lifecycle
