#include "engine/scheduler.h"

#include <spdlog/spdlog.h>

namespace flovyn::engine {

Scheduler::Scheduler(Store& store, std::chrono::milliseconds tick, TimeSource* time)
    : store_(store),
      tick_(tick),
      own_time_(time == nullptr ? std::make_unique<SystemTime>("flovyn-scheduler") : nullptr),
      time_(time == nullptr ? own_time_.get() : time) {}

void Scheduler::Start() {
  MutexLock l(mu_);
  stopped_ = false;
  next_ = time_->At(time_->Now() + tick_, [this] { Tick(); });
}

void Scheduler::Stop() {
  {
    MutexLock l(mu_);
    stopped_ = true;
    if (next_ != 0) time_->Cancel(next_);
    next_ = 0;
  }
  if (own_time_) own_time_->Stop();  // joins the timer thread, so a running tick has finished
}

void Scheduler::ScheduleNext() {
  MutexLock l(mu_);
  if (!stopped_) next_ = time_->At(time_->Now() + tick_, [this] { Tick(); });
}

void Scheduler::Tick() {
  using Job = StatusOr<int> (Store::*)(int);
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
  if (++depth_every_ >= kDepthEvery) {
    depth_every_ = 0;
    if (Status s = store_.RefreshQueueDepth(); !s.ok()) spdlog::debug("scheduler: {}", s.message());
  }
  if (++lease_every_ >= kLeaseEvery) {
    lease_every_ = 0;
    for (Job job : {&Store::ExpireWorkflowLeases, &Store::ExpireTaskLeases}) {
      auto n = (store_.*job)(100);
      if (!n.ok())
        spdlog::debug("scheduler: {}", n.status().message());
      else if (*n > 0)
        spdlog::info("scheduler: {} expired lease(s) returned to the queue", *n);
    }
    auto overdue = store_.CancelOverdue(100);
    if (!overdue.ok())
      spdlog::debug("scheduler: {}", overdue.status().message());
    else if (*overdue > 0)
      spdlog::info("scheduler: {} execution(s) cancelled at the end of their grace period", *overdue);
  }
  ScheduleNext();
}

}  // namespace flovyn::engine
