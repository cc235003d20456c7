// The engine's durable state in PostgreSQL: every operation is one transaction, every query
// is scoped by tenant, all SQL is parameterised and named in engine/sql.h. Workflow commands
// are applied by their handlers (engine/commands.h) over the locked execution
// (engine/execution.h). History appends happen with
// the execution row locked, so sequence numbers are dense and never repeat; claims use
// FOR UPDATE SKIP LOCKED so replicas never hand out the same work. Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/commands.h"
#include "engine/engine_metrics.h"
#include "engine/ids.h"
#include "engine/model.h"
#include "engine/notifier.h"
#include "engine/task_handoff.h"
#include "engine/unit.h"
#include "engine/values.h"
#include "flovyn/core/mutex.h"
#include "flovyn/db/pool.h"
#include "flovyn/db/transaction.h"

namespace flovyn::engine {

struct StoreOptions {
  std::chrono::milliseconds workflow_lease{60000};
  // How long an execution whose worker reported a problem waits before it is handed out again.
  std::chrono::milliseconds problem_retry{10000};
  bool allow_time_skipping = false;  // tests only: SkipTime makes timers and promise timeouts due now
  // How long after an execution becomes pending it stays with the worker that keeps it cached
  // (other workers leave it alone until then); 0: no worker keeps executions.
  std::chrono::milliseconds sticky{5000};
  // Group commit: concurrent completions, submissions and starts share one transaction, up to
  // this many per commit (1: each commits alone). Each caller is answered after that commit.
  int group_commit_max = 64;
  // How many shared transactions may be in flight at once; callers arriving meanwhile form the
  // next group.
  int group_commit_lanes = 2;
  // How long a group waits for more callers before it begins (0: it begins at once and groups
  // only the callers that arrived while earlier groups committed).
  std::chrono::microseconds group_commit_window{0};
  // Units queued whose callers do not wait (RunGroupedThen) at most; beyond it a caller waits
  // for its commit on its own thread, so the queue stays bounded whatever the calls in flight.
  int group_commit_queue_max = 1024;
  // How long after its deadline the server fires a timer that the worker keeping its execution
  // fires itself (fires_timers), when that worker has not (it stopped or lost the execution).
  std::chrono::milliseconds worker_timer_grace{1000};
};

// The notifier key of a deadline (DeadlineKey) at `at`.
std::string DeadlineKeyOf(std::chrono::system_clock::time_point at);

class Store {
 public:
  Store(db::Pool& pool, WorkNotifier& notifier, StoreOptions options = {}, EngineMetrics* metrics = nullptr);

  // Tenants
  // `owner`: kStaticOwner or a console organisation's id. ALREADY_EXISTS when the slug is taken
  // by another owner; the same owner asking again gets its tenant (with `existed` set), and with
  // `claim_legacy` an organisation takes over the tenant of its slug made before owners were
  // recorded (owner 'legacy').
  StatusOr<Tenant> CreateTenant(const std::string& slug, const std::string& name,
                                const std::string& owner = kStaticOwner, bool claim_legacy = false);
  StatusOr<Tenant> TenantBySlug(const std::string& slug);
  StatusOr<Tenant> TenantById(const std::string& id);
  // The tenant a console organisation owns; NOT_FOUND when it has none yet.
  StatusOr<Tenant> TenantByOwner(const std::string& owner);
  StatusOr<std::vector<Tenant>> ListTenants();

