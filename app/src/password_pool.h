// argon2id hashing and verification on a fixed number of threads with a bounded queue: each
// hash holds 19 MiB and ~50 ms of a core, so a sign-in flood must never turn into unbounded
// memory or threads. Past the queue a caller is refused at once (RESOURCE_EXHAUSTED, "retry in
// 1 s") instead of waiting. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "flovyn/core/mutex.h"
#include "flovyn/core/status.h"

namespace flovyn::app {

class PasswordPool {
 public:
  // `queue_limit` 0: no waiting, at most `threads` checks at once.
  PasswordPool(int threads, int queue_limit);
  ~PasswordPool();
  PasswordPool(const PasswordPool&) = delete;
  PasswordPool& operator=(const PasswordPool&) = delete;

  StatusOr<std::string> Hash(std::string_view password);
  StatusOr<bool> Verify(const std::string& encoded, std::string_view password);
  // Runs `job` on a pool thread and waits for it. Admitted while fewer than threads + queue_limit
  // jobs are running or waiting; otherwise RESOURCE_EXHAUSTED at once.
  Status Run(std::function<void()> job);

 private:
  const int capacity_;                // threads + queue limit
  int admitted_ GUARDED_BY(mu_) = 0;  // running or waiting
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace flovyn::app
