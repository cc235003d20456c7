// Eager dispatch: a task submitted while a poller of its queue and kind is parked is claimed
// for that poller in the submitting transaction and handed to it after the commit; a poller the
// hub has woken already is never handed anything; a rolled-back submit gives the poller back.
#include "engine/task_handoff.h"

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/work_hub.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/core/time_source.h"
#include "flovyn/model/status.h"
#include "harness.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;
using namespace std::chrono_literals;

struct FakePoller : TaskHandoff::Poller {
  std::vector<TaskClaim> delivered;
  std::vector<WorkflowClaim> workflows;
  int resumed = 0;
  void Deliver(const TaskClaim& c) override { delivered.push_back(c); }
  void Deliver(const WorkflowClaim& c) override { workflows.push_back(c); }
  void Resume() override { ++resumed; }
};

class TaskHandoffTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    store_->SetTaskHandoff(&handoff_, &workflows_);
  }
  // Parks `p` as a workflow poller of `worker` on queue "q".
  void ParkWorkflowPoller(FakePoller& p, const std::string& worker) {
    std::string key = WorkKey(tenant_, "q", WorkKind::kWorkflow);
    auto parked = hub_.Park(key, hub_.Observe(key), hub_.Now() + 60s, [this](WorkHub::Wake) { ++woken_; });
    ASSERT_NE(parked.ticket, 0u);
    workflows_.Add(key, parked.ticket, worker, {}, &p);
  }
  // Parks `p` on `queue` as the fixture's worker, for `kinds`; returns its ticket.
  uint64_t Park(FakePoller& p, std::vector<std::string> kinds = {}, const std::string& queue = "h") {
    std::string key = WorkKey(tenant_, queue, WorkKind::kTask);
    auto parked = hub_.Park(key, hub_.Observe(key), hub_.Now() + 60s, [this](WorkHub::Wake) { ++woken_; });
    EXPECT_NE(parked.ticket, 0u);
    handoff_.Add(key, parked.ticket, worker_.str(), std::move(kinds), &p);
    return parked.ticket;
  }
  // An execution of queue "q" whose batch scheduled task "charge" (the worker keeping the
  // execution cached when `keep_cached`), and that task claimed by the worker.
  struct Scheduled {
    ExecutionId id;
    int64_t cached_at = 0;
    TaskClaim task;
  };
  void ScheduleAndClaim(Scheduled* out, bool keep_cached = true) {
    out->id = StartAndClaim("q");
    auto r =
        store_->SubmitCommands(tenant_, worker_, out->id, 1, {ScheduleTask{.kind = "charge"}, Suspend{}}, keep_cached);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    out->cached_at = r->last_sequence;
    auto task = store_->ClaimTasks(tenant_, worker_, "q", {"charge"}, 1);
    ASSERT_TRUE(task.ok() && task->size() == 1);
    out->task = (*task)[0];
  }
  std::string StatusOf(const std::string& task) {
    return Sql("SELECT status FROM task_executions WHERE id = $1", {task});
  }

  ManualTime time_;
  WorkHub hub_{1s, &time_};
  TaskHandoff handoff_{hub_};
  TaskHandoff workflows_{hub_};
  std::atomic<int> woken_{0};
};

