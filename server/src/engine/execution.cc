#include "engine/execution.h"

#include "engine/sql.h"
#include "engine/values.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/db/row.h"

namespace flovyn::engine {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {
const char* Bool(bool b) { return b ? "true" : "false"; }
}  // namespace

StatusOr<Execution> Execution::Lock(Unit& u, const std::string& tenant, const std::string& id) {
  if (!IsUuid(id)) return NotFound("workflow execution not found");
  ASSIGN_OR_RETURN(auto r, u.Exec(sql::kLockExecution, {id, tenant}));
  if (r.rows() == 0) return NotFound("workflow execution not found");
  return Locked(u, db::Row(r, 0));
}

StatusOr<Execution> Execution::Locked(Unit& u, const db::Row& row) {
  Execution e(u);
  e.id = row.Str("id");
  e.tenant_id = row.Str("tenant_id");
  e.kind = row.Str("kind");
  e.queue = row.Str("queue");
  auto status = model::ParseWorkflowStatus(row.Str("status"));
  if (!status) return Internal("workflow execution has an unknown status");
  e.status = *status;
  e.last_seq = row.Int("last_seq");
  e.lease_owner = row.Opt("lease_owner");
  e.parent_id = row.Opt("parent_id");
  e.parent_name = row.Opt("parent_name");
  e.cancel_requested = row.Bool("cancel_requested");
  e.lease_valid = row.Bool("lease_valid");
  e.sticky_worker = row.Opt("sticky_worker");
  e.sticky_seq = row.OptInt("sticky_seq");
  e.cancel_pending = row.Bool("cancel_pending");
  e.db_now_ms = row.Int("now_ms");
  return e;
}

Status Execution::Append(const std::string& type, const json& payload, std::optional<int64_t> at_ms) {
  int64_t seq = last_seq + 1;
  std::string body = Dump(payload);
  int64_t created_at_ms = at_ms.value_or(db_now_ms);
  if (created_at_ms > 0) {
    // Its time known (the worker's stamp, or the transaction's start, as the column's default
    // would have it): the insert goes out with the next statement.
    RETURN_IF_ERROR(
        u_->DeferRow(sql::kInsertEventsAt, {id, std::to_string(seq), type, body, std::to_string(created_at_ms)}));
  } else {
    ASSIGN_OR_RETURN(auto r, u_->Exec(sql::kInsertEvent, {id, std::to_string(seq), type, body}));
    created_at_ms = db::Row(r, 0).Int("created_at_ms");
  }
  last_seq = seq;
  appended.push_back(Event{seq, type, body, created_at_ms});
  return Status::Ok();
}

Status Execution::Buffer(const std::string& type, const json& payload, bool wakes) {
  return u_->Defer(sql::kBufferEvent, {id, type, Dump(payload), Bool(wakes)});
}

StatusOr<bool> Execution::FlushBuffer() {
  if (unbuffered) return false;
  ASSIGN_OR_RETURN(auto r, u_->Exec(sql::kTakeBufferedEvents, {id}));
  auto taken = r.rows() > 0 ? db::Row(r, 0).Opt("buffered") : std::nullopt;
  return taken ? AppendTaken(json::parse(*taken)) : false;
}

StatusOr<bool> Execution::AppendTaken(const json& buffered) {
  bool wakes = false;
  for (const json& b : buffered) {
    RETURN_IF_ERROR(Append(b.at("type").get<std::string>(), b.at("payload")));
    wakes = wakes || b.at("wakes").get<bool>();
  }
  return wakes;
}

// The row's writes go out with the unit's next statement (at the latest its COMMIT): nothing
// reads their result.
Status Execution::Save(std::chrono::milliseconds lease, bool keep_lease) {
  return u_->Defer(sql::kSaveExecution,
                   {id, std::string(Name(status)), std::to_string(last_seq), Bool(cancel_requested), Bool(keep_lease),
                    std::to_string(lease.count()), lease_owner, IsTerminal(status) ? std::nullopt : keep_for,
                    output_json, error_text});
}

Status Execution::SaveSequence() { return u_->Defer(sql::kSaveSequence, {id, std::to_string(last_seq)}); }

Status Execution::MarkCancelRequested() {
  cancel_requested = true;
  return u_->Defer(sql::kMarkCancelRequested, {id});
}

namespace {
std::string ErrorText(const json& result) { return result.is_string() ? result.get<std::string>() : Dump(result); }
}  // namespace

// Its writes read nothing back: they go out with the unit's next statement (at the latest its
// COMMIT), as do the other writes here whose result nobody reads.
Status Execution::Finish(WorkflowStatus final_status, const json& result) {
  status = final_status;
  u_->AfterCommit([k = kind, final_status](EngineMetrics& m) {
    (final_status == WorkflowStatus::kCompleted ? m.completed
     : final_status == WorkflowStatus::kFailed  ? m.failed
                                                : m.cancelled)
        .With({k})
        ->Inc();
  });
  // Written by the Save that follows.
  if (final_status == WorkflowStatus::kCompleted) {
    output_json = Dump(result);
  } else {
    error_text = ErrorText(result);
  }
  RETURN_IF_ERROR(u_->Defer(sql::kCancelTimersOfExecution, {id}));
  RETURN_IF_ERROR(u_->Defer(sql::kCancelTasksOfExecution, {id}));
  RETURN_IF_ERROR(u_->Defer(sql::kDropBufferedEvents, {id}));
  if (!parent_id) return Status::Ok();
  json p = {{"childId", id}, {"name", parent_name.value_or("")}};
  if (final_status == WorkflowStatus::kCompleted) {
    p["output"] = result;
    return DeliverIfOpen(*u_, tenant_id, *parent_id, "CHILD_WORKFLOW_COMPLETED", p, true);
  }
  p["error"] = ErrorText(result);
  p["status"] = Name(final_status);
  return DeliverIfOpen(*u_, tenant_id, *parent_id, "CHILD_WORKFLOW_FAILED", p, true);
}

Status Execution::CancelNow(std::chrono::milliseconds lease, const json& requested) {
  cancel_requested = true;
  RETURN_IF_ERROR(Append("CANCELLATION_REQUESTED", requested));
  RETURN_IF_ERROR(Append("WORKFLOW_CANCELLED", json::object()));
  RETURN_IF_ERROR(Finish(WorkflowStatus::kCancelled, json("cancelled")));
  return Save(lease, false);
}

Status Execution::InsertTask(const std::string& task_id, const TaskSpec& t, int64_t scheduled_seq,
                             const std::optional<std::string>& traceparent) {
  if (u_->handoff() != nullptr) {
    std::optional<TaskHandoff::Offer> offer;
    if (TaskTaker* taker = u_->task_taker(); taker && taker->Wants(t.queue, t.kind)) {
      --taker->room;  // the submitting worker runs it itself
      offer = TaskHandoff::Offer{taker->worker, taker->taker};
    } else {
      offer = u_->handoff()->Take(WorkKey(tenant_id, t.queue, WorkKind::kTask), t.kind);
    }
    if (offer) {
      // As a claim through the queue would record it; appended before the insert so that the
      // step's events stay one statement.
      RETURN_IF_ERROR(Append("TASK_STARTED", {{"taskId", task_id}, {"attempt", 1}, {"workerId", offer->worker}}));
      return InsertHandedOver(*u_, *offer,
                              {.id = task_id,
                               .tenant = tenant_id,
                               .workflow_id = id,
                               .workflow_seq = scheduled_seq,
                               .spec = t,
                               .traceparent = traceparent},
                              db_now_ms > 0 ? std::optional<int64_t>(db_now_ms) : std::nullopt)
          .status();
    }
  }
  RETURN_IF_ERROR(
      u_->Defer(sql::kInsertTask, {task_id, tenant_id, id, std::to_string(scheduled_seq), t.kind, t.queue, t.input_json,
                                   std::to_string(t.max_attempts), std::to_string(t.initial_backoff_ms),
                                   std::to_string(t.max_backoff_ms), std::to_string(t.lease_ms), traceparent}));
  Wake(t.queue, WorkKind::kTask);
  return Status::Ok();
}

StatusOr<std::optional<int64_t>> Execution::InsertTimer(const std::string& name, int64_t duration_ms) {
  ASSIGN_OR_RETURN(
      auto r, u_->Exec(sql::kInsertTimer, {id, name, std::to_string(duration_ms), std::to_string(timer_hold.count())}));
  if (r.rows() == 0) return std::optional<int64_t>();
  u_->Deadline(db::Row(r, 0).Int("due_in_us"));
  return std::optional<int64_t>(db::Row(r, 0).Int("fire_at_ms"));
}

StatusOr<bool> Execution::CancelTimer(const std::string& name) {
  ASSIGN_OR_RETURN(auto r, u_->Exec(sql::kCancelTimer, {id, name}));
  return r.affected() > 0;
}

StatusOr<bool> Execution::TimerFired(const std::string& name) {
  ASSIGN_OR_RETURN(auto r, u_->Exec(sql::kTimerFired, {id, name}));
  return r.rows() > 0;
}

StatusOr<bool> Execution::InsertPromise(const std::string& promise_id, const std::string& name, int64_t timeout_ms) {
  ASSIGN_OR_RETURN(auto r,
                   u_->Exec(sql::kInsertPromise, {promise_id, tenant_id, id, name, std::to_string(timeout_ms)}));
  if (r.rows() > 0 && timeout_ms > 0) u_->Deadline(db::Row(r, 0).Int("due_in_us"));
  return r.affected() > 0;
}

Status Execution::PutState(const std::string& key, const std::string& value_json) {
  return u_->Defer(sql::kPutState, {id, key, value_json});
}

Status Execution::DeleteState(const std::string& key) { return u_->Defer(sql::kDeleteState, {id, key}); }

StatusOr<StartResult> InsertExecution(Unit& u, const std::string& tenant, const StartWorkflowRequest& req,
                                      const std::optional<std::string>& parent_id,
                                      const std::optional<std::string>& parent_name,
                                      const std::optional<std::string>& id_hint, bool hand_over) {
  std::string id = id_hint.value_or(NewUuid());
  // A workflow poller of the queue waits here: the execution is inserted claimed for it.
  std::optional<TaskHandoff::Offer> offer;
  TaskHandoff* h = hand_over ? u.workflow_handoff() : nullptr;
  if (h != nullptr) offer = h->Take(WorkKey(tenant, req.queue, WorkKind::kWorkflow), req.kind);
  auto inserted = u.Exec(sql::kInsertExecution, {id, tenant, req.kind, req.queue, req.input_json, req.idempotency_key,
                                                 parent_id, parent_name, NullIfEmpty(req.traceparent),
                                                 offer ? std::optional<std::string>(offer->worker) : std::nullopt,
                                                 h != nullptr ? std::to_string(h->lease.count()) : "0"});
  if (offer && (!inserted.ok() || inserted->rows() == 0)) offer->poller->Resume();  // nothing claimed for it
  if (!inserted.ok()) return inserted.status();
  const db::Result& r = *inserted;
  if (r.rows() == 0) {
    ASSIGN_OR_RETURN(auto existing, u.Exec(sql::kExecutionByIdempotencyKey, {tenant, req.idempotency_key}));
    if (existing.rows() == 0) return Status(StatusCode::kAborted, "idempotency key race; retry");
    return StartResult{db::Row(existing, 0).Str("id"), false};
  }
  if (offer) {
    TaskHandoff::Poller* poller = offer->poller;
    u.OnRollback([poller] { poller->Resume(); });
  }
  json payload = {{"kind", req.kind}, {"queue", req.queue}, {"input", json::parse(req.input_json)}};
  if (parent_id) payload["parentId"] = *parent_id;
  if (req.continued_from) payload["continuedFrom"] = *req.continued_from;
  RETURN_IF_ERROR(u.Defer(sql::kInsertEvent, {id, "1", "WORKFLOW_STARTED", Dump(payload)}));
  u.AfterCommit([kind = req.kind](EngineMetrics& m) { m.started.With({kind})->Inc(); });
  if (offer) {
    RETURN_IF_ERROR(HandInsertedOver(u, *offer, id));
    return StartResult{id, true};
  }
  u.Wake(tenant, req.queue, WorkKind::kWorkflow);
  return StartResult{id, true};
}

Status Deliver(Unit& u, const std::string& tenant, const std::string& execution_id, const std::string& type,
               const json& payload, bool wakes) {
  ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
  return DeliverTo(u, e, type, payload, wakes);
}

Status DeliverTo(Unit& u, Execution& e, const std::string& type, const json& payload, bool wakes) {
  if (IsTerminal(e.status)) return FailedPrecondition("workflow execution is " + std::string(Name(e.status)));
  if (e.HeldByWorker()) return e.Buffer(type, payload, wakes);
  RETURN_IF_ERROR(e.Append(type, payload));
  if (wakes && e.status == WorkflowStatus::kWaiting) {
    ASSIGN_OR_RETURN(bool handed, HandWorkflowOver(u, e));
    if (handed) return Status::Ok();
    e.status = WorkflowStatus::kPending;
    e.Wake(e.queue, WorkKind::kWorkflow);
  }
  return u.Defer(sql::kSaveDelivery, {e.id, std::string(Name(e.status)), std::to_string(e.last_seq)});
}

StatusOr<json> CancelTaskRow(Unit& u, const std::string& task_id, int64_t scheduled_seq, const std::string& reason) {
  RETURN_IF_ERROR(u.Exec(sql::kCancelTask, {task_id, reason.empty() ? std::string("cancelled") : reason}).status());
  u.AfterCommit([](EngineMetrics& m) { m.tasks.With({"cancelled"})->Inc(); });
  return json{{"taskId", task_id}, {"scheduledSequence", scheduled_seq}, {"reason", reason}};
}

Status CancelExecution(Unit& u, Execution& e, const json& requested, std::chrono::milliseconds lease) {
  if (e.HeldByWorker()) {
    // The worker learns at its next submit; the execution is cancelled then.
    RETURN_IF_ERROR(e.Buffer("CANCELLATION_REQUESTED", requested, true));
    return e.MarkCancelRequested();
  }
  RETURN_IF_ERROR(e.CancelNow(lease, requested));
  ASSIGN_OR_RETURN(auto kids, u.Exec(sql::kOpenChildren, {e.id}));
  for (int i = 0; i < kids.rows(); ++i) {
    ASSIGN_OR_RETURN(auto child, Execution::Lock(u, e.tenant_id, db::Row(kids, i).Str("id")));
    if (child.HeldByWorker()) {
      RETURN_IF_ERROR(child.MarkCancelRequested());
      continue;
    }
    child.parent_id.reset();  // the parent is cancelled already
    RETURN_IF_ERROR(child.CancelNow(lease, json::object()));
  }
  return Status::Ok();
}

Status DeliverIfOpen(Unit& u, const std::string& tenant, const std::string& execution_id, const std::string& type,
                     const json& payload, bool wakes) {
  Status s = Deliver(u, tenant, execution_id, type, payload, wakes);
  return s.code() == StatusCode::kFailedPrecondition ? Status::Ok() : s;
}

Status SettlePromise(Unit& u, const std::string& tenant, const std::string& promise_id, const std::string& status,
                     const json& value) {
  if (!IsUuid(promise_id)) return NotFound("promise not found");
  ASSIGN_OR_RETURN(auto r, u.Exec(sql::kLockPromise, {promise_id, tenant}));
  if (r.rows() == 0) return NotFound("promise not found");
  db::Row row(r, 0);
  if (row.Str("status") != "PENDING") return FailedPrecondition("promise is already " + row.Str("status"));
  json p = {{"promiseId", promise_id}, {"name", row.Str("name")}};
  std::string type;
  if (status == "RESOLVED") {
    RETURN_IF_ERROR(u.Exec(sql::kResolvePromise, {promise_id, Dump(value)}));
    type = "PROMISE_RESOLVED";
    p["value"] = value;
  } else {
    RETURN_IF_ERROR(u.Exec(sql::kSettlePromiseWithError, {promise_id, value.get<std::string>(), status}));
    if (status == "REJECTED") {
      type = "PROMISE_REJECTED";
      p["error"] = value;
    } else {
      type = "PROMISE_TIMED_OUT";
    }
  }
  return Deliver(u, tenant, row.Str("execution_id"), type, p, true);
}

}  // namespace flovyn::engine
