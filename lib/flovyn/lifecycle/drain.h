// The process's drain state (after Envoy's drain manager): requested once, by the first SIGTERM
// or SIGINT, and asked by whoever must act on it: the main thread waits for it, retrying loops
// (migrations before the database is up) stop waiting on it. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace flovyn::lifecycle {

class DrainManager {
 public:
  void Request() {
    {
      std::lock_guard<std::mutex> l(mu_);
      requested_ = true;
    }
    cv_.notify_all();
  }
  bool requested() const {
    std::lock_guard<std::mutex> l(mu_);
    return requested_;
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return requested_; });
  }
  // Sleeps up to `d`; true when a drain was requested meanwhile.
  bool WaitFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, d, [this] { return requested_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
};

}  // namespace flovyn::lifecycle