TEST_F(TaskHandoffTest, ATaskSubmittedWhileAPollerWaitsIsClaimedForItAndHandedOverAfterCommit) {
  FakePoller p;
  Park(p);
  auto id = store_->SubmitTask(tenant_, {.kind = "charge", .queue = "h", .input_json = R"({"n":1})"});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_EQ(p.delivered.size(), 1u);
  const TaskClaim& c = p.delivered[0];
  EXPECT_EQ(c.task.id, id->str());
  EXPECT_EQ(c.task.status, "RUNNING");
  EXPECT_EQ(c.task.attempt, 1);
  // The claim is made without reading the row back: the input as submitted (the same JSON as
  // the row's), the lease's end by this server's clock (the row's by the database's).
  EXPECT_EQ(nlohmann::json::parse(c.task.input_json),
            nlohmann::json::parse(Sql("SELECT input::text FROM task_executions WHERE id = $1", {id->str()})));
  auto row_lease_ms = std::stoll(Sql(
      "SELECT (extract(epoch from lease_expires_at) * 1000)::bigint FROM task_executions WHERE id = $1", {id->str()}));
  EXPECT_NEAR(static_cast<double>(c.lease_expires_at_ms), static_cast<double>(row_lease_ms), 2000.0);
  EXPECT_EQ(Sql("SELECT lease_owner FROM task_executions WHERE id = $1", {id->str()}), worker_.str());
  EXPECT_EQ(woken_, 0) << "the hub never woke the poller: it was handed the task instead";
  EXPECT_EQ(handoff_.offered(), 0u);
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "h", WorkKind::kTask))) << "no queue wake-up for a task handed over";
  // Nobody else can claim it, and its poller completes it like any claim.
  auto others = store_->ClaimTasks(tenant_, worker_, "h", {}, 10);
  ASSERT_TRUE(others.ok());
  EXPECT_TRUE(others->empty());
  EXPECT_TRUE(store_->CompleteTask(tenant_, worker_, *id, 1, "true").ok());
  EXPECT_EQ(StatusOf(id->str()), "COMPLETED");
  // With no poller left, the next task goes to the queue.
  auto next = store_->SubmitTask(tenant_, {.kind = "charge", .queue = "h"});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(StatusOf(next->str()), "PENDING");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "h", WorkKind::kTask)));
}

TEST_F(TaskHandoffTest, ATaskAWorkflowSchedulesGoesToAWaitingPollerAndItsHistorySaysItStarted) {
  FakePoller p;
  Park(p, {"charge"}, "q");
  auto id = StartAndClaim("q");
  auto r = Submit(id, {ScheduleTask{.kind = "charge", .input_json = "5"}, Suspend{}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(p.delivered.size(), 1u);
  const TaskClaim& c = p.delivered[0];
  EXPECT_EQ(c.task.workflow_id.value_or(""), id.str());
  EXPECT_EQ(c.task.attempt, 1);
  EXPECT_EQ(c.task.input_json, "5");
  // The submit's own answer carries the start, so a worker that keeps the execution cached is
  // at the history's end.
  std::vector<std::string> answered;
  for (const auto& e : r->events) answered.push_back(e.type);
  EXPECT_EQ(answered, (std::vector<std::string>{"TASK_SCHEDULED", "TASK_STARTED"}));
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, TaskId(c.task.id), 1, "10").ok());
  auto types = EventTypes(id);
  ASSERT_GE(types.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(types.end() - 3, types.end()),
            (std::vector<std::string>{"TASK_SCHEDULED", "TASK_STARTED", "TASK_COMPLETED"}));
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kTask))) << "no queue wake-up for a task handed over";
}

TEST_F(TaskHandoffTest, AWorkflowMadeRunnableByATaskResultIsClaimedForAWaitingPollerInTheSameCommit) {
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {ScheduleTask{.kind = "charge"}, Suspend{}}).ok());
  auto task = store_->ClaimTasks(tenant_, worker_, "q", {"charge"}, 1);
  ASSERT_TRUE(task.ok() && task->size() == 1);
  FakePoller p;
  ParkWorkflowPoller(p, worker_.str());
  notifier_.Clear();
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, TaskId((*task)[0].task.id), 1, "7").ok());
  ASSERT_EQ(p.workflows.size(), 1u);
  const WorkflowClaim& c = p.workflows[0];
  EXPECT_EQ(c.execution.id, id.str());
  EXPECT_EQ(c.execution.status, "RUNNING");
  EXPECT_EQ(c.history_after, 0) << "not kept cached: the whole history";
  ASSERT_FALSE(c.events.empty());
  EXPECT_EQ(c.events.front().type, "WORKFLOW_STARTED");
  EXPECT_EQ(c.events.back().type, "TASK_COMPLETED");
  EXPECT_EQ(Sql("SELECT status || ' ' || lease_owner FROM workflow_executions WHERE id = $1", {id.str()}),
            "RUNNING " + worker_.str());
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "handed over, not queued";
  EXPECT_EQ(woken_, 0);
  // The poller's worker holds it like any claim: its next batch is accepted.
  auto done = store_->SubmitCommands(tenant_, worker_, id, c.events.back().sequence, {CompleteWorkflow{"7"}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "COMPLETED");
}

