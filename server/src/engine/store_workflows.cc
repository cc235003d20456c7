// The store's workflow operations: start, claim, the worker's command batches, signals,
// cancellation, promises and the views of executions.
#include "engine/limits.h"
#include "engine/rows.h"
#include "engine/search.h"
#include "engine/sql.h"
#include "engine/store.h"
#include "flovyn/core/status_macros.h"

namespace flovyn::engine {

using nlohmann::json;

StatusOr<StartResult> Store::StartWorkflow(const TenantId& tenant, const StartWorkflowRequest& in) {
  StartWorkflowRequest req = in;
  RETURN_IF_ERROR(ValidateStart(req));
  StartResult result;
  // Inserts only (an id given twice waits on the first): no row locked before another's.
  RETURN_IF_ERROR(RunGrouped(
      [&](Unit& u) {
        // Eager dispatch: a workflow poller of its queue waiting here takes it in this commit.
        ASSIGN_OR_RETURN(result, InsertExecution(u, tenant, req, std::nullopt, std::nullopt, std::nullopt, true));
        return Status::Ok();
      },
      std::string()));
  return result;
}

StatusOr<StartResult> Store::StartWorkflowIn(Unit& u, const TenantId& tenant, StartWorkflowRequest req) {
  RETURN_IF_ERROR(ValidateStart(req));
  return InsertExecution(u, tenant, req, std::nullopt, std::nullopt);
}

// Two round trips: the claim (which locks the row and takes its buffered events), then what
// the buffer appends, the reads of what the worker replays and the COMMIT together.
StatusOr<std::optional<WorkflowClaim>> Store::ClaimWorkflow(const TenantId& tenant, const WorkerId& worker,
                                                            const std::string& queue,
                                                            const std::vector<std::string>& kinds) {
  std::shared_ptr<PendingClaim> pending;
  bool more = false;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    pending.reset();
    ASSIGN_OR_RETURN(auto r, u.Exec(sql::kClaimWorkflow, {tenant, queue, JsonArray(kinds, true), worker,
                                                          std::to_string(options_.workflow_lease.count()),
                                                          std::to_string(options_.sticky.count())}));
    if (r.rows() == 0) return Status::Ok();
    db::Row row(r, 0);
    u.AfterCommit(
        [waited = row.Double("waited")](EngineMetrics& m) { m.dispatch.With({"workflow"})->Observe(waited); });
    ASSIGN_OR_RETURN(auto e, Execution::Locked(u, row));
    if (auto buffered = row.Opt("buffered")) {
      // Whether they wake it does not matter: it is being claimed, so it runs.
      RETURN_IF_ERROR(e.AppendTaken(json::parse(*buffered)).status());
      if (!e.appended.empty()) RETURN_IF_ERROR(e.SaveSequence());
    }
    more = row.Bool("more");
    ASSIGN_OR_RETURN(pending, ReadForReplay(u, e.id, row.Int("history_after")));
    return Status::Ok();
  }));
  if (!pending) return std::optional<WorkflowClaim>();
  ASSIGN_OR_RETURN(auto claim, pending->Take());
  claim.more = more;
  return std::optional<WorkflowClaim>(std::move(claim));
}

Status Store::ReleaseWorkflowClaim(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution_id) {
  return Run([&](Unit& u) {
    ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
    if (e.status != WorkflowStatus::kRunning || e.lease_owner.value_or("") != worker.str()) return Status::Ok();
    e.status = WorkflowStatus::kPending;
    RETURN_IF_ERROR(e.Save(options_.workflow_lease, false));
    e.Wake(e.queue, WorkKind::kWorkflow);
    return Status::Ok();
  });
}

StatusOr<SubmitResult> Store::SubmitCommands(const TenantId& tenant, const WorkerId& worker,
                                             const ExecutionId& execution_id, int64_t expected_sequence,
                                             std::vector<WorkflowCommand> commands, bool keep_cached,
                                             const std::optional<TaskTaker>& take, bool fires_timers) {
  SubmitResult result;
  RETURN_IF_ERROR(RunGrouped(
      [&](Unit& u) {
        if (take) u.SetTaskTaker(*take);
        ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
        if (e.status != WorkflowStatus::kRunning || e.lease_owner.value_or("") != worker.str()) {
          return Status(StatusCode::kAborted, "execution is not held by this worker (its lease may have expired)");
        }
        if (e.last_seq != expected_sequence) {
          return Status(StatusCode::kAborted, "stale sequence: expected " + std::to_string(expected_sequence) +
                                                  ", history is at " + std::to_string(e.last_seq));
        }
        ASSIGN_OR_RETURN(result, ApplyHeld(e, worker, commands, keep_cached, fires_timers));
        return Status::Ok();
      },
      execution_id.str()));
  return result;
}

