// Workflows handed to a waiting poller in the transaction that makes them runnable (eager
// dispatch), and the reading of a claim's history both claims share.
#include <memory>

#include <spdlog/spdlog.h>

#include "engine/execution.h"
#include "engine/rows.h"
#include "engine/sql.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/db/row.h"

namespace flovyn::engine {

StatusOr<WorkflowClaim> PendingClaim::Take() {
  if (row.rows() == 0) return Internal("a claimed execution was not found");
  WorkflowClaim c;
  c.history_after = history_after;
  c.execution = WorkflowFrom(db::Row(row, 0));
  for (int i = 0; i < events.rows(); ++i) c.events.push_back(EventFrom(db::Row(events, i)));
  for (int i = 0; i < state.rows(); ++i) {
    c.state.emplace_back(db::Row(state, i).Str("key"), db::Row(state, i).Str("value"));
  }
  return c;
}

StatusOr<std::shared_ptr<PendingClaim>> ReadForReplay(Unit& u, const std::string& id, int64_t history_after) {
  auto p = std::make_shared<PendingClaim>();
  u.Keep(p);
  p->history_after = history_after;
  RETURN_IF_ERROR(u.DeferInto(sql::kWorkflowById, {id}, &p->row));
  RETURN_IF_ERROR(u.DeferInto(sql::kStateOfExecution, {id}, &p->state));
  RETURN_IF_ERROR(history_after > 0
                      ? u.DeferInto(sql::kEventsOfExecutionAfter, {id, std::to_string(history_after)}, &p->events)
                      : u.DeferInto(sql::kEventsOfExecution, {id}, &p->events));
  return p;
}

namespace {
// Hands the claim to `poller` once `u` has committed.
void DeliverAtCommit(Unit& u, TaskHandoff::Poller* poller, std::shared_ptr<PendingClaim> p) {
  u.OnCommit([poller, p = std::move(p)] {
    auto c = p->Take();
    if (!c.ok()) {  // cannot happen while the row is locked; the poller polls on
      spdlog::error("workflow handed over: {}", c.status().message());
      poller->Resume();
      return;
    }
    poller->Deliver(*c);
  });
}

// Claims `e` for `worker` in `u`, as a claim through the queue would, and reads what it replays:
// all of it deferred, so the claim costs no round trip of its own.
StatusOr<std::shared_ptr<PendingClaim>> ClaimFor(Unit& u, Execution& e, const std::string& worker,
                                                 std::chrono::milliseconds lease) {
  RETURN_IF_ERROR(
      u.Defer(sql::kClaimHandedOver, {e.id, worker, std::to_string(lease.count()), std::to_string(e.last_seq)}));
  // Only the worker that keeps the execution cached gets just the events it has not seen.
  ASSIGN_OR_RETURN(auto p, ReadForReplay(u, e.id, e.sticky_worker == worker ? e.sticky_seq.value_or(0) : 0));
  e.status = WorkflowStatus::kRunning;
  e.lease_owner = worker;
  e.lease_valid = true;
  e.sticky_worker.reset();
  e.sticky_seq.reset();
  u.AfterCommit([](EngineMetrics& m) { m.dispatch.With({"workflow"})->Observe(0); });
  return p;
}
}  // namespace

StatusOr<bool> HandWorkflowOver(Unit& u, Execution& e) {
  // The worker that completed the task keeps the workflow cached: it gets it in that call's answer.
  if (WorkflowTaker* t = u.taker(); t && t->execution == e.id && e.sticky_worker == t->worker) {
    ASSIGN_OR_RETURN(auto p, ClaimFor(u, e, t->worker, t->lease));
    t->served = true;
    u.OnCommit([claim = t->claim, p] {
      auto c = p->Take();
      if (c.ok()) {
        *claim = std::move(*c);
      } else {  // cannot happen while the row is locked; the lease runs out and it goes to the queue
        spdlog::error("workflow handed over: {}", c.status().message());
      }
    });
    return true;
  }
  TaskHandoff* h = u.workflow_handoff();
  if (h == nullptr) return false;
  // While sticky, only the worker that keeps it cached may have it (others wait the window out).
  auto offer = h->Take(WorkKey(e.tenant_id, e.queue, WorkKind::kWorkflow), e.kind, e.sticky_worker);
  if (!offer) return false;
  TaskHandoff::Poller* poller = offer->poller;
  u.OnRollback([poller] { poller->Resume(); });
  ASSIGN_OR_RETURN(auto p, ClaimFor(u, e, offer->worker, h->lease));
  DeliverAtCommit(u, poller, std::move(p));
  return true;
}

Status HandInsertedOver(Unit& u, const TaskHandoff::Offer& offer, const std::string& id) {
  ASSIGN_OR_RETURN(auto p, ReadForReplay(u, id, 0));
  u.AfterCommit([](EngineMetrics& m) { m.dispatch.With({"workflow"})->Observe(0); });
  DeliverAtCommit(u, offer.poller, std::move(p));
  return Status::Ok();
}

}  // namespace flovyn::engine
