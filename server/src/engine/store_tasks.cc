// The store's task operations: submit, claim, the worker's results and heartbeats,
// cancellation, retries with backoff, expired leases and the views of tasks.
#include <algorithm>
#include <cmath>

#include "engine/limits.h"
#include "engine/rows.h"
#include "engine/sql.h"
#include "engine/store.h"
#include "flovyn/core/status_macros.h"

namespace flovyn::engine {

using nlohmann::json;

namespace {

Status ValidateTask(SubmitTaskRequest& req) {
  RETURN_IF_ERROR(limits::Name(req.kind, "kind"));
  if (req.queue.empty()) req.queue = "default";
  RETURN_IF_ERROR(limits::Name(req.queue, "queue"));
  ASSIGN_OR_RETURN(req.input_json, NormaliseJson(req.input_json, "input"));
  if (req.max_attempts == 0) req.max_attempts = 3;
  if (req.max_attempts < 1 || req.max_attempts > limits::kMaxAttempts.value) {
    return InvalidArgument("maxAttempts must be 1 to " + std::to_string(limits::kMaxAttempts.value) +
                           " (limit max_attempts)");
  }
  RETURN_IF_ERROR(limits::Duration(req.initial_backoff_ms, "initial_backoff_ms"));
  RETURN_IF_ERROR(limits::Duration(req.max_backoff_ms, "max_backoff_ms"));
  RETURN_IF_ERROR(limits::Duration(req.lease_ms, "lease_ms"));
  if (req.initial_backoff_ms <= 0) req.initial_backoff_ms = 1000;
  if (req.max_backoff_ms <= 0) req.max_backoff_ms = 60000;
  if (req.lease_ms <= 0) req.lease_ms = 30000;
  return Status::Ok();
}
}  // namespace

// A submission's checks; its id (given or new) when it may go on.
StatusOr<std::string> Store::PrepareSubmit(SubmitTaskRequest& req) {
  RETURN_IF_ERROR(ValidateTask(req));
  if (req.id && !IsUuid(*req.id)) return InvalidArgument("a task id must be a UUID");
  return req.id.value_or(NewUuid());
}

std::function<Status(Unit&)> Store::SubmitTaskUnit(const TenantId& tenant, SubmitTaskRequest req, std::string id) {
  return [this, tenant, req = std::move(req), id = std::move(id)](Unit& u) -> Status {
    if (!req.id && handoffs_.tasks != nullptr) {
      if (auto offer = handoffs_.tasks->Take(WorkKey(tenant, req.queue, WorkKind::kTask), req.kind)) {
        return InsertHandedOver(u, *offer,
                                {.id = id,
                                 .tenant = tenant.str(),
                                 .spec = {req.kind, req.queue, req.input_json, req.max_attempts, req.initial_backoff_ms,
                                          req.max_backoff_ms, req.lease_ms},
                                 .traceparent = NullIfEmpty(req.traceparent)},
                                std::nullopt)
            .status();
      }
    }
    ASSIGN_OR_RETURN(auto r, u.Exec(req.id ? sql::kInsertTaskOnce : sql::kInsertTask,
                                    {id, tenant, std::nullopt, std::nullopt, req.kind, req.queue, req.input_json,
                                     std::to_string(req.max_attempts), std::to_string(req.initial_backoff_ms),
                                     std::to_string(req.max_backoff_ms), std::to_string(req.lease_ms),
                                     NullIfEmpty(req.traceparent)}));
    if (r.affected() == 0) {  // submitted before: the same tenant's, or refused
      ASSIGN_OR_RETURN(auto owner, u.Exec(sql::kTaskTenant, {id}));
      if (owner.rows() == 0 || db::Row(owner, 0).Str("tenant_id") != tenant) {
        return Status(StatusCode::kAlreadyExists, "a task with this id exists");
      }
      return Status::Ok();
    }
    u.Wake(tenant, req.queue, WorkKind::kTask);
    return Status::Ok();
  };
}

StatusOr<TaskId> Store::SubmitTask(const TenantId& tenant, const SubmitTaskRequest& in) {
  SubmitTaskRequest req = in;
  ASSIGN_OR_RETURN(std::string id, PrepareSubmit(req));
  RETURN_IF_ERROR(RunGrouped(SubmitTaskUnit(tenant, std::move(req), id), id, "SubmitTask"));
  return TaskId(id);
}

void Store::SubmitTaskThen(const TenantId& tenant, const SubmitTaskRequest& in,
                           std::function<void(StatusOr<TaskId>)> then) {
  SubmitTaskRequest req = in;
  auto id = PrepareSubmit(req);
  if (!id.ok()) return then(id.status());
  RunGroupedThen(
      SubmitTaskUnit(tenant, std::move(req), *id), *id,
      [id = *id, then = std::move(then)](Status s) { s.ok() ? then(TaskId(id)) : then(std::move(s)); }, "SubmitTask");
}

StatusOr<std::optional<TaskClaim>> Store::ClaimTask(const TenantId& tenant, const WorkerId& worker,
                                                    const std::string& queue, const std::vector<std::string>& kinds) {
  ASSIGN_OR_RETURN(auto claims, ClaimTasks(tenant, worker, queue, kinds, 1));
  if (claims.empty()) return std::optional<TaskClaim>();
  return std::optional<TaskClaim>(std::move(claims.front()));
}

StatusOr<std::vector<TaskClaim>> Store::ClaimTasks(const TenantId& tenant, const WorkerId& worker,
                                                   const std::string& queue, const std::vector<std::string>& kinds,
                                                   int limit, bool* more) {
  std::vector<TaskClaim> claims;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    claims.clear();
    ASSIGN_OR_RETURN(auto r, u.Exec(sql::kClaimTask, {tenant, queue, JsonArray(kinds, true), worker,
                                                      std::to_string(std::max(limit, 1))}));
    if (more != nullptr) *more = r.rows() > 0 && db::Row(r, 0).Bool("more");
    std::vector<std::pair<double, int>> order;  // RETURNING's order is not the claim's: oldest first
    order.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) order.emplace_back(db::Row(r, i).Double("available_since"), i);
    std::sort(order.begin(), order.end());
    for (const auto& [_, i] : order) {
      db::Row row(r, i);
      std::string id = row.Str("id");
      u.AfterCommit([waited = row.Double("waited")](EngineMetrics& m) { m.dispatch.With({"task"})->Observe(waited); });
      ASSIGN_OR_RETURN(auto t, u.Exec(sql::kTaskById, {id}));
      TaskClaim c{TaskFrom(db::Row(t, 0)), row.Int("lease_expires_at_ms")};
      if (c.task.workflow_id) {
        RETURN_IF_ERROR(DeliverIfOpen(u, tenant, *c.task.workflow_id, "TASK_STARTED",
                                      {{"taskId", id}, {"attempt", c.task.attempt}, {"workerId", worker}}, false));
      }
      claims.push_back(std::move(c));
    }
    return Status::Ok();
  }));
  return claims;
}