  // Workflows
  StatusOr<StartResult> StartWorkflow(const TenantId& tenant, const StartWorkflowRequest& req);
  // The same inside a unit of Run, so a plugin's own rows commit with the start (or neither).
  StatusOr<StartResult> StartWorkflowIn(Unit& u, const TenantId& tenant, StartWorkflowRequest req);
  StatusOr<std::optional<WorkflowClaim>> ClaimWorkflow(const TenantId& tenant, const WorkerId& worker,
                                                       const std::string& queue, const std::vector<std::string>& kinds);
  // `keep_cached`: the worker keeps the execution in memory; its next claim of it within
  // StoreOptions::sticky carries only the new events.
  // `take` (eager dispatch on): tasks the batch schedules that the worker runs itself are claimed
  // for it and handed to take->taker at the commit.
  StatusOr<SubmitResult> SubmitCommands(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution,
                                        int64_t expected_sequence, std::vector<WorkflowCommand> commands,
                                        bool keep_cached = false, const std::optional<TaskTaker>& take = {},
                                        bool fires_timers = false);
  // Hands a claimed execution back (PENDING, woken) when the worker still holds it: its poll was
  // cancelled while the claim ran, so the worker never saw it.
  Status ReleaseWorkflowClaim(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution);
  // The holder cannot apply its code to the history (a determinism violation): records `message`
  // with the execution, changes nothing else, and lets the claim lapse after problem_retry.
  // ABORTED when the worker no longer holds it at `expected_sequence`.
  Status ReportProblem(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution,
                       int64_t expected_sequence, const std::string& message);
  Status Signal(const TenantId& tenant, const ExecutionId& execution, const std::string& name,
                const std::string& payload_json);
  // Tests only (allow_time_skipping): the execution's pending timers fire and its promises time
  // out at the next sweep. Returns how many of each; FAILED_PRECONDITION when not allowed.
  StatusOr<std::pair<int, int>> SkipTime(const TenantId& tenant, const ExecutionId& execution);
  StatusOr<StartResult> SignalWithStart(const TenantId& tenant, const StartWorkflowRequest& start,
                                        const std::string& name, const std::string& payload_json);
  // `grace` 0: cancels now (or at the holder's next submit). Otherwise CANCELLATION_REQUESTED
  // goes to the workflow's code, which may compensate and end itself; the execution is cancelled
  // outright when it has not ended `grace` later (CancelOverdue).
  Status Cancel(const TenantId& tenant, const ExecutionId& execution, const std::string& reason = "",
                std::chrono::milliseconds grace = std::chrono::milliseconds(0));
  Status ResolvePromise(const TenantId& tenant, const PromiseId& promise, const std::string& value_json);
  Status RejectPromise(const TenantId& tenant, const PromiseId& promise, const std::string& error);
  StatusOr<WorkflowView> GetWorkflow(const TenantId& tenant, const ExecutionId& execution);
  StatusOr<Page<WorkflowView>> ListWorkflows(const TenantId& tenant, const ListFilter& filter);
  StatusOr<std::map<std::string, int64_t>> CountWorkflows(const TenantId& tenant);
  StatusOr<std::vector<Event>> Events(const TenantId& tenant, const ExecutionId& execution, int64_t after = 0);
  StatusOr<std::vector<std::pair<std::string, std::string>>> State(const TenantId& tenant,
                                                                   const ExecutionId& execution);