TEST_F(TaskHandoffTest, WhileStickyOnlyTheCachingWorkersPollerGetsTheWorkflowWithTheNewEventsOnly) {
  Scheduled sch;
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim(&sch));
  int64_t cached_at = sch.cached_at;
  auto other = store_->RegisterWorker(tenant_, {"worker-2", "1.0", {"q"}, {"order"}, {}});
  ASSERT_TRUE(other.ok());
  FakePoller stranger, owner;
  ParkWorkflowPoller(stranger, other->str());
  ParkWorkflowPoller(owner, worker_.str());
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, TaskId(sch.task.task.id), 1, "7").ok());
  EXPECT_TRUE(stranger.workflows.empty()) << "the execution is the caching worker's while sticky";
  ASSERT_EQ(owner.workflows.size(), 1u);
  EXPECT_EQ(owner.workflows[0].history_after, cached_at);
  std::vector<std::string> types;
  for (const auto& e : owner.workflows[0].events) types.push_back(e.type);
  EXPECT_EQ(types, (std::vector<std::string>{"TASK_STARTED", "TASK_COMPLETED"})) << "only what it has not seen";
}

TEST_F(TaskHandoffTest, OnlyAPollerOfTheTasksKindIsOfferedAndAWokenPollerNever) {
  FakePoller other_kind, woken;
  Park(other_kind, {"refund"});
  uint64_t t = Park(woken, {"charge"});
  ASSERT_TRUE(hub_.Cancel(t));  // the hub took it first (its caller left, say)
  auto id = store_->SubmitTask(tenant_, {.kind = "charge", .queue = "h"});
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(other_kind.delivered.empty());
  EXPECT_TRUE(woken.delivered.empty());
  EXPECT_EQ(StatusOf(id->str()), "PENDING");
  auto refund = store_->SubmitTask(tenant_, {.kind = "refund", .queue = "h"});
  ASSERT_TRUE(refund.ok());
  ASSERT_EQ(other_kind.delivered.size(), 1u);
  EXPECT_EQ(other_kind.delivered[0].task.id, refund->str());
}

TEST_F(TaskHandoffTest, ASubmitThatRollsBackGivesThePollerBackAndHandsItNothing) {
  // Group the submit with a unit that fails: the group rolls back, then each runs alone.
  store_ = std::make_unique<Store>(
      *pool_, notifier_, StoreOptions{.group_commit_lanes = 1, .group_commit_window = std::chrono::milliseconds(200)});
  store_->SetTaskHandoff(&handoff_);
  FakePoller p;
  Park(p);
  StatusOr<TaskId> id = Status::Ok();
  std::thread submit([&] { id = store_->SubmitTask(tenant_, {.kind = "charge", .queue = "h"}); });
  std::thread fail([&] {
    // Ordered after the submit (keys sort "~" after any id): the submit claims, then this fails.
    (void)store_->RunGrouped([](Unit&) { return FailedPrecondition("refused"); }, "~");
  });
  submit.join();
  fail.join();
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_GE(store_->group_stats().reruns, 2) << "both ran in one group that rolled back";
  EXPECT_EQ(p.resumed, 1) << "the rolled-back claim gave its poller back";
  EXPECT_TRUE(p.delivered.empty());
  EXPECT_EQ(StatusOf(id->str()), "PENDING") << "run again alone, with no poller parked, it went to the queue";
}

// CompleteTaskRequest.take_workflow: the worker that completes a task of a workflow it keeps
// cached gets that workflow's next activation in its own call, claimed in the same commit, ahead
// of any parked poller.
TEST_F(TaskHandoffTest, ATaskResultHandsItsWorkflowBackToTheStickyWorkerThatCompletedItInTheSameCommit) {
  Scheduled sch;
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim(&sch));
  const ExecutionId& id = sch.id;
  int64_t cached_at = sch.cached_at;
  FakePoller parked;
  ParkWorkflowPoller(parked, worker_.str());
  std::optional<WorkflowClaim> next;
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, TaskId(sch.task.task.id), 1, "7", &next).ok());
  ASSERT_TRUE(next.has_value()) << "the completing worker keeps the workflow: it gets it back";
  EXPECT_TRUE(parked.workflows.empty()) << "not also handed to a parked poller";
  EXPECT_EQ(next->execution.id, id.str());
  EXPECT_EQ(next->history_after, cached_at);
  std::vector<std::string> types;
  for (const auto& e : next->events) types.push_back(e.type);
  EXPECT_EQ(types, (std::vector<std::string>{"TASK_STARTED", "TASK_COMPLETED"})) << "only what it has not seen";
  EXPECT_EQ(Sql("SELECT status || ' ' || lease_owner FROM workflow_executions WHERE id = $1", {id.str()}),
            "RUNNING " + worker_.str());
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "no wake-up for a workflow taken back";
  // Its worker submits on from there, as after any claim.
  auto done = store_->SubmitCommands(tenant_, worker_, id, next->events.back().sequence, {CompleteWorkflow{"7"}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->status, "COMPLETED");
}