Status Store::ReleaseTaskClaims(const TenantId& tenant, const WorkerId& worker,
                                const std::vector<std::pair<std::string, int>>& claims) {
  return Run([&](Unit& u) {
    for (const auto& [id, attempt] : claims) {
      if (!IsUuid(id)) continue;
      ASSIGN_OR_RETURN(auto r, u.Exec(sql::kReleaseTask, {id, tenant, worker, std::to_string(attempt)}));
      if (r.rows() > 0) u.Wake(tenant, db::Row(r, 0).Str("queue"), WorkKind::kTask);
    }
    return Status::Ok();
  });
}

namespace {
// A task locked while its worker holds it.
struct HeldTask {
  std::string id;
  std::optional<std::string> workflow_id;
  int64_t workflow_seq = 0;
  int attempt = 0, max_attempts = 0;
  int64_t initial_backoff_ms = 0, max_backoff_ms = 0;
};

// ABORTED when the worker no longer holds the task for this attempt. `refused`, when given, is
// set when the answer is the task's (NOT_FOUND, ABORTED), not the database's: the transaction
// goes on.
StatusOr<HeldTask> LockHeld(Unit& u, const std::string& tenant, const std::string& worker, const std::string& task_id,
                            int attempt, bool* refused = nullptr) {
  if (refused != nullptr) *refused = true;
  if (!IsUuid(task_id)) return NotFound("task not found");
  if (refused != nullptr) *refused = false;
  ASSIGN_OR_RETURN(auto r, u.Exec(sql::kLockTask, {task_id, tenant}));
  if (refused != nullptr) *refused = true;
  if (r.rows() == 0) return NotFound("task not found");
  db::Row row(r, 0);
  if (row.Str("status") != "RUNNING")
    return Status(StatusCode::kAborted, "task is " + row.Str("status") + ", not running");
  if (row.Int("attempt") != attempt || row.Str("lease_owner") != worker) {
    return Status(StatusCode::kAborted,
                  "task is not held by this worker for this attempt (its lease may have expired)");
  }
  return HeldTask{task_id,
                  row.Opt("workflow_id"),
                  row.Int("workflow_seq"),
                  attempt,
                  static_cast<int>(row.Int("max_attempts")),
                  row.Int("initial_backoff_ms"),
                  row.Int("max_backoff_ms")};
}

// In [0, max_duration_ms] whatever the stored values: computed in double (no overflow) and
// clamped before it becomes an interval.
int64_t Backoff(const HeldTask& h) {
  double ms = static_cast<double>(h.initial_backoff_ms) * std::pow(2.0, std::clamp(h.attempt - 1, 0, 62));
  double capped =
      std::min({ms, static_cast<double>(h.max_backoff_ms), static_cast<double>(limits::kMaxDurationMs.value)});
  return static_cast<int64_t>(std::max(0.0, capped));
}

// A failed attempt (reported, or its lease expired): retry later or fail for good.
StatusOr<FailResult> FailAttempt(Unit& u, const std::string& tenant, const HeldTask& h, const std::string& error,
                                 bool non_retryable) {
  FailResult out;
  if (!non_retryable && h.attempt < h.max_attempts) {
    ASSIGN_OR_RETURN(auto r, u.Exec(sql::kRetryTask, {h.id, error, std::to_string(Backoff(h))}));
    out.will_retry = true;
    out.next_attempt_at_ms = db::Row(r, 0).Int("next_attempt_at_ms");
    u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"retried"})->Inc(); });
    return out;
  }
  RETURN_IF_ERROR(u.Exec(sql::kFailTask, {h.id, error}));
  u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"failed"})->Inc(); });
  if (h.workflow_id) {
    RETURN_IF_ERROR(DeliverIfOpen(
        u, tenant, *h.workflow_id, "TASK_FAILED",
        {{"taskId", h.id}, {"scheduledSequence", h.workflow_seq}, {"error", error}, {"attempts", h.attempt}}, true));
  }
  return out;
}
}  // namespace

