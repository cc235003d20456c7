// The process's drain state (after Envoy's drain manager): requested once, by the first SIGTERM
// or SIGINT, and asked by whoever must act on it: the main thread waits for it, retrying loops
// (migrations before the database is up) stop waiting on it. Once the drain begins, listeners
// ask `ShouldClose()` per connection after each response, so keep-alive clients move to
// another replica during the shutdown delay while new connections are still served.
// Thread-safe; ShouldClose takes no lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "flovyn/core/mutex.h"

namespace flovyn::lifecycle {

class DrainManager {
 public:
  void Request() {
    {
      MutexLock l(mu_);
      requested_ = true;
    }
    cv_.NotifyAll();
  }
  bool requested() const {
    MutexLock l(mu_);
    return requested_;
  }
  void Wait() {
    MutexLock l(mu_);
    while (!requested_) cv_.Wait(mu_);
  }
  // From now on connections close after their current response.
  void BeginClosingConnections() { closing_.store(true, std::memory_order_release); }
  bool ShouldClose() const { return closing_.load(std::memory_order_acquire); }

  // Sleeps up to `d`; true when a drain was requested meanwhile.
  bool WaitFor(std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    MutexLock l(mu_);
    while (!requested_) {
      if (!cv_.WaitUntil(mu_, until)) return requested_;
    }
    return true;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  bool requested_ GUARDED_BY(mu_) = false;
  std::atomic<bool> closing_{false};
};

}  // namespace flovyn::lifecycle
