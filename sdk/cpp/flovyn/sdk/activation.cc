// The worker's coroutine activations: a workflow kept in memory runs on from its new events; one
// not kept (evicted, restarted, or another worker's) is replayed from its whole history.
#include <cstdio>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

namespace flovyn::sdk {

std::unique_ptr<detail::Replay> Worker::TakeCached(const std::string& execution_id) {
  absl::MutexLock l(&cache_mu_);
  auto it = cache_.find(execution_id);
  if (it == cache_.end()) return nullptr;
  auto replay = std::move(it->second.first);
  cache_order_.erase(it->second.second);
  cache_.erase(it);
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

void Worker::Activate(const v1::PollWorkflowResponse& res, const WorkflowFactory& workflow) {
  const std::string& id = res.execution().id();
  std::vector<v1::WorkflowEvent> events(res.events().begin(), res.events().end());
  std::unique_ptr<detail::Replay> replay = TakeCached(id);
  if (replay && (res.history_after() == 0 || replay->last_sequence() != res.history_after())) {
    replay.reset();  // the server sent the whole history, or not what follows ours
  }
  if (!replay && res.history_after() > 0) {
    // Kept for this worker, but no longer here (evicted): the whole history, to replay.
    events.clear();
    if (!client_.GetEvents(id, &events).ok()) return;  // the claim lapses; handed out again
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
  if (!decision.violation.empty()) return Refuse(res, at, decision.violation);  // not kept
  bool keep = !decision.completed && options_.workflow_cache_size > 0;
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(worker_id_);
  sub.set_execution_id(id);
  sub.set_expected_sequence(at);
  sub.set_keep_cached(keep);
  for (auto& c : decision.commands) *sub.add_commands() = std::move(c);
  v1::SubmitWorkflowCommandsResponse out;
  // ABORTED: someone else got there first; drop it (and what was kept of it).
  if (!client_.SubmitCommands(sub, &out, res.execution().traceparent()).ok() || !keep) return;
  replay->Append({out.events().begin(), out.events().end()});
  if (!replay->broken() && replay->last_sequence() == out.last_sequence()) KeepCached(id, std::move(replay));
}

}  // namespace flovyn::sdk
