// The worker's coroutine activations: a workflow kept in memory runs on from its new events; one
// not kept (evicted, restarted, or another worker's) is replayed from its whole history.
#include <cstdio>
#include <deque>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

namespace flovyn::sdk {

namespace {
struct NotActive {
  const std::set<std::string>* active;
  const std::string* id;
};
bool IsNotActive(NotActive* n) { return n->active->count(*n->id) == 0; }
}  // namespace

std::unique_ptr<detail::Replay> Worker::TakeCached(const std::string& execution_id) {
  // One activation of an execution at a time on this worker: the next one (handed here while
  // the last one's submit is still being answered) waits for the replay that one keeps.
  NotActive idle{&activating_, &execution_id};
  cache_mu_.LockWhen(absl::Condition(IsNotActive, &idle));
  activating_.insert(execution_id);
  std::unique_ptr<detail::Replay> replay;
  if (auto it = cache_.find(execution_id); it != cache_.end()) {
    replay = std::move(it->second.first);
    cache_order_.erase(it->second.second);
    cache_.erase(it);
  }
  cache_mu_.Unlock();
  return replay;
}

void Worker::KeepCached(const std::string& execution_id, std::unique_ptr<detail::Replay> replay) {
  std::vector<std::unique_ptr<detail::Replay>> evicted;  // destroyed outside the lock
  absl::MutexLock l(&cache_mu_);
  cache_order_.push_front(execution_id);
  cache_[execution_id] = {std::move(replay), cache_order_.begin()};
  while (cache_.size() > options_.workflow_cache_size) {
    auto last = cache_.find(cache_order_.back());
    evicted.push_back(std::move(last->second.first));
    cache_.erase(last);
    cache_order_.pop_back();
  }
}

void Worker::EndActivation(const std::string& execution_id) {
  absl::MutexLock l(&cache_mu_);
  activating_.erase(execution_id);
}

size_t Worker::cached_workflows() const {
  absl::MutexLock l(&cache_mu_);
  return cache_.size();
}

void Worker::Refuse(const v1::PollWorkflowResponse& res, int64_t at_sequence, const std::string& violation) {
  std::fprintf(stderr, "workflow %s (%s): %s\n", res.execution().id().c_str(), res.execution().kind().c_str(),
               violation.c_str());
  v1::ReportWorkflowProblemRequest report;
  report.set_worker_id(worker_id_);
  report.set_execution_id(res.execution().id());
  report.set_expected_sequence(at_sequence);
  report.set_message(violation);
  (void)client_.ReportProblem(report);  // on failure the claim lapses with the lease
  absl::MutexLock l(&polls_mu_);
  last_violation_ = violation;
}

std::vector<v1::Task> Worker::Activate(const v1::PollWorkflowResponse& res, const WorkflowFactory& workflow) {
  const std::string& id = res.execution().id();
  std::vector<v1::WorkflowEvent> events(res.events().begin(), res.events().end());
  std::unique_ptr<detail::Replay> replay = TakeCached(id);
  struct End {
    Worker* w;
    const std::string& id;
    ~End() { w->EndActivation(id); }
  } end{this, id};
  if (replay && (res.history_after() == 0 || replay->last_sequence() != res.history_after())) {
    replay.reset();  // the server sent the whole history, or not what follows ours
  }
  if (!replay && res.history_after() > 0) {
    // Kept for this worker, but no longer here (evicted): the whole history, to replay.
    events.clear();
    if (!client_.GetEvents(id, &events).ok()) return {};  // the claim lapses; handed out again
  }
  Decision decision;
  if (replay) {
    ++cached_activations_;
    decision = replay->Continue(events);
  } else {
    ++full_replays_;
    replay = std::make_unique<detail::Replay>(id, events);
    decision = replay->Run(workflow);
  }
  int64_t at = replay->last_sequence();
  if (!decision.violation.empty()) {
    Refuse(res, at, decision.violation);  // not kept
    return {};
  }
  bool keep = !decision.completed && options_.workflow_cache_size > 0;
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(worker_id_);
  sub.set_execution_id(id);
  sub.set_expected_sequence(at);
  sub.set_keep_cached(keep);
  for (auto& c : decision.commands) *sub.add_commands() = std::move(c);
  if (!tasks_.empty() && running_tasks_ < options_.task_pollers) {
    // A free task slot: this thread runs the task the batch schedules, claimed in its commit.
    sub.set_take_tasks(1);
    sub.set_take_task_queue(options_.queue);
    for (const auto& [k, f] : tasks_) sub.add_take_task_kinds(k);
  }
  v1::SubmitWorkflowCommandsResponse out;
  // ABORTED: someone else got there first; drop it (and what was kept of it).
  if (!client_.SubmitCommands(sub, &out, res.execution().traceparent()).ok()) return {};
  if (decision.completed && options_.on_workflow_closed) options_.on_workflow_closed(id);
  if (keep) {
    replay->Append({out.events().begin(), out.events().end()});
    if (!replay->broken() && replay->last_sequence() == out.last_sequence()) KeepCached(id, std::move(replay));
  }
  return {out.tasks().begin(), out.tasks().end()};
}

void Worker::Run(std::vector<v1::Task> tasks, std::optional<v1::PollWorkflowResponse> activation) {
  // A task's result may bring its workflow's next activation (CompleteTask take_workflow), and an
  // activation the task its commands schedule (take_tasks): one thread carries a workflow along
  // its steps, each handed over in the commit that made it.
  std::deque<v1::Task> pending(tasks.begin(), tasks.end());
  while (activation || !pending.empty()) {
    if (activation) {
      auto d = durable_.find(activation->execution().kind());
      v1::PollWorkflowResponse a = std::move(*activation);
      activation.reset();
      if (d == durable_.end()) continue;
      for (auto& t : Activate(a, d->second)) pending.push_back(std::move(t));
      continue;
    }
    v1::Task t = std::move(pending.front());
    pending.pop_front();
    activation = RunTask(t);
  }
}

}  // namespace flovyn::sdk
