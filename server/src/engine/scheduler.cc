#include "engine/scheduler.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace flovyn::engine {

using std::chrono::milliseconds;

Scheduler::Scheduler(Store& store, milliseconds sweep, TimeSource* time, int lanes)
    : store_(store),
      sweep_(sweep),
      own_sweep_time_(time == nullptr ? std::make_unique<SystemTime>("flovyn-sweep") : nullptr),
      sweep_time_(time == nullptr ? own_sweep_time_.get() : time) {
  if (time != nullptr) {
    lanes_.push_back(time);
  } else {
    for (int i = 0; i < std::max(lanes, 1); ++i) {
      own_lanes_.push_back(std::make_unique<SystemTime>("flovyn-sched"));
      lanes_.push_back(own_lanes_.back().get());
    }
  }
  busy_.assign(lanes_.size(), false);
  started_.assign(lanes_.size(), time_point());
}

void Scheduler::Start() {
  MutexLock l(mu_);
  stopped_ = false;
  time_point now = lanes_[0]->Now();
  promises_at_ = safety_ = now;
  PlanLocked();
  next_sweep_ = sweep_time_->At(now, [this] { SweepTick(); });
}

void Scheduler::Stop() {
  {
    MutexLock l(mu_);
    stopped_ = true;
    if (next_ != 0) lanes_[next_lane_]->Cancel(next_);
    if (next_sweep_ != 0) sweep_time_->Cancel(next_sweep_);
    next_ = next_sweep_ = 0;
  }
  // Joins the timer threads, so the ticks running have finished.
  for (auto& lane : own_lanes_) lane->Stop();
  if (own_sweep_time_) own_sweep_time_->Stop();
}

Scheduler::time_point Scheduler::planned() const {
  MutexLock l(mu_);
  return planned_;
}

uint64_t Scheduler::runs() const {
  MutexLock l(mu_);
  return runs_;
}

uint64_t Scheduler::promise_runs() const {
  MutexLock l(mu_);
  return promise_runs_;
}

size_t Scheduler::known() const {
  MutexLock l(mu_);
  return known_.size();
}

void Scheduler::KnowLocked(time_point at) {
  known_[at] = ++learned_;
  if (known_.size() > kKnownDeadlines) known_.erase(std::prev(known_.end()));
}

void Scheduler::PlanLocked() {
  if (stopped_) return;
  time_point at = known_.empty() ? safety_ : std::min(safety_, known_.begin()->first);
  if (next_ != 0) {
    if (at == planned_) return;
    lanes_[next_lane_]->Cancel(next_);
    next_ = 0;
  }
  for (size_t lane = 0; lane < lanes_.size(); ++lane) {
    if (busy_[lane]) continue;
    next_lane_ = lane;
    planned_ = at;
    uint64_t plan = ++plans_;
    next_ = lanes_[lane]->At(at, [this, lane, plan] { Tick(lane, plan); });
    return;
  }
}

void Scheduler::Hint(int64_t unix_us) {
  auto delta = std::chrono::microseconds(unix_us) - std::chrono::system_clock::now().time_since_epoch();
  MutexLock l(mu_);
  time_point at = lanes_[0]->Now() + delta;
  KnowLocked(at);
  promises_at_ = std::min(promises_at_, at);  // a hint does not say whether it is a promise's
  PlanLocked();
}

void Scheduler::Tick(size_t lane, uint64_t plan) {
  bool promises = false;
  time_point start;
  {
    MutexLock l(mu_);
    if (stopped_) return;
    if (plan == plans_) next_ = 0;  // the planned tick (not one whose cancel came too late)
    busy_[lane] = true;
    ++runs_;
    start = started_[lane] = lanes_[lane]->Now();
    known_.erase(known_.begin(), known_.upper_bound(start));  // this run fires what is due by now
    safety_ = start + sweep_;
    promises = start >= promises_at_;
    if (promises) {
      ++promise_runs_;
      promises_at_ = time_point::max();
    }
    PlanLocked();  // what falls due while this run fires goes on another lane
  }
  int fired = FireDue(promises);
  uint64_t asked = 0;
  {
    MutexLock l(mu_);
    asked = learned_;
  }
  auto due = store_.NextDeadlines(kKnownTimers);
  time_point end = lanes_[lane]->Now();
  MutexLock l(mu_);
  busy_[lane] = false;
  if (!due.ok()) {
    spdlog::debug("scheduler: {}", due.status().message());
    promises_at_ = std::min(promises_at_, safety_);  // the safety net looks for everything
    PlanLocked();
    return;
  }
  // Overdue: work that fell due while a run fired goes at once, unless a run under way started
  // after it (that run fires it); work this run could not fire (locked elsewhere, a failing
  // database) is retried a little later.
  auto overdue = [&](time_point at) { return at > start || fired > 0 ? end : end + kOverdueRetry; };
  // The report is the truth about the timers up to its last one (all of them when it is not
  // full) and about the earliest promise: what was known of them before it was asked (a hint,
  // an earlier report of the same deadline seen a little later) goes, so no run is spent on a
  // deadline already fired. What was learned while it was asked stays.
  time_point horizon = time_point::max();
  if (due->timer_us.size() >= static_cast<size_t>(kKnownTimers)) {
    horizon = end + std::chrono::microseconds(*std::max_element(due->timer_us.begin(), due->timer_us.end()));
  }
  for (auto it = known_.begin(); it != known_.end() && it->first <= horizon;) {
    it = it->second <= asked ? known_.erase(it) : std::next(it);
  }
  for (int64_t us : due->timer_us) {
    time_point at = end + std::chrono::microseconds(us);
    if (at > end) {
      KnowLocked(at);
      continue;
    }
    bool covered = false;
    for (size_t i = 0; i < lanes_.size(); ++i) covered = covered || (busy_[i] && started_[i] + kCoverSlack >= at);
    if (!covered) KnowLocked(overdue(at));
  }
  if (due->promise_us) {
    time_point at = end + std::chrono::microseconds(*due->promise_us);
    if (at <= end) at = overdue(at);
    KnowLocked(at);
    promises_at_ = std::min(promises_at_, at);
  }
  PlanLocked();
}

void Scheduler::SweepTick() {
  {
    MutexLock l(mu_);
    if (stopped_) return;
    next_sweep_ = 0;
  }
  Sweep();
  MutexLock l(mu_);
  if (!stopped_) next_sweep_ = sweep_time_->At(sweep_time_->Now() + sweep_, [this] { SweepTick(); });
}

int Scheduler::FireDue(bool promises) {
  using Job = StatusOr<int> (Store::*)(int);
  int fired = 0;
  // Drain each kind of due work in batches; a failure (database down) is retried next run.
  for (Job job : {&Store::FireDueTimers, &Store::TimeOutPromises}) {
    if (job == &Store::TimeOutPromises && !promises) break;
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