TEST_F(TaskHandoffTest, AWorkflowNotKeptByTheCompletingWorkerIsNotTakenBackAndGoesThroughTheQueue) {
  Scheduled sch;
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim(&sch, false));
  const ExecutionId& id = sch.id;
  std::optional<WorkflowClaim> next;
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, TaskId(sch.task.task.id), 1, "7", &next).ok());
  EXPECT_FALSE(next.has_value()) << "submitted without keep_cached: the worker keeps nothing to run on from";
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id.str()}), "PENDING");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow)));
}

// SubmitWorkflowCommandsRequest.take_tasks: the tasks a batch schedules that its worker runs
// itself are claimed for that worker in the batch's commit, up to its room, and only of its kinds
// and queue; the rest go through their queues.
TEST_F(TaskHandoffTest, ACommandBatchClaimsForItsWorkerTheTasksItTakesUpToItsRoomAndOnlyOfItsKinds) {
  auto id = StartAndClaim("q");
  FakePoller taker;
  TaskTaker take{worker_.str(), "q", {"charge"}, 1, &taker};
  auto r = store_->SubmitCommands(
      tenant_, worker_, id, 1,
      {ScheduleTask{.kind = "ship"}, ScheduleTask{.kind = "charge"}, ScheduleTask{.kind = "charge"},
       ScheduleTask{.kind = "charge", .queue = "other"}, Suspend{}},
      true, take);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(taker.delivered.size(), 1u) << "room for one";
  const TaskClaim& c = taker.delivered[0];
  EXPECT_EQ(c.task.kind, "charge");
  EXPECT_EQ(c.task.status, "RUNNING");
  EXPECT_EQ(Sql("SELECT lease_owner FROM task_executions WHERE id = $1", {c.task.id}), worker_.str());
  EXPECT_EQ(Sql("SELECT string_agg(kind || '/' || queue || '=' || status, ',' ORDER BY workflow_seq) FROM "
                "task_executions WHERE workflow_id = $1",
                {id.str()}),
            "ship/q=PENDING,charge/q=RUNNING,charge/q=PENDING,charge/other=PENDING");
  int started = 0;
  for (const auto& e : r->events) started += e.type == "TASK_STARTED" ? 1 : 0;
  EXPECT_EQ(started, 1) << "the batch's answer records the taken task as started";
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kTask))) << "the others are queued";
}

TEST_F(TaskHandoffTest, ARefusedCommandBatchTakesNoTaskAndLeavesNone) {
  auto id = StartAndClaim("q");
  FakePoller taker;
  TaskTaker take{worker_.str(), "q", {"charge"}, 5, &taker};
  auto r = store_->SubmitCommands(tenant_, worker_, id, 99, {ScheduleTask{.kind = "charge"}, Suspend{}}, true, take);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted) << "a stale sequence";
  EXPECT_TRUE(taker.delivered.empty());
  EXPECT_EQ(Sql("SELECT count(*) FROM task_executions WHERE workflow_id = $1", {id.str()}), "0");
}

// A start while a workflow poller of its queue waits: claimed for that poller in the start's
// commit, with its whole history (WORKFLOW_STARTED); an idempotent start that finds the first
// hands nothing over again.
TEST_F(TaskHandoffTest, AWorkflowStartedWhileAPollerWaitsIsClaimedForItInTheStartsCommit) {
  FakePoller p, second;
  ParkWorkflowPoller(p, worker_.str());
  auto started = store_->StartWorkflow(tenant_, {"order", "q", R"({"n":1})", "once", ""});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_EQ(p.workflows.size(), 1u);
  const WorkflowClaim& c = p.workflows[0];
  EXPECT_EQ(c.execution.id, started->execution_id);
  EXPECT_EQ(c.history_after, 0);
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].type, "WORKFLOW_STARTED");
  EXPECT_EQ(Sql("SELECT status || ' ' || lease_owner FROM workflow_executions WHERE id = $1", {started->execution_id}),
            "RUNNING " + worker_.str());
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "no wake-up for a start handed over";
  ParkWorkflowPoller(second, worker_.str());
  auto again = store_->StartWorkflow(tenant_, {"order", "q", R"({"n":1})", "once", ""});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_TRUE(second.workflows.empty()) << "the same start twice hands nothing over";
}

