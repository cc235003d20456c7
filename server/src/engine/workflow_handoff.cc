// Workflows handed to a waiting poller in the transaction that makes them runnable (eager
// dispatch), and the reading of a claim's history both claims share.
#include "engine/execution.h"
#include "engine/rows.h"
#include "engine/sql.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/db/row.h"

namespace flovyn::engine {

// The execution, its state and its history in one round trip.
Status ReadForReplay(Unit& u, const std::string& id, WorkflowClaim& c) {
  db::Result w, st;
  RETURN_IF_ERROR(u.DeferInto(sql::kWorkflowById, {id}, &w));
  RETURN_IF_ERROR(u.DeferInto(sql::kStateOfExecution, {id}, &st));
  ASSIGN_OR_RETURN(auto ev, c.history_after > 0
                                ? u.Exec(sql::kEventsOfExecutionAfter, {id, std::to_string(c.history_after)})
                                : u.Exec(sql::kEventsOfExecution, {id}));
  if (w.rows() == 0) return Internal("a claimed execution was not found");
  c.execution = WorkflowFrom(db::Row(w, 0));
  for (int i = 0; i < ev.rows(); ++i) c.events.push_back(EventFrom(db::Row(ev, i)));
  for (int i = 0; i < st.rows(); ++i) c.state.emplace_back(db::Row(st, i).Str("key"), db::Row(st, i).Str("value"));
  return Status::Ok();
}

namespace {
// Claims `e` for `worker` in `u`, as a claim through the queue would, and reads what it replays.
StatusOr<WorkflowClaim> ClaimFor(Unit& u, Execution& e, const std::string& worker, std::chrono::milliseconds lease) {
  ASSIGN_OR_RETURN(
      auto r, u.Exec(sql::kClaimHandedOver, {e.id, worker, std::to_string(lease.count()), std::to_string(e.last_seq)}));
  WorkflowClaim c;
  c.history_after = db::Row(r, 0).Int("history_after");
  RETURN_IF_ERROR(ReadForReplay(u, e.id, c));
  e.status = WorkflowStatus::kRunning;
  e.lease_owner = worker;
  e.lease_valid = true;
  e.sticky_worker.reset();
  u.AfterCommit([](EngineMetrics& m) { m.dispatch.With({"workflow"})->Observe(0); });
  return c;
}
}  // namespace

StatusOr<bool> HandWorkflowOver(Unit& u, Execution& e) {
  // The worker that completed the task keeps the workflow cached: it gets it in that call's answer.
  if (WorkflowTaker* t = u.taker(); t && t->execution == e.id && e.sticky_worker == t->worker) {
    ASSIGN_OR_RETURN(*t->claim, ClaimFor(u, e, t->worker, t->lease));
    return true;
  }
  TaskHandoff* h = u.workflow_handoff();
  if (h == nullptr) return false;
  // While sticky, only the worker that keeps it cached may have it (others wait the window out).
  auto offer = h->Take(WorkKey(e.tenant_id, e.queue, WorkKind::kWorkflow), e.kind, e.sticky_worker);
  if (!offer) return false;
  TaskHandoff::Poller* poller = offer->poller;
  u.OnRollback([poller] { poller->Resume(); });
  ASSIGN_OR_RETURN(auto c, ClaimFor(u, e, offer->worker, h->lease));
  u.OnCommit([poller, c = std::move(c)] { poller->Deliver(c); });
  return true;
}

}  // namespace flovyn::engine
