// A workflow execution locked FOR UPDATE inside a unit of work: the narrow interface through
// which workflow commands (engine/commands.h), deliveries from outside the workflow and the
// sweeps change an execution. Appends happen with the row locked, so sequence numbers are dense
// and never repeat. Used by one thread, inside Store::Run.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "engine/unit.h"
#include "flovyn/db/row.h"

namespace flovyn::engine {

// A task as a workflow schedules it (validated and with its defaults applied).
class Execution {
 public:
  // NOT_FOUND when the tenant has no such execution.
  static StatusOr<Execution> Lock(Unit& u, const std::string& tenant, const std::string& id);
  // The execution of a row a statement of `u` has locked (kLockExecution's columns).
  static StatusOr<Execution> Locked(Unit& u, const db::Row& row);

  std::string id, tenant_id, kind, queue;
  WorkflowStatus status = WorkflowStatus::kPending;
  int64_t last_seq = 0;
  std::optional<std::string> lease_owner, parent_id, parent_name;
  bool cancel_requested = false;
  bool lease_valid = false;                  // a worker holds it and its lease has not expired
  bool cancel_pending = false;               // a graceful cancellation waits for the code (cancel_deadline set)
  std::optional<std::string> sticky_worker;  // the worker that keeps it cached
  std::optional<int64_t> sticky_seq;         // up to which sequence it keeps it
  int64_t db_now_ms = 0;                     // the transaction's start, ms since the epoch
  bool unbuffered = false;                   // known to have no buffered events (it was waiting)
  // Save makes it sticky to this worker at its last sequence (unless it has ended).
  std::optional<std::string> keep_for;
  // Timers this unit starts are the keeping worker's to fire (fires_timers): the server fires
  // each this long after its deadline.
  std::chrono::milliseconds timer_hold{0};
  std::vector<Event> appended;  // by this unit, in order
  // Its end's output or error, set by Finish and written by the Save that must follow it.
  std::optional<std::string> output_json, error_text;

  bool HeldByWorker() const { return status == WorkflowStatus::kRunning && lease_valid; }

  // History.
  // `at_ms`: the event's time in ms since the epoch (the transaction's start when not given).
  Status Append(const std::string& type, const nlohmann::json& payload, std::optional<int64_t> at_ms = std::nullopt);
  // Keeps an event for after the worker's commands (while a worker holds the execution).
  Status Buffer(const std::string& type, const nlohmann::json& payload, bool wakes);
  // Moves buffered events into the history; returns whether any wakes the workflow.
  StatusOr<bool> FlushBuffer();
  // The same for buffered events a statement has taken already (FLOVYN_TAKEN_BUFFER's array, in
  // the order they arrived).
  StatusOr<bool> AppendTaken(const nlohmann::json& buffered);

  // The row. Save writes status, sequence and cancellation, and the lease when `keep_lease`.
  Status Save(std::chrono::milliseconds lease, bool keep_lease);
  Status SaveSequence();
  Status MarkCancelRequested();
  // Ends the execution (COMPLETED with `result` as output, or FAILED/CANCELLED with it as the
  // error): cancels its timers and tasks, drops its buffer and tells its parent. Save must
  // follow, and writes the status with the output or error.
  Status Finish(WorkflowStatus final_status, const nlohmann::json& result);
  // Requests cancellation and, unless a worker holds it, cancels at once; `requested` is the
  // CANCELLATION_REQUESTED payload.
  Status CancelNow(std::chrono::milliseconds lease, const nlohmann::json& requested);

  // What commands create, each owned by this execution.
  Status InsertTask(const std::string& task_id, const TaskSpec& task, int64_t scheduled_seq,
                    const std::optional<std::string>& traceparent);
  // The fire time in ms since the epoch; nullopt when a timer of that name exists.
  StatusOr<std::optional<int64_t>> InsertTimer(const std::string& name, int64_t duration_ms);
  // false when no pending timer has that name.
  StatusOr<bool> CancelTimer(const std::string& name);
  // The timer fired (its TIMER_FIRED may still wait in the buffer while a worker holds this).
  StatusOr<bool> TimerFired(const std::string& name);
  // false when a promise of that name exists.
  StatusOr<bool> InsertPromise(const std::string& promise_id, const std::string& name, int64_t timeout_ms);
  Status PutState(const std::string& key, const std::string& value_json);
  Status DeleteState(const std::string& key);
  // The execution's own workflow work wakes the worker that keeps it cached first.
  void Wake(const std::string& on_queue, WorkKind work) {
    bool own = work == WorkKind::kWorkflow && on_queue == queue && sticky_worker;
    u_->Wake(tenant_id, on_queue, work, own ? *sticky_worker : std::string());
  }
  Unit& unit() { return *u_; }