// A timer falling due while the poller of the worker that keeps its execution cached waits: the
// run locks the timer with its execution in one statement, and the claim, what it replays and
// the COMMIT go out together, so the poller has it after two round trips, with the events it
// has not seen.
TEST_F(TaskHandoffTest, ADueTimerGoesToTheWaitingPollerOfItsCachedWorkerInTwoRoundTrips) {
  TcpProxy proxy(Postgres::Shared().port());
  auto counted = PoolThrough(proxy.port());
  Store store(*counted, notifier_, StoreOptions{});
  store.SetTaskHandoff(&handoff_, &workflows_);
  FakePoller p;
  auto sleep = [&](int64_t* cached_at) {
    auto id = StartAndClaim("q");
    auto r = store_->SubmitCommands(tenant_, worker_, id, 1, {StartTimer{"nap", 0}, Suspend{}}, true);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    *cached_at = r.ok() ? r->last_sequence : 0;
    ParkWorkflowPoller(p, worker_.str());
    return id;
  };
  int64_t cached_at = 0;
  sleep(&cached_at);
  ASSERT_EQ(*store.FireDueTimers(), 1);  // prepares the statements on the counted connection
  ASSERT_EQ(p.workflows.size(), 1u);
  auto id = sleep(&cached_at);
  int before = proxy.client_flights();
  ASSERT_EQ(*store.FireDueTimers(), 1);
  EXPECT_EQ(proxy.client_flights() - before, 2) << "BEGIN with the due timers, then the rest with the COMMIT";
  ASSERT_EQ(p.workflows.size(), 2u);
  const WorkflowClaim& c = p.workflows[1];
  EXPECT_EQ(c.execution.id, id.str());
  EXPECT_EQ(c.execution.status, "RUNNING");
  EXPECT_EQ(c.history_after, cached_at);
  ASSERT_EQ(c.events.size(), 1u) << "only what the worker has not seen";
  EXPECT_EQ(c.events[0].type, "TIMER_FIRED");
  EXPECT_EQ(c.events[0].sequence, cached_at + 1);
  EXPECT_EQ(
      Sql("SELECT status || ' ' || lease_owner || ' ' || last_seq FROM workflow_executions WHERE id = $1", {id.str()}),
      "RUNNING " + worker_.str() + " " + std::to_string(cached_at + 1));
  EXPECT_EQ(Sql("SELECT status FROM timers WHERE execution_id = $1", {id.str()}), "FIRED");
  EXPECT_EQ(woken_, 0) << "handed over, not woken";
}

// A start while a workflow poller waits inserts its execution already claimed for that poller:
// one row version, no update of the row after the insert; the worker then goes on as with any
// claim.
TEST_F(TaskHandoffTest, AWorkflowStartedForAWaitingPollerIsInsertedClaimedWithNoUpdateOfItsRow) {
  NoteExecutionUpdates();
  FakePoller p;
  ParkWorkflowPoller(p, worker_.str());
  auto started = store_->StartWorkflow(tenant_, {"order", "q", R"({"n":1})", std::nullopt, ""});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_EQ(p.workflows.size(), 1u);
  EXPECT_EQ(p.workflows[0].execution.status, "RUNNING");
  EXPECT_EQ(ExecutionUpdates(), 0);
  EXPECT_EQ(Sql("SELECT status || ' ' || lease_owner || ' ' || (lease_expires_at > now()) FROM workflow_executions "
                "WHERE id = $1",
                {started->execution_id}),
            "RUNNING " + worker_.str() + " true");
  auto done = store_->SubmitCommands(tenant_, worker_, ExecutionId(started->execution_id), 1, {CompleteWorkflow{"2"}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->status, "COMPLETED");
  EXPECT_EQ(p.resumed, 0);
}

}  // namespace
}  // namespace flovyn::testing
