#include "engine/scheduler.h"

#include <spdlog/spdlog.h>

#include "flovyn/core/mutex.h"

namespace flovyn::engine {

void Scheduler::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Loop() {
  using Job = StatusOr<int> (Store::*)(int);
  int lease_every = 0;
  int depth_every = 0;
  for (;;) {
    {
      auto until = std::chrono::steady_clock::now() + tick_;
      MutexLock l(mu_);
      while (!stop_ && cv_.WaitUntil(mu_, until)) {
      }
      if (stop_) return;
    }
    // Drain each kind of due work in batches; a failure (database down) is retried next tick.
    for (Job job : {&Store::FireDueTimers, &Store::TimeOutPromises}) {
      for (int batch = 0; batch < 10; ++batch) {
        auto n = (store_.*job)(100);
        if (!n.ok()) {
          spdlog::debug("scheduler: {}", n.status().message());
          break;
        }
        if (*n < 100) break;
      }
    }
    if (++depth_every >= 20) {  // queue depth for the metrics, every two seconds
      depth_every = 0;
      if (Status s = store_.RefreshQueueDepth(); !s.ok()) spdlog::debug("scheduler: {}", s.message());
    }
    if (++lease_every >= 5) {  // leases are coarse: every half second is plenty
      lease_every = 0;
      for (Job job : {&Store::ExpireWorkflowLeases, &Store::ExpireTaskLeases}) {
        auto n = (store_.*job)(100);
        if (!n.ok())
          spdlog::debug("scheduler: {}", n.status().message());
        else if (*n > 0)
          spdlog::info("scheduler: {} expired lease(s) returned to the queue", *n);
      }
    }
  }
}

}  // namespace flovyn::engine