 private:
  explicit Execution(Unit& u) : u_(&u) {}
  Unit* u_;
};

// Inserts a new execution with its WORKFLOW_STARTED event (or finds the one started with the
// same idempotency key). `req` is validated already. `hand_over`: a new execution goes to a
// workflow poller of its queue waiting on this replica, claimed in this unit (eager dispatch).
StatusOr<StartResult> InsertExecution(Unit& u, const std::string& tenant, const StartWorkflowRequest& req,
                                      const std::optional<std::string>& parent_id,
                                      const std::optional<std::string>& parent_name,
                                      const std::optional<std::string>& id = std::nullopt, bool hand_over = false);

// Marks an open task CANCELLED (its running attempt learns it at its next heartbeat) and counts
// it; returns the TASK_CANCELLED payload for the workflow that scheduled it at `scheduled_seq`.
StatusOr<nlohmann::json> CancelTaskRow(Unit& u, const std::string& task_id, int64_t scheduled_seq,
                                       const std::string& reason);

// Cancels `e` now, or at its holder's next submit when a worker holds it; its open children go
// with it. `requested` is the CANCELLATION_REQUESTED payload.
Status CancelExecution(Unit& u, Execution& e, const nlohmann::json& requested, std::chrono::milliseconds lease);

// Delivers an event from outside the workflow (task result, timer, promise, child, signal).
// While a worker holds the execution it is buffered and appended after the worker's commands.
// FAILED_PRECONDITION when the execution has ended.
Status Deliver(Unit& u, const std::string& tenant, const std::string& execution_id, const std::string& type,
               const nlohmann::json& payload, bool wakes);
// The same, to an execution `u` has locked.
Status DeliverTo(Unit& u, Execution& e, const std::string& type, const nlohmann::json& payload, bool wakes);
// A claim made in a unit: its reads go out with the unit's next statement (at the latest its
// COMMIT), and Take puts the claim together from them once the unit has committed.
struct PendingClaim {
  db::Result row, state, events;
  int64_t history_after = 0;
  StatusOr<WorkflowClaim> Take();
};
// Reads the history (after `history_after`) and state a worker replays the claimed execution
// `id` from, deferred: no round trip of their own. The unit keeps the reads' buffers.
StatusOr<std::shared_ptr<PendingClaim>> ReadForReplay(Unit& u, const std::string& id, int64_t history_after);
// Eager dispatch of a workflow made runnable: when a workflow poller waits on this replica (the
// cached worker's while the execution is sticky), claims `e` for it, saves the row and hands
// the claim over when `u` commits. False (nothing done) when none waits. The claim and its
// reads go out with `u`'s next statement (at the latest its COMMIT): no round trip of their own.
StatusOr<bool> HandWorkflowOver(Unit& u, Execution& e);
// An execution `u` has inserted already claimed for `offer`'s worker: what it replays is read
// with the COMMIT, and handed to the offer's poller after it (the caller gives the poller back
// if `u` rolls back).
Status HandInsertedOver(Unit& u, const TaskHandoff::Offer& offer, const std::string& id);

// The same, where an ended execution simply ignores the event.
Status DeliverIfOpen(Unit& u, const std::string& tenant, const std::string& execution_id, const std::string& type,
                     const nlohmann::json& payload, bool wakes);

// Settles a pending promise (RESOLVED with `value`, REJECTED or TIMED_OUT with it as the
// error) and delivers the outcome to its execution. NOT_FOUND, or FAILED_PRECONDITION when
// already settled.
Status SettlePromise(Unit& u, const std::string& tenant, const std::string& promise_id, const std::string& status,
                     const nlohmann::json& value);

// JSON text the way the store writes it (invalid UTF-8 replaced).
std::string Dump(const nlohmann::json& j);

}  // namespace flovyn::engine