  // Tasks
  StatusOr<TaskId> SubmitTask(const TenantId& tenant, const SubmitTaskRequest& req);
  // As SubmitTask, answering `then` once committed (RunGroupedThen) instead of waiting.
  void SubmitTaskThen(const TenantId& tenant, const SubmitTaskRequest& req, std::function<void(StatusOr<TaskId>)> then);
  StatusOr<std::optional<TaskClaim>> ClaimTask(const TenantId& tenant, const WorkerId& worker, const std::string& queue,
                                               const std::vector<std::string>& kinds);
  // Up to `limit` tasks at once, oldest first, each under its own lease (the claim of a batch is
  // one transaction). `more`, when given, says whether available tasks were left behind.
  StatusOr<std::vector<TaskClaim>> ClaimTasks(const TenantId& tenant, const WorkerId& worker, const std::string& queue,
                                              const std::vector<std::string>& kinds, int limit, bool* more = nullptr);
  // Claims whose poll was cancelled before it answered go back to the queue at once (each
  // (task id, attempt) still held by `worker`).
  Status ReleaseTaskClaims(const TenantId& tenant, const WorkerId& worker,
                           const std::vector<std::pair<std::string, int>>& claims);
  // `take_workflow` (eager dispatch on): when the result makes the task's workflow runnable while
  // it is sticky to `worker`, the workflow is claimed for `worker` in the same commit, into it.
  // Several results in one transaction. Returns each result's outcome, in order: OK, or why
  // it was not recorded (NOT_FOUND, ABORTED: not held by this worker at that attempt), the
  // others recorded all the same. INVALID_ARGUMENT for the whole call (nothing recorded) past
  // max_tasks_per_poll results or for an output that is not JSON.
  struct TaskResult {
    TaskId task_id;
    int attempt = 0;
    std::string output_json;
  };
  StatusOr<std::vector<Status>> CompleteTasks(const TenantId& tenant, const WorkerId& worker,
                                              const std::vector<TaskResult>& results);
  // The worker's own run of a workflow on from an event it foresaw (a task's result, a timer it
  // fires; CompleteTaskRequest.continuation, FireTimerRequest.continuation): that event, stamped
  // `at_ms` and appended after `expected_sequence`, then the commands its code issued.
  struct Continuation {
    ExecutionId execution;
    int64_t expected_sequence = 0;
    int64_t at_ms = 0;
    std::vector<WorkflowCommand> commands;
    bool keep_cached = false;
    std::optional<TaskTaker> take;  // tasks the commands schedule that the worker runs itself
    bool fires_timers = false;      // the timers the commands start are the worker's to fire
  };
  // With `continuation`: when the history is still at its expected_sequence, the workflow waits
  // and is sticky to `worker`, and at_ms is within a second ahead or five behind the
  // database's clock, the result and the commands are one transaction and `continued` receives
  // the commands' answer; otherwise only the result is recorded (and `take_workflow` applies)
  // and `continued` stays empty.
  Status CompleteTask(const TenantId& tenant, const WorkerId& worker, const TaskId& task, int attempt,
                      const std::string& output_json, std::optional<WorkflowClaim>* take_workflow = nullptr,
                      Continuation* continuation = nullptr, std::optional<SubmitResult>* continued = nullptr);
  // As CompleteTask, answering `then` once committed (RunGroupedThen) instead of waiting; what
  // the pointers name must live until `then` has run.
  void CompleteTaskThen(const TenantId& tenant, const WorkerId& worker, const TaskId& task, int attempt,
                        const std::string& output_json, std::optional<WorkflowClaim>* take_workflow,
                        Continuation* continuation, std::optional<SubmitResult>* continued,
                        std::function<void(Status)> then);
  // A timer the worker keeping its execution fires itself, at its deadline (FireTimerRequest).
  // FAILED_PRECONDITION, changing nothing, when the timer is not pending or its deadline is more
  // than a second ahead. With `continuation`, as CompleteTask's: TIMER_FIRED and the commands in
  // one transaction when the workflow is as the worker saw it (`continued` set); otherwise
  // TIMER_FIRED alone, as the scheduler would record it.
  Status FireTimer(const TenantId& tenant, const WorkerId& worker, const ExecutionId& execution,
                   const std::string& name, Continuation* continuation, std::optional<SubmitResult>* continued);
  StatusOr<FailResult> FailTask(const TenantId& tenant, const WorkerId& worker, const TaskId& task, int attempt,
                                const std::string& error, bool non_retryable);
  // Extends the lease (and records progress); returns the new lease end in ms since the epoch.
  // ABORTED when the worker no longer holds the task (expired, cancelled, completed).
  struct TaskHeartbeat {
    int64_t lease_expires_at_ms = 0;
    bool cancel_requested = false;  // cancelled while this worker held it: stop, the result is refused
  };
  StatusOr<TaskHeartbeat> HeartbeatTask(const TenantId& tenant, const WorkerId& worker, const TaskId& task, int attempt,
                                        const std::optional<std::string>& progress_json);
  Status CancelTask(const TenantId& tenant, const TaskId& task, const std::string& reason);
  StatusOr<TaskView> GetTask(const TenantId& tenant, const TaskId& task);
  StatusOr<Page<TaskView>> ListTasks(const TenantId& tenant, const ListFilter& filter);

  // Workers
  StatusOr<WorkerId> RegisterWorker(const TenantId& tenant, const WorkerRegistration& worker);
  Status WorkerHeartbeat(const TenantId& tenant, const WorkerId& worker);
  StatusOr<std::vector<WorkerView>> ListWorkers(const TenantId& tenant);