namespace {
json CompletedPayload(const HeldTask& h, const std::string& output) {
  return {{"taskId", h.id}, {"scheduledSequence", h.workflow_seq}, {"output", json::parse(output)}};
}

// The result (`output` normalised JSON) of a task `worker` holds at `attempt`: the task
// completes, in one statement. Otherwise why not, as LockHeld says (`refused` as there). With
// `execution` (and `locked`): when the task is that execution's, the same statement locks it into
// `locked`.
StatusOr<HeldTask> CompleteHeld(Unit& u, const std::string& tenant, const std::string& worker,
                                const std::string& task_id, int attempt, const std::string& output,
                                bool* refused = nullptr, const std::string* execution = nullptr,
                                std::optional<Execution>* locked = nullptr) {
  if (!IsUuid(task_id)) return LockHeld(u, tenant, worker, task_id, attempt, refused);
  if (refused != nullptr) *refused = false;
  bool locking = execution != nullptr && locked != nullptr && IsUuid(*execution);
  db::Params params{task_id, tenant, std::to_string(attempt), worker, output};
  if (locking) params.emplace_back(*execution);
  ASSIGN_OR_RETURN(auto r, u.Exec(locking ? sql::kCompleteHeldTaskLockingExecution : sql::kCompleteHeldTask, params));
  if (r.rows() == 0) {
    RETURN_IF_ERROR(LockHeld(u, tenant, worker, task_id, attempt, refused).status());
    return Internal("task result not recorded");  // held after all: not reached under the row lock
  }
  u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"completed"})->Inc(); });
  db::Row row(r, 0);
  HeldTask h;
  h.id = task_id;
  h.workflow_id = row.Opt(locking ? "task_workflow_id" : "workflow_id");
  h.workflow_seq = row.Int("workflow_seq");
  h.attempt = attempt;
  if (locking && row.Opt("id")) {
    ASSIGN_OR_RETURN(auto e, Execution::Locked(u, row));
    locked->emplace(std::move(e));
  }
  return h;
}
}  // namespace

