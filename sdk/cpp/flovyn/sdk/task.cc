// The task side: the context a task runs with, and the worker's task pollers.
#include <thread>

#include "flovyn/sdk/client.h"

namespace flovyn::sdk {

bool TaskContext::Heartbeat() {
  if (cancelled_) return false;
  v1::TaskHeartbeatResponse out;
  grpc::Status s = client_.HeartbeatTask(worker_id_, task_, &out);
  // ABORTED: the lease went to another worker; other failures are transient.
  if (out.cancel_requested() || s.error_code() == grpc::StatusCode::ABORTED) cancelled_ = true;
  return !cancelled_;
}

bool TaskContext::Progress(const Json& progress) {
  if (cancelled_) return false;
  grpc::Status s = client_.ReportProgress(worker_id_, task_, progress.dump());
  if (s.error_code() == grpc::StatusCode::ABORTED) cancelled_ = true;
  return !cancelled_;
}

void Worker::TaskLoop() {
  while (!stop_) {
    v1::PollTaskRequest req;
    req.set_worker_id(worker_id_);
    req.set_queue(options_.queue);
    for (const auto& [k, f] : tasks_) req.add_kinds(k);
    req.set_timeout_ms(options_.poll_timeout.count());
    req.set_max_tasks(std::max(options_.max_tasks_per_poll, 1));
    v1::PollTaskResponse res;
    grpc::ClientContext ctx;
    if (!Track(&ctx)) break;
    auto s = client_.PollTask(req, &res, &ctx);
    Untrack(&ctx);
    if (!s.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!res.has_work()) continue;
    // Every task claimed is run, even when stopping: each is held until its lease ends otherwise.
    std::vector<v1::Task> tasks{res.task()};
    tasks.insert(tasks.end(), res.more_tasks().begin(), res.more_tasks().end());
    Run(RunStandalone(std::move(tasks)), std::nullopt);
  }
}

std::vector<v1::Task> Worker::RunStandalone(std::vector<v1::Task> tasks) {
  if (tasks.size() < 2) return tasks;
  std::vector<v1::Task> rest, done;
  std::vector<std::string> outputs;
  for (auto& task : tasks) {
    auto it = tasks_.find(task.kind());
    if (!task.workflow_id().empty() || it == tasks_.end()) {
      rest.push_back(std::move(task));
      continue;
    }
    ++running_tasks_;
    try {
      outputs.push_back(it->second(task));
      done.push_back(std::move(task));
    } catch (const TaskFailure& f) {
      (void)client_.FailTask(worker_id_, task, f.what(), f.non_retryable);
    } catch (const std::exception& e) {
      (void)client_.FailTask(worker_id_, task, e.what(), false);
    }
    --running_tasks_;
  }
  v1::CompleteTasksResponse res;
  if (!done.empty() && client_.CompleteTasks(worker_id_, done, outputs, &res).ok()) {
    for (const auto& o : res.outcomes()) tasks_completed_ += o.code() == 0 ? 1 : 0;
  }
  return rest;
}

Worker::Next Worker::RunTask(const v1::Task& task, bool eager) {
  auto it = tasks_.find(task.kind());
  ++running_tasks_;
  struct Done {
    std::atomic<int>& n;
    ~Done() { --n; }
  } done{running_tasks_};
  try {
    if (it == tasks_.end()) throw TaskFailure("no handler for task kind " + task.kind(), true);
    std::string out = it->second(task);
    // A workflow kept here runs its next activation on this thread when the result makes it
    // runnable: the server claims it in the same commit and answers with it. Asked whenever this
    // worker keeps workflows: the server hands it over only while the workflow is sticky here,
    // that is while this worker keeps it (or is about to).
    bool take = !task.workflow_id().empty() && options_.workflow_cache_size > 0 && !durable_.empty();
    Next next;
    if (take && eager && ContinueAfter(task, out, &next)) return next;
    v1::CompleteTaskResponse res;
    if (!client_.CompleteTask(worker_id_, task, out, take, &res).ok()) return {};
    ++tasks_completed_;
    if (res.workflow().has_work()) next.activation = std::move(*res.mutable_workflow());
    return next;
  } catch (const TaskFailure& f) {
    (void)client_.FailTask(worker_id_, task, f.what(), f.non_retryable);
  } catch (const std::exception& e) {
    (void)client_.FailTask(worker_id_, task, e.what(), false);
  }
  return {};
}

}  // namespace flovyn::sdk