StatusOr<SubmitResult> Store::ApplyHeld(Execution& e, const WorkerId& worker, std::vector<WorkflowCommand>& commands,
                                        bool keep_cached, bool fires_timers) {
  if (keep_cached && options_.sticky.count() > 0) {
    e.sticky_worker = worker.str();  // so a wake-up in this batch finds it first
    e.keep_for = worker.str();       // written with the row
    if (fires_timers) e.timer_hold = options_.worker_timer_grace;
  }
  return ApplyBatch(e, commands);
}

StatusOr<std::optional<SubmitResult>> Store::Continue(Unit& u, Execution& e, const WorkerId& worker, Continuation& c,
                                                      const std::string& type, const json& payload) {
  // The worker's code saw the history at expected_sequence, then this event: nothing may have
  // come between (an event, a claim, a cancellation), and it alone may run the workflow now.
  constexpr int64_t kAheadMs = 1000, kBehindMs = 5000;  // the clocks of worker and database
  bool as_seen = e.status == WorkflowStatus::kWaiting && e.sticky_worker == worker.str() &&
                 e.last_seq == c.expected_sequence && !e.cancel_requested && c.at_ms <= e.db_now_ms + kAheadMs &&
                 c.at_ms >= e.db_now_ms - kBehindMs;
  if (!as_seen) return std::optional<SubmitResult>();
  if (c.take) u.SetTaskTaker(*c.take);
  e.unbuffered = true;  // events for a waiting workflow go straight to its history
  RETURN_IF_ERROR(e.Append(type, payload, c.at_ms));
  e.status = WorkflowStatus::kRunning;  // held by the worker, as a claim would
  e.lease_owner = worker.str();
  e.lease_valid = true;
  ASSIGN_OR_RETURN(auto result, ApplyHeld(e, worker, c.commands, c.keep_cached, c.fires_timers));
  return std::optional<SubmitResult>(std::move(result));
}

Status Store::FireTimer(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution_id,
                        const std::string& name, Continuation* continuation, std::optional<SubmitResult>* continued) {
  return RunGrouped(
      [&](Unit& u) -> Status {
        continued->reset();  // a group that rolled back runs this again
        // The execution, then its timer: the scheduler locks both at once and skips what is locked.
        ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
        ASSIGN_OR_RETURN(auto r, u.Exec(sql::kLockWorkerTimer, {e.id, name}));
        if (r.rows() == 0 || !db::Row(r, 0).Bool("pending")) {
          return FailedPrecondition("timer '" + name + "' is not pending (fired, cancelled or never started)");
        }
        if (!db::Row(r, 0).Bool("due")) return FailedPrecondition("timer '" + name + "' is not due yet");
        RETURN_IF_ERROR(u.Defer(sql::kFireTimer, {e.id, name}));
        u.AfterCommit([lag = db::Row(r, 0).Double("lag")](EngineMetrics& m) {
          m.timer_lag.Observe(lag);
          m.timers_fired.Inc();
        });
        json fired = {{"name", name}};
        if (continuation != nullptr) {
          ASSIGN_OR_RETURN(*continued, Continue(u, e, worker, *continuation, "TIMER_FIRED", fired));
          if (*continued) return Status::Ok();
        }
        return DeliverTo(u, e, "TIMER_FIRED", fired, true);
      },
      execution_id.str());
}

StatusOr<std::pair<int, int>> Store::SkipTime(const TenantId& tenant, const ExecutionId& execution_id) {
  if (!options_.allow_time_skipping) {
    return FailedPrecondition("time skipping is for tests: the server runs without engine.allow_time_skipping");
  }
  std::pair<int, int> out;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
    ASSIGN_OR_RETURN(auto t, u.Exec(sql::kSkipTimers, {e.id}));
    ASSIGN_OR_RETURN(auto p, u.Exec(sql::kSkipPromiseTimeouts, {e.id}));
    out = {static_cast<int>(t.affected()), static_cast<int>(p.affected())};
    if (out.first + out.second > 0) u.Deadline(0);
    return Status::Ok();
  }));
  return out;
}

Status Store::ReportProblem(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution_id,
                            int64_t expected_sequence, const std::string& message) {
  RETURN_IF_ERROR(limits::Text(message, "message"));
  return Run([&](Unit& u) {
    ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
    if (e.status != WorkflowStatus::kRunning || e.lease_owner.value_or("") != worker.str() ||
        e.last_seq != expected_sequence) {
      return Status(StatusCode::kAborted, "execution is not held by this worker at that sequence");
    }
    u.AfterCommit([](EngineMetrics& m) { m.problems->Inc(); });
    return u.Exec(sql::kReportProblem, {e.id, message, std::to_string(options_.problem_retry.count())}).status();
  });
}

