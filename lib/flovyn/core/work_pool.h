// A fixed set of threads running submitted jobs from a bounded queue. Submission never blocks:
// when every thread is busy and the queue is full, TrySubmit refuses and the caller answers
// "busy" instead of the process growing a backlog without bound. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flovyn/core/mutex.h"

namespace flovyn {

class WorkPool {
 public:
  WorkPool(std::string name, int threads, size_t max_queued);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // False (and `job` is dropped) when the queue is full or the pool has stopped.
  [[nodiscard]] bool TrySubmit(std::function<void()> job);
  // Runs what is queued, then joins the threads. Later submissions are refused.
  void Stop();

  int threads() const { return thread_count_; }
  size_t max_queued() const { return max_queued_; }
  int busy() const;

 private:
  void Run();

  const std::string name_;
  const int thread_count_;
  const size_t max_queued_;
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  int busy_ GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace flovyn