std::function<Status(Unit&)> Store::CompleteTaskUnit(const TenantId& tenant, const WorkerId& worker,
                                                     const TaskId& task_id, int attempt, std::string output,
                                                     std::optional<WorkflowClaim>* take_workflow,
                                                     Continuation* continuation,
                                                     std::optional<SubmitResult>* continued) {
  return [=, this, output = std::move(output)](Unit& u) -> Status {
    // A group that rolled back runs this again.
    if (take_workflow) take_workflow->reset();
    if (continued) continued->reset();
    bool continuing = continuation != nullptr && continued != nullptr;
    std::optional<Execution> locked;
    ASSIGN_OR_RETURN(auto h, CompleteHeld(u, tenant, worker, task_id, attempt, output, nullptr,
                                          continuing ? &continuation->execution.str() : nullptr, &locked));
    if (!h.workflow_id) return Status::Ok();
    if (continuing && locked) {
      ASSIGN_OR_RETURN(*continued,
                       Continue(u, *locked, worker, *continuation, "TASK_COMPLETED", CompletedPayload(h, output)));
      if (*continued) return Status::Ok();
      // Not as the worker saw it: the result alone, as without a continuation.
    }
    if (take_workflow && handoffs_.workflows != nullptr) {  // eager dispatch is on
      u.SetTaker({worker.str(), *h.workflow_id, options_.workflow_lease, take_workflow});
    }
    return DeliverIfOpen(u, tenant, *h.workflow_id, "TASK_COMPLETED", CompletedPayload(h, output), true);
  };
}

Status Store::CompleteTask(const TenantId& tenant, const WorkerId& worker, const TaskId& task_id, int attempt,
                           const std::string& output_json, std::optional<WorkflowClaim>* take_workflow,
                           Continuation* continuation, std::optional<SubmitResult>* continued) {
  ASSIGN_OR_RETURN(auto output, NormaliseJson(output_json, "output"));
  // Ordered by task: a group locks its tasks (and then their executions) in one order.
  return RunGrouped(
      CompleteTaskUnit(tenant, worker, task_id, attempt, std::move(output), take_workflow, continuation, continued),
      task_id.str(), "CompleteTask");
}

void Store::CompleteTaskThen(const TenantId& tenant, const WorkerId& worker, const TaskId& task_id, int attempt,
                             const std::string& output_json, std::optional<WorkflowClaim>* take_workflow,
                             Continuation* continuation, std::optional<SubmitResult>* continued,
                             std::function<void(Status)> then) {
  auto output = NormaliseJson(output_json, "output");
  if (!output.ok()) return then(output.status());
  RunGroupedThen(
      CompleteTaskUnit(tenant, worker, task_id, attempt, std::move(*output), take_workflow, continuation, continued),
      task_id.str(), std::move(then), "CompleteTask");
}

StatusOr<std::vector<Status>> Store::CompleteTasks(const TenantId& tenant, const WorkerId& worker,
                                                   const std::vector<TaskResult>& results) {
  if (results.size() > static_cast<size_t>(limits::kTasksPerPoll.value)) {
    return limits::Exceeded("results", limits::kTasksPerPoll);
  }
  std::vector<std::string> outputs;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSIGN_OR_RETURN(auto o, NormaliseJson(results[i].output_json, "output of result " + std::to_string(i)));
    outputs.push_back(std::move(o));
  }
  // Tasks locked in the order of their ids, so two batches never wait for each other in a cycle.
  std::vector<size_t> order(results.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return results[a].task_id.str() < results[b].task_id.str(); });
  std::vector<Status> outcomes;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    outcomes.assign(results.size(), Status::Ok());
    for (size_t i : order) {
      const TaskResult& r = results[i];
      bool refused = false;
      auto h = CompleteHeld(u, tenant, worker, r.task_id.str(), r.attempt, outputs[i], &refused);
      if (!h.ok() && refused) {
        outcomes[i] = h.status();  // nothing written for it; the others go on
        continue;
      }
      RETURN_IF_ERROR(h.status());
      if (h->workflow_id) {
        RETURN_IF_ERROR(
            DeliverIfOpen(u, tenant, *h->workflow_id, "TASK_COMPLETED", CompletedPayload(*h, outputs[i]), true));
      }
    }
    return Status::Ok();
  }));
  return outcomes;
}