// Validates the whole batch, runs each command's handler, then settles the execution: ended,
// cancelled (a cancellation arrived while the worker held it), suspended (waiting, or pending at
// once when buffered news wakes it) or still the worker's.
StatusOr<SubmitResult> Store::ApplyBatch(Execution& e, std::vector<WorkflowCommand>& commands) {
  RETURN_IF_ERROR(ValidateBatch(commands, e.queue));
  BatchOutcome out;
  for (const auto& cmd : commands) {
    RETURN_IF_ERROR(std::visit([&](const auto& c) { return Handle(e, out, c); }, cmd));
  }
  bool keep_lease = false;
  if (out.terminal) {
    RETURN_IF_ERROR(e.Finish(out.terminal->first, out.terminal->second));
  } else {
    ASSIGN_OR_RETURN(bool wakes, e.FlushBuffer());
    if (e.cancel_requested) {
      RETURN_IF_ERROR(e.Append("WORKFLOW_CANCELLED", json::object()));
      RETURN_IF_ERROR(e.Finish(WorkflowStatus::kCancelled, json("cancelled")));
    } else if (out.suspend) {
      e.status = wakes ? WorkflowStatus::kPending : WorkflowStatus::kWaiting;
      if (wakes) e.Wake(e.queue, WorkKind::kWorkflow);
    } else {
      keep_lease = true;  // the worker goes on with this execution
    }
  }
  RETURN_IF_ERROR(e.Save(options_.workflow_lease, keep_lease));
  return SubmitResult{e.last_seq, std::string(Name(e.status)), e.appended};
}

namespace {
json SignalPayload(const std::string& name, const std::string& payload_json) {
  return {{"name", name}, {"payload", json::parse(payload_json)}};
}
}  // namespace

Status Store::Signal(const TenantId& tenant, const ExecutionId& execution_id, const std::string& name,
                     const std::string& payload_json) {
  RETURN_IF_ERROR(limits::Name(name, "signal name"));
  ASSIGN_OR_RETURN(auto payload, NormaliseJson(payload_json, "payload"));
  return Run(
      [&](Unit& u) { return Deliver(u, tenant, execution_id, "SIGNAL_RECEIVED", SignalPayload(name, payload), true); });
}

StatusOr<StartResult> Store::SignalWithStart(const TenantId& tenant, const StartWorkflowRequest& in,
                                             const std::string& name, const std::string& payload_json) {
  StartWorkflowRequest req = in;
  RETURN_IF_ERROR(ValidateStart(req));
  RETURN_IF_ERROR(limits::Name(name, "signal name"));
  ASSIGN_OR_RETURN(auto payload, NormaliseJson(payload_json, "payload"));
  StartResult result;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    ASSIGN_OR_RETURN(result, InsertExecution(u, tenant, req, std::nullopt, std::nullopt));
    return Deliver(u, tenant, result.execution_id, "SIGNAL_RECEIVED", SignalPayload(name, payload), true);
  }));
  return result;
}

Status Store::Cancel(const TenantId& tenant, const ExecutionId& execution_id, const std::string& reason,
                     std::chrono::milliseconds grace) {
  RETURN_IF_ERROR(limits::Text(reason, "reason"));
  RETURN_IF_ERROR(limits::Duration(grace.count(), "graceMs"));
  json requested = reason.empty() ? json::object() : json{{"reason", reason}};
  return Run([&](Unit& u) {
    ASSIGN_OR_RETURN(auto e, Execution::Lock(u, tenant, execution_id));
    if (IsTerminal(e.status)) {
      return FailedPrecondition("workflow execution is already " + std::string(Name(e.status)));
    }
    if (e.cancel_requested) return Status::Ok();
    if (grace.count() > 0) {
      if (e.cancel_pending) return Status::Ok();  // the first deadline stands
      requested["graceMs"] = grace.count();
      RETURN_IF_ERROR(u.Exec(sql::kSetCancelDeadline, {e.id, std::to_string(grace.count())}).status());
      return Deliver(u, tenant, e.id, "CANCELLATION_REQUESTED", requested, true);
    }
    return CancelExecution(u, e, requested, options_.workflow_lease);
  });
}

Status Store::ResolvePromise(const TenantId& tenant, const PromiseId& promise_id, const std::string& value_json) {
  ASSIGN_OR_RETURN(auto value, NormaliseJson(value_json, "value"));
  return Run([&](Unit& u) { return SettlePromise(u, tenant, promise_id, "RESOLVED", json::parse(value)); });
}

Status Store::RejectPromise(const TenantId& tenant, const PromiseId& promise_id, const std::string& error) {
  RETURN_IF_ERROR(limits::Text(error, "error"));
  return Run([&](Unit& u) { return SettlePromise(u, tenant, promise_id, "REJECTED", json(error)); });
}

