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
  std::vector<std::string> gone;
  {
    absl::MutexLock l(&cache_mu_);
    cache_order_.push_front(execution_id);
    cache_[execution_id] = {std::move(replay), cache_order_.begin()};
    while (cache_.size() > options_.workflow_cache_size) {
      auto last = cache_.find(cache_order_.back());
      gone.push_back(last->first);
      evicted.push_back(std::move(last->second.first));
      cache_.erase(last);
      cache_order_.pop_back();
    }
  }
  // The server fires the timers of what is no longer kept here (a grace late).
  for (const auto& id : gone) SyncTimers(id, nullptr);
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
  Activating end{this, id};
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
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(worker_id_);
  bool keep = FillCommands(&sub, id, at, decision);
  AskForTasks(&sub, running_tasks_);
  v1::SubmitWorkflowCommandsResponse out;
  // ABORTED: someone else got there first; drop it (and what was kept of it).
  if (!client_.SubmitCommands(sub, &out, res.execution().traceparent()).ok()) return {};
  if (decision.completed) Closed(id);
  if (keep) KeepAfter(id, std::move(replay), out);
  return {out.tasks().begin(), out.tasks().end()};
}

bool Worker::FillCommands(v1::SubmitWorkflowCommandsRequest* sub, const std::string& execution_id, int64_t at,
                          Decision& decision) const {
  bool keep = !decision.completed && options_.workflow_cache_size > 0;
  sub->set_execution_id(execution_id);
  sub->set_expected_sequence(at);
  sub->set_keep_cached(keep);
  sub->set_fires_timers(keep && options_.fire_timers);
  for (auto& c : decision.commands) *sub->add_commands() = std::move(c);
  return keep;
}

void Worker::AskForTasks(v1::SubmitWorkflowCommandsRequest* sub, int running) const {
  if (tasks_.empty() || running >= options_.task_pollers) return;
  // A free task slot: this thread runs the task the batch schedules, claimed in its commit.
  sub->set_take_tasks(1);
  sub->set_take_task_queue(options_.queue);
  for (const auto& [k, f] : tasks_) sub->add_take_task_kinds(k);
}

bool Worker::ContinueAfter(const v1::Task& task, const std::string& output, Next* next) {
  const std::string& id = task.workflow_id();
  std::unique_ptr<detail::Replay> replay = TakeCached(id);
  Activating end{this, id};
  if (!replay) return false;
  Json value = Json::parse(output, nullptr, false);
  if (value.is_discarded() || !replay->WaitsOnlyFor(task.workflow_sequence())) {
    KeepCached(id, std::move(replay));
    return false;
  }
  // The event the server records for this result, as it will stamp it.
  int64_t at = replay->last_sequence();
  v1::WorkflowEvent completed;
  completed.set_sequence(at + 1);
  completed.set_type("TASK_COMPLETED");
  completed.set_payload_json(
      Json{{"taskId", task.id()}, {"scheduledSequence", task.workflow_sequence()}, {"output", std::move(value)}}
          .dump());
  completed.set_created_at_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  Decision decision = replay->Continue({completed});
  if (!decision.violation.empty()) return false;  // reported at the activation the result brings
  ++cached_activations_;
  v1::CompleteTaskRequest req;
  req.set_worker_id(worker_id_);
  req.set_task_id(task.id());
  req.set_attempt(task.attempt());
  req.set_output_json(output);
  req.set_take_workflow(true);
  req.set_completed_at_ms(completed.created_at_ms());
  v1::SubmitWorkflowCommandsRequest* sub = req.mutable_continuation();
  bool keep = FillCommands(sub, id, at, decision);
  AskForTasks(sub, running_tasks_ - 1);  // this task is done
  v1::CompleteTaskResponse res;
  grpc::Status s = client_.CompleteTask(req, &res, task.traceparent());
  // Commands the server refuses: the result alone (the activation it brings submits them again).
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) return false;
  if (!s.ok()) return true;  // not recorded: the lease lapses and the task runs again
  ++tasks_completed_;
  if (!res.continued()) {
    // The history moved on meanwhile (the code's run on is forgotten with `replay`): the result
    // alone was recorded, and the activation it made, if handed here, replays the whole history.
    if (res.workflow().has_work()) next->activation = std::move(*res.mutable_workflow());
    return true;
  }
  const v1::SubmitWorkflowCommandsResponse& out = res.submitted();
  if (decision.completed) Closed(id);
  if (keep) KeepAfter(id, std::move(replay), out);
  next->tasks.assign(out.tasks().begin(), out.tasks().end());
  return true;
}

void Worker::Run(std::vector<v1::Task> tasks, std::optional<v1::PollWorkflowResponse> activation) {
  // A task's result may bring its workflow's next activation (CompleteTask take_workflow), and an
  // activation the task its commands schedule (take_tasks): one thread carries a workflow along
  // its steps, each handed over in the commit that made it. A task claimed that way (eager) may
  // carry its workflow's next commands with its result.
  std::deque<std::pair<v1::Task, bool>> pending;
  for (auto& t : tasks) pending.emplace_back(std::move(t), false);
  while (activation || !pending.empty()) {
    if (activation) {
      auto d = durable_.find(activation->execution().kind());
      v1::PollWorkflowResponse a = std::move(*activation);
      activation.reset();
      if (d == durable_.end()) continue;
      for (auto& t : Activate(a, d->second)) pending.emplace_back(std::move(t), true);
      continue;
    }
    auto [t, eager] = std::move(pending.front());
    pending.pop_front();
    Next next = RunTask(t, eager);
    activation = std::move(next.activation);
    for (auto& n : next.tasks) pending.emplace_back(std::move(n), true);
  }
}

}  // namespace flovyn::sdk