  // Search attributes set from outside the workflow (no history event); NOT_FOUND for another
  // tenant's execution. Returns the attributes after the change.
  StatusOr<std::string> SetSearchAttributes(const TenantId& tenant, const ExecutionId& execution,
                                            const std::string& attributes_json);
  // The attributes of an execution the caller has already found in its tenant (GetWorkflow).
  StatusOr<std::string> SearchAttributesOf(const ExecutionId& execution);

  // Retention (engine/retention.h): each tenant's period, and the purge of what outlived it.
  StatusOr<int> RetentionDays(const TenantId& tenant);
  Status SetRetentionDays(const TenantId& tenant, int days);
  struct Purged {
    int64_t executions = 0, events = 0, tasks = 0, timers = 0, promises = 0, state = 0, attributes = 0;
  };
  // One batch in one transaction: up to `limit` finished executions past their tenant's
  // retention (SKIP LOCKED) with their events, tasks, timers, promises, state and attributes,
  // then up to `limit` standalone tasks. `exporter`, when set, receives each execution as one
  // JSON document before the delete commits; its error rolls the batch back.
  StatusOr<Purged> PurgeExpired(int limit, const std::function<Status(const std::vector<std::string>&)>& exporter);
  // Seconds the oldest expired execution has waited past its retention (0: none waits).
  StatusOr<double> RetentionLag();

  // Background work, safe on every replica at once; each returns how many items it handled.
  StatusOr<int> FireDueTimers(int limit = 100);
  StatusOr<int> TimeOutPromises(int limit = 100);
  StatusOr<int> ExpireWorkflowLeases(int limit = 100);
  StatusOr<int> ExpireTaskLeases(int limit = 100);
  // Cancels the executions whose graceful cancellation's deadline passed.
  StatusOr<int> CancelOverdue(int limit = 100);
  // Microseconds until the next `timers` pending timers, earliest first, and the next promise
  // timeout by the database's clock (negative when overdue; none when nothing is pending).
  struct Deadlines {
    std::vector<int64_t> timer_us;
    std::optional<int64_t> promise_us;
  };
  StatusOr<Deadlines> NextDeadlines(int timers = 1);
  // Refreshes the queue-depth gauges (work available and not claimed, by kind and queue).
  Status RefreshQueueDepth();

  db::Pool& pool() { return pool_; }
  // Eager dispatch: a task submitted while a poller of its queue waits on this replica is
  // claimed for that poller in the submitting transaction, and a workflow made runnable goes to
  // a waiting workflow poller (its cached worker's, while sticky) the same way (null: through
  // the queue). Set before serving; the handoffs outlive the store.
  void SetTaskHandoff(TaskHandoff* tasks, TaskHandoff* workflows = nullptr) {
    handoffs_ = {tasks, workflows};
    if (workflows != nullptr) workflows->lease = options_.workflow_lease;
  }

  // Runs `work` in one transaction; its wake-ups and metrics take effect after commit. Its span
  // is named after the calling operation ("store.SubmitCommands"). Inside a Joined scope on
  // this thread, `work` runs in that scope's unit instead (no transaction of its own).
  Status Run(const std::function<Status(Unit&)>& work, const char* operation = __builtin_FUNCTION());

  // Runs `work` like Run, in a transaction it may share with other callers of RunGrouped (group
  // commit, StoreOptions::group_commit_*). Units of one group run in the order of their
  // `order_key` (the row each locks first, so concurrent groups take locks in one order). The
  // result is `work`'s own: when any unit of a group fails before the commit, nothing of the
  // group is kept and every unit runs again alone. A failed commit fails every unit of it.
  Status RunGrouped(const std::function<Status(Unit&)>& work, std::string order_key,
                    const char* operation = __builtin_FUNCTION());
  // As RunGrouped, without waiting: `then` gets the result once the unit's group has committed
  // (or failed), on the thread that committed it, perhaps this one before this returns. The
  // caller's thread is free meanwhile (no wait, no wake-up); `work` and `then` own what they use.
  // While group_commit_queue_max units are queued, the caller waits for its commit instead.
  void RunGroupedThen(std::function<Status(Unit&)> work, std::string order_key, std::function<void(Status)> then,
                      const char* operation = __builtin_FUNCTION());
  struct GroupStats {
    int64_t commits = 0, units = 0, reruns = 0;
    int64_t waited = 0;  // RunGroupedThen's callers that waited: the queue held group_commit_queue_max
  };
  GroupStats group_stats() const;