StatusOr<WorkflowView> Store::GetWorkflow(const TenantId& tenant, const ExecutionId& id) {
  if (!IsUuid(id)) return NotFound("workflow execution not found");
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kWorkflowOfTenant, {id, tenant}));
  if (r.rows() == 0) return NotFound("workflow execution not found");
  return WorkflowFrom(db::Row(r, 0));
}

// One statement shape for lists and searches: the filters are clauses over fixed columns, the
// query is the search language's WHERE (engine/search.h), every value a parameter.
StatusOr<Page<WorkflowView>> Store::ListWorkflows(const TenantId& tenant, const ListFilter& f) {
  db::Params params{tenant};
  std::string text = sql::kListWorkflowsSelect;
  auto param = [&params](std::optional<std::string> v, const char* cast) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size()) + cast;
  };
  if (f.status) text += " AND e.status = " + param(f.status, "");
  if (f.kind) text += " AND e.kind = " + param(f.kind, "");
  if (f.queue) text += " AND e.queue = " + param(f.queue, "");
  if (f.parent) {
    if (!IsUuid(*f.parent)) return InvalidArgument("parent must be a workflow execution id (a UUID)");
    text += " AND e.parent_id = " + param(f.parent, "::uuid");
  }
  if (f.query) {
    ASSIGN_OR_RETURN(auto where, ParseSearch(*f.query, static_cast<int>(params.size()) + 1));
    text += " AND " + where.sql;
    params.insert(params.end(), where.params.begin(), where.params.end());
  }
  if (f.cursor) {
    auto c = DecodeCursor(*f.cursor);
    if (!c) return InvalidArgument("invalid cursor");
    text +=
        " AND (e.created_at, e.id) < (" + param(c->first, "::timestamptz") + ", " + param(c->second, "::uuid") + ")";
  }
  int limit = std::clamp(f.limit, 1, 500);
  text += " ORDER BY e.created_at DESC, e.id DESC LIMIT " + param(std::to_string(limit + 1), "");
  ASSIGN_OR_RETURN(auto r, pool_.Query(text, params));
  Page<WorkflowView> page;
  for (int i = 0; i < r.rows() && i < limit; ++i) page.items.push_back(WorkflowFrom(db::Row(r, i)));
  if (r.rows() > limit) page.next_cursor = EncodeCursor(page.items.back().created_at, page.items.back().id);
  return page;
}

StatusOr<std::map<std::string, int64_t>> Store::CountWorkflows(const TenantId& tenant) {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kCountWorkflows, {tenant}));
  std::map<std::string, int64_t> out;
  for (int i = 0; i < r.rows(); ++i) out[db::Row(r, i).Str("status")] = db::Row(r, i).Int("n");
  return out;
}

StatusOr<std::vector<Event>> Store::Events(const TenantId& tenant, const ExecutionId& id, int64_t after) {
  if (!IsUuid(id)) return NotFound("workflow execution not found");
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kEventsOfTenantAfter, {id, tenant, std::to_string(after)}));
  if (r.rows() == 0) RETURN_IF_ERROR(GetWorkflow(tenant, id));
  std::vector<Event> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(EventFrom(db::Row(r, i)));
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> Store::State(const TenantId& tenant, const ExecutionId& id) {
  RETURN_IF_ERROR(GetWorkflow(tenant, id));
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kStateOfExecution, {id}));
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(db::Row(r, i).Str("key"), db::Row(r, i).Str("value"));
  return out;
}

StatusOr<int> Store::CancelOverdue(int limit) {
  return Sweep("cancel-deadlines", sql::kOverdueCancellations, limit, [this](Unit& u, const db::Result& r, int i) {
    db::Row row(r, i);
    ASSIGN_OR_RETURN(auto e, Execution::Lock(u, row.Str("tenant_id"), row.Str("id")));
    return CancelExecution(u, e, json{{"reason", "the cancellation's grace period ended"}}, options_.workflow_lease);
  });
}

StatusOr<int> Store::ExpireWorkflowLeases(int limit) {
  return Sweep("workflow-leases", sql::kExpiredWorkflowLeases, limit, [this](Unit& u, const db::Result& r, int i) {
    db::Row row(r, i);
    ASSIGN_OR_RETURN(auto e, Execution::Lock(u, row.Str("tenant_id"), row.Str("id")));
    RETURN_IF_ERROR(e.FlushBuffer());
    e.status = WorkflowStatus::kPending;
    RETURN_IF_ERROR(e.Save(options_.workflow_lease, false));
    e.Wake(e.queue, WorkKind::kWorkflow);
    u.AfterCommit([](EngineMetrics& m) { m.lease_expiries.With({"workflow"})->Inc(); });
    return Status::Ok();
  });
}

}  // namespace flovyn::engine
