#include "engine/scheduler.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace flovyn::engine {

using std::chrono::milliseconds;

Scheduler::Scheduler(Store& store, milliseconds sweep, TimeSource* time)
    : store_(store),
      sweep_(sweep),
      own_time_(time == nullptr ? std::make_unique<SystemTime>("flovyn-scheduler") : nullptr),
      time_(time == nullptr ? own_time_.get() : time) {}

void Scheduler::Start() {
  MutexLock l(mu_);
  stopped_ = false;
  next_sweep_ = time_->Now();
  PlanLocked(next_sweep_);
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

Scheduler::time_point Scheduler::planned() const {
  MutexLock l(mu_);
  return planned_;
}

uint64_t Scheduler::runs() const {
  MutexLock l(mu_);
  return runs_;
}

void Scheduler::PlanLocked(time_point at) {
  if (stopped_) return;
  if (next_ != 0) time_->Cancel(next_);
  planned_ = at;
  next_ = time_->At(at, [this] { Tick(); });
}

void Scheduler::Hint(int64_t unix_ms) {
  auto now_unix = std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  auto delta = milliseconds(unix_ms) - now_unix;
  MutexLock l(mu_);
  time_point at = time_->Now() + delta;
  if (running_) {
    hinted_ = std::min(hinted_, at);
  } else if (next_ == 0 || at < planned_) {
    PlanLocked(at);
  }
}

void Scheduler::Tick() {
  time_point sweep_due;
  {
    MutexLock l(mu_);
    if (stopped_) return;
    running_ = true;
    ++runs_;
    next_ = 0;  // this run; a hint from now on is kept for the end of it
    hinted_ = time_point::max();
    sweep_due = next_sweep_;
  }
  int fired = FireDue();
  time_point now = time_->Now();
  if (now >= sweep_due) {
    Sweep();
    MutexLock l(mu_);
    next_sweep_ = now + sweep_;
  }
  std::optional<time_point> deadline;
  if (auto due = store_.NextDeadline(); !due.ok()) {
    spdlog::debug("scheduler: {}", due.status().message());
  } else if (*due) {
    // Overdue: work that fell due while this run fired goes at once; work this run could not
    // fire (locked elsewhere, a failing database) is retried a little later.
    deadline = **due > 0 ? now + milliseconds(**due) : fired > 0 ? now : now + kOverdueRetry;
  }
  MutexLock l(mu_);
  running_ = false;
  time_point next = std::min(next_sweep_, hinted_);
  if (deadline) next = std::min(next, *deadline);
  PlanLocked(next);
}

int Scheduler::FireDue() {
  using Job = StatusOr<int> (Store::*)(int);
  int fired = 0;
  // Drain each kind of due work in batches; a failure (database down) is retried next run.
  for (Job job : {&Store::FireDueTimers, &Store::TimeOutPromises}) {
    for (int batch = 0; batch < 10; ++batch) {
      auto n = (store_.*job)(100);
      if (!n.ok()) {
        spdlog::debug("scheduler: {}", n.status().message());
        break;
      }
      fired += *n;
      if (*n < 100) break;
    }
  }
  return fired;
}

void Scheduler::Sweep() {
  using Job = StatusOr<int> (Store::*)(int);
  if (++depth_every_ >= kDepthEvery) {
    depth_every_ = 0;
    if (Status s = store_.RefreshQueueDepth(); !s.ok()) spdlog::debug("scheduler: {}", s.message());
  }
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

}  // namespace flovyn::engine
