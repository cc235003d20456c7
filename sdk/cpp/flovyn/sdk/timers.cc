// Timers fired by the worker (WorkerOptions::fire_timers): a workflow kept in memory that waits
// for a timer runs on from TIMER_FIRED at the deadline, here, and the server records the event
// with the commands the code issued next in one commit (FireTimer). The server fires a timer
// itself only when this worker has not, engine.worker_timer_grace_ms after its deadline.
#include <absl/time/time.h>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

namespace flovyn::sdk {

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void Worker::KeepAfter(const std::string& id, std::unique_ptr<detail::Replay> replay,
                       const v1::SubmitWorkflowCommandsResponse& out) {
  replay->Append({out.events().begin(), out.events().end()});
  if (replay->broken() || replay->last_sequence() != out.last_sequence()) return SyncTimers(id, nullptr);
  SyncTimers(id, replay.get());
  KeepCached(id, std::move(replay));
}

void Worker::Closed(const std::string& id) {
  SyncTimers(id, nullptr);
  if (options_.on_workflow_closed) options_.on_workflow_closed(id);
}

void Worker::SyncTimers(const std::string& id, const detail::Replay* replay) {
  if (!options_.fire_timers) return;
  std::map<std::string, int64_t> pending;
  if (replay != nullptr) {
    for (auto& [name, due_ms] : replay->PendingTimers()) pending.emplace(name, due_ms);
  }
  absl::MutexLock l(&timers_mu_);
  // What is armed for `id` and no longer pending goes.
  for (auto it = armed_.lower_bound({id, ""}); it != armed_.end() && it->first.first == id;) {
    if (pending.erase(it->first.second) > 0) {
      ++it;
      continue;
    }
    auto [from, to] = timer_queue_.equal_range(it->second);
    for (auto q = from; q != to; ++q) {
      if (q->second == it->first) {
        timer_queue_.erase(q);
        break;
      }
    }
    it = armed_.erase(it);
  }
  bool earliest = false;
  for (const auto& [name, due_ms] : pending) {
    std::chrono::system_clock::time_point at{std::chrono::milliseconds(due_ms)};
    earliest = earliest || timer_queue_.empty() || at < timer_queue_.begin()->first;
    armed_.emplace(TimerKey{id, name}, at);
    timer_queue_.emplace(at, TimerKey{id, name});
  }
  if (earliest) timers_cv_.SignalAll();
}

size_t Worker::armed_timers() const {
  absl::MutexLock l(&timers_mu_);
  return armed_.size();
}

void Worker::TimerLoop() {
  absl::MutexLock l(&timers_mu_);
  while (!stop_) {
    if (timer_queue_.empty()) {
      timers_cv_.Wait(&timers_mu_);
      continue;
    }
    auto next = timer_queue_.begin();
    if (next->first > std::chrono::system_clock::now()) {
      timers_cv_.WaitWithDeadline(&timers_mu_, absl::FromChrono(next->first));
      continue;
    }
    TimerKey key = std::move(next->second);
    timer_queue_.erase(next);
    armed_.erase(key);
    timers_mu_.Unlock();
    FireHere(key.first, key.second);
    timers_mu_.Lock();
  }
}

void Worker::FireHere(const std::string& id, const std::string& name) {
  std::unique_ptr<detail::Replay> replay = TakeCached(id);
  Activating end{this, id};
  v1::FireTimerRequest req;
  req.set_worker_id(worker_id_);
  req.set_execution_id(id);
  req.set_name(name);
  req.set_fired_at_ms(NowMs());
  v1::FireTimerResponse res;
  if (replay && replay->timers.count(name) == 0) {
    KeepCached(id, std::move(replay));  // it fired or was cancelled meanwhile
    return;
  }
  Decision decision;
  int64_t at = 0;
  if (replay) {
    // The event the server records for this timer, as it will stamp it.
    at = replay->last_sequence();
    v1::WorkflowEvent fired;
    fired.set_sequence(at + 1);
    fired.set_type("TIMER_FIRED");
    fired.set_payload_json(Json{{"name", name}}.dump());
    fired.set_created_at_ms(req.fired_at_ms());
    decision = replay->Continue({fired});
    if (!decision.violation.empty()) replay.reset();  // reported at the activation the timer brings
  }
  // Not kept here (evicted, or its code went astray): the server fires it now and hands the
  // activation to a poller.
  if (!replay) {
    (void)client_.FireTimer(req, &res);
    return;
  }
  bool keep = FillCommands(req.mutable_continuation(), id, at, decision);
  // Refused (not pending, not due by the server's clock) or not continued (the history moved on,
  // or the workflow is another worker's now): what the code ran on from here is forgotten; the
  // timer's activation, if any, comes through a poll.
  if (!client_.FireTimer(req, &res).ok() || !res.continued()) return;
  ++timers_fired_here_;
  ++cached_activations_;
  if (decision.completed) Closed(id);
  if (keep) KeepAfter(id, std::move(replay), res.submitted());
}

}  // namespace flovyn::sdk