  // While alive, every Store call on this thread joins `u`: a plugin runs several of the
  // store's operations and its own statements in one commit (each in a savepoint of its
  // choosing). Scopes do not nest.
  class Joined {
   public:
    explicit Joined(Unit& u);
    ~Joined();
    Joined(const Joined&) = delete;
    Joined& operator=(const Joined&) = delete;
  };

 private:
  // The tenant a statement of engine/sql.h selects with $1 = value.
  StatusOr<Tenant> TenantWhere(const char* sql, const std::string& value);
  StatusOr<SubmitResult> ApplyBatch(Execution& e, std::vector<WorkflowCommand>& commands);
  // ApplyBatch for the worker that holds `e`; `keep_cached`: it stays sticky to that worker.
  // `fires_timers` (with keep_cached): the timers the batch starts are that worker's to fire.
  StatusOr<SubmitResult> ApplyHeld(Execution& e, const WorkerId& worker, std::vector<WorkflowCommand>& commands,
                                   bool keep_cached, bool fires_timers = false);
  // The continuation's event (`type`, `payload`) and commands, when `e` is where the worker saw
  // it (see CompleteTask).
  StatusOr<std::optional<SubmitResult>> Continue(Unit& u, Execution& e, const WorkerId& worker, Continuation& c,
                                                 const std::string& type, const nlohmann::json& payload);
  // Background work: selects up to `limit` due rows (SQL with $1 = limit, rows locked with
  // SKIP LOCKED) and handles them in one transaction. When a row fails, that transaction is
  // rolled back and the rows run again with each in a savepoint of its own: the row that fails
  // is skipped and counted in flovyn_sweep_errors_total{sweep=name}. Returns how many rows were
  // handled.
  StatusOr<int> Sweep(const char* name, const char* select_sql, int limit,
                      const std::function<Status(Unit&, const db::Result&, int)>& per_row,
                      const char* operation = __builtin_FUNCTION());

  static thread_local Unit* joined_unit_;  // the unit of this thread's Joined scope
  StatusOr<std::string> PrepareSubmit(SubmitTaskRequest& req);
  std::function<Status(Unit&)> SubmitTaskUnit(const TenantId& tenant, SubmitTaskRequest req, std::string id);
  std::function<Status(Unit&)> CompleteTaskUnit(const TenantId& tenant, const WorkerId& worker, const TaskId& task,
                                                int attempt, std::string output,
                                                std::optional<WorkflowClaim>* take_workflow, Continuation* continuation,
                                                std::optional<SubmitResult>* continued);
  struct Grouped;
  void LeadGroups(Grouped* mine) REQUIRES(group_mu_);
  void CommitGroup(std::vector<Grouped*>& group);
  // The group's units in one transaction; `committing` is set once COMMIT was sent.
  Status CommitTogether(std::vector<Grouped*>& group, bool& committing);
  // Wake-ups (each key once) and the earliest deadline of committed work: NOTIFY inside the
  // transaction for other replicas, then this replica's own after the commit.
  using Due = std::optional<std::chrono::system_clock::time_point>;
  Status NotifyInTransaction(db::Tx& tx, const std::set<std::string>& wakes, const Due& due);
  void NotifyAfterCommit(const std::set<std::string>& wakes, const Due& due);
  // Notifies the committed unit's wake-ups and deadline and runs its after-commit work.
  void Committed(Unit& u);

  db::Pool& pool_;
  WorkNotifier& notifier_;
  Unit::Handoffs handoffs_;
  mutable Mutex group_mu_;
  std::deque<Grouped*> group_queue_ GUARDED_BY(group_mu_);
  int group_lanes_busy_ GUARDED_BY(group_mu_) = 0;
  GroupStats group_stats_ GUARDED_BY(group_mu_);
  StoreOptions options_;
  EngineMetrics* metrics_;
  // (kind, queue) series of the depth gauge, and those set to 0 at the last refresh; used by
  // the scheduler's thread only.
  static constexpr int kDepthQueues = 100;
  std::set<std::pair<std::string, std::string>> depth_labels_, zeroed_;
};

}  // namespace flovyn::engine