StatusOr<FailResult> Store::FailTask(const TenantId& tenant, const WorkerId& worker, const TaskId& task_id, int attempt,
                                     const std::string& error, bool non_retryable) {
  RETURN_IF_ERROR(limits::Text(error, "error"));
  FailResult result;
  RETURN_IF_ERROR(RunGrouped(
      [&](Unit& u) {
        ASSIGN_OR_RETURN(auto h, LockHeld(u, tenant, worker, task_id, attempt));
        ASSIGN_OR_RETURN(result, FailAttempt(u, tenant, h, error, non_retryable));
        return Status::Ok();
      },
      task_id.str()));
  return result;
}

StatusOr<Store::TaskHeartbeat> Store::HeartbeatTask(const TenantId& tenant, const WorkerId& worker,
                                                    const TaskId& task_id, int attempt,
                                                    const std::optional<std::string>& progress_json) {
  std::optional<std::string> progress;
  if (progress_json) {
    ASSIGN_OR_RETURN(progress, NormaliseJson(*progress_json, "progress"));
  }
  TaskHeartbeat out;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    auto held = LockHeld(u, tenant, worker, task_id, attempt);
    if (!held.ok() && held.status().code() == StatusCode::kAborted && !progress) {
      ASSIGN_OR_RETURN(auto c,
                       u.Exec(sql::kTaskCancelledWhileHeld, {task_id, tenant, worker, std::to_string(attempt)}));
      out.cancel_requested = c.rows() > 0;
      if (out.cancel_requested) return Status::Ok();
    }
    RETURN_IF_ERROR(held.status());
    ASSIGN_OR_RETURN(auto r, u.Exec(sql::kHeartbeatTask, {task_id, progress}));
    out.lease_expires_at_ms = db::Row(r, 0).Int("lease_expires_at_ms");
    return Status::Ok();
  }));
  return out;
}

Status Store::CancelTask(const TenantId& tenant, const TaskId& task_id, const std::string& reason) {
  RETURN_IF_ERROR(limits::Text(reason, "reason"));
  if (!IsUuid(task_id)) return NotFound("task not found");
  return Run([&](Unit& u) {
    ASSIGN_OR_RETURN(auto r, u.Exec(sql::kLockTask, {task_id, tenant}));
    if (r.rows() == 0) return NotFound("task not found");
    db::Row row(r, 0);
    std::string status = row.Str("status");
    if (IsTerminal(status)) return FailedPrecondition("task is already " + status);
    ASSIGN_OR_RETURN(auto cancelled, CancelTaskRow(u, task_id, row.Int("workflow_seq"), reason));
    auto workflow = row.Opt("workflow_id");
    if (!workflow) return Status::Ok();
    return DeliverIfOpen(u, tenant, *workflow, "TASK_CANCELLED", cancelled, true);
  });
}

StatusOr<TaskView> Store::GetTask(const TenantId& tenant, const TaskId& id) {
  if (!IsUuid(id)) return NotFound("task not found");
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kTaskOfTenant, {id, tenant}));
  if (r.rows() == 0) return NotFound("task not found");
  return TaskFrom(db::Row(r, 0));
}

StatusOr<Page<TaskView>> Store::ListTasks(const TenantId& tenant, const ListFilter& f) {
  return ListPage<TaskView>(pool_, sql::kListTasks, TaskFrom, tenant, f);
}

StatusOr<int> Store::ExpireTaskLeases(int limit) {
  return Sweep("task-leases", sql::kExpiredTaskLeases, limit, [](Unit& u, const db::Result& r, int i) {
    db::Row row(r, i);
    std::string id = row.Str("id"), tenant = row.Str("tenant_id"), queue = row.Str("queue");
    ASSIGN_OR_RETURN(auto h, LockHeld(u, tenant, row.Str("lease_owner"), id, static_cast<int>(row.Int("attempt"))));
    ASSIGN_OR_RETURN(auto f, FailAttempt(u, tenant, h, "lease expired (no heartbeat or result in time)", false));
    if (f.will_retry) u.Wake(tenant, queue, WorkKind::kTask);
    u.AfterCommit([](EngineMetrics& m) { m.lease_expiries.With({"task"})->Inc(); });
    return Status::Ok();
  });
}

}  // namespace flovyn::engine
