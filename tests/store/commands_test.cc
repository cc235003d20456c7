// Each workflow command's handler, through the store's SubmitCommands and directly over a
// locked execution, against PostgreSQL in-process; and the batch rule: validated whole, applied
// whole or not at all.
#include <nlohmann/json.hpp>

#include "engine/execution.h"
#include "engine/limits.h"
#include "engine/work_hub.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;
using nlohmann::json;

json LastPayload(const StatusOr<SubmitResult>& r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || r->events.empty()) return json();
  return json::parse(r->events.back().payload_json);
}

class CommandsTest : public StoreTest {};

TEST_F(CommandsTest, ScheduleTaskAppendsTheEventAndInsertsTheTaskWithDefaultsOnTheWorkflowsQueue) {
  auto id = StartAndClaim("q");
  auto r = Submit(id, {ScheduleTask{.kind = "charge", .input_json = R"({"amount": 5})"}});
  json p = LastPayload(r);
  EXPECT_EQ(r->events.back().type, "TASK_SCHEDULED");
  EXPECT_EQ(p["queue"], "q");
  EXPECT_EQ(p["maxAttempts"], 3);
  auto task = store_->GetTask(tenant_, engine::TaskId(p["taskId"].get<std::string>()));
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->status, "PENDING");
  EXPECT_EQ(task->workflow_id.value_or(""), id);
  EXPECT_EQ(task->workflow_sequence.value_or(0), r->events.back().sequence);
  EXPECT_EQ(task->input_json, R"({"amount": 5})");  // jsonb's own printing
  EXPECT_EQ(Sql("SELECT initial_backoff_ms || '/' || max_backoff_ms || '/' || lease_ms FROM task_executions "
                "WHERE id = $1",
                {task->id}),
            "1000/60000/30000");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kTask)));
  EXPECT_EQ(r->status, "RUNNING");  // no Suspend: the worker goes on
}

TEST_F(CommandsTest, StartTimerRecordsTheFireTimeAndASecondTimerOfTheSameNameIsRefused) {
  auto id = StartAndClaim();
  auto r = Submit(id, {StartTimer{"t", 60000}});
  json p = LastPayload(r);
  EXPECT_EQ(p["name"], "t");
  EXPECT_GT(p["fireAtMs"].get<int64_t>(), 0);
  EXPECT_EQ(Sql("SELECT status FROM timers WHERE execution_id = $1 AND name = 't'", {id}), "PENDING");
  auto again = Submit(id, {StartTimer{"t", 1000}});
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("timer 't' already exists"), std::string::npos);
}

TEST_F(CommandsTest, CancelTimerCancelsAPendingTimerAndRefusesANameWithNone) {
  auto id = StartAndClaim();
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 60000}}).ok());
  auto r = Submit(id, {CancelTimer{"t"}});
  EXPECT_EQ(r->events.back().type, "TIMER_CANCELLED");
  EXPECT_EQ(Sql("SELECT status FROM timers WHERE execution_id = $1", {id}), "CANCELLED");
  EXPECT_EQ(Submit(id, {CancelTimer{"t"}}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CommandsTest, CreatePromiseGivesItAnIdAndTimeoutAndRefusesADuplicateName) {
  auto id = StartAndClaim();
  auto r = Submit(id, {CreatePromise{"approval", 5000}});
  json p = LastPayload(r);
  EXPECT_EQ(r->events.back().type, "PROMISE_CREATED");
  EXPECT_EQ(p["timeoutMs"], 5000);
  EXPECT_EQ(Sql("SELECT status FROM promises WHERE id = $1", {p["promiseId"].get<std::string>()}), "PENDING");
  EXPECT_EQ(Submit(id, {CreatePromise{"approval", 0}}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CommandsTest, ScheduleChildWorkflowStartsAPendingChildOnTheParentsQueueThatReportsBack) {
  auto parent = StartAndClaim("q");
  auto r = Submit(parent, {ScheduleChildWorkflow{"sub", "order", "", "{}"}, Suspend{}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json p = json::parse(r->events[0].payload_json);
  engine::ExecutionId child(p["childId"].get<std::string>());
  auto view = store_->GetWorkflow(tenant_, child);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->status, "PENDING");
  EXPECT_EQ(view->queue, "q");
  EXPECT_EQ(view->parent_id.value_or(""), parent);
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow)));
  // The child completes: the parent, waiting, hears of it and is pending again.
  ASSERT_TRUE(store_->ClaimWorkflow(tenant_, worker_, "q", {}).ok());
  ASSERT_TRUE(Submit(child, {CompleteWorkflow{R"({"ok":true})"}}).ok());
  EXPECT_EQ(EventTypes(parent).back(), "CHILD_WORKFLOW_COMPLETED");
  EXPECT_EQ(store_->GetWorkflow(tenant_, parent)->status, "PENDING");
}

TEST_F(CommandsTest, SetStateAndClearStateWriteTheStateTableAndTheHistory) {
  auto id = StartAndClaim();
  ASSERT_TRUE(Submit(id, {SetState{"k", R"({"v": [1, 2]})"}, SetState{"gone", "1"}}).ok());
  auto r = Submit(id, {ClearState{"gone"}});
  EXPECT_EQ(r->events.back().type, "STATE_CLEARED");
  auto state = store_->State(tenant_, id);
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->size(), 1u);
  EXPECT_EQ((*state)[0].first, "k");
  EXPECT_EQ((*state)[0].second, R"({"v": [1, 2]})");  // jsonb's own printing
  EXPECT_EQ(EventTypes(id), (std::vector<std::string>{"WORKFLOW_STARTED", "STATE_SET", "STATE_SET", "STATE_CLEARED"}));
}

TEST_F(CommandsTest, RecordOperationKeepsTheResultInTheHistory) {
  auto id = StartAndClaim();
  json p = LastPayload(Submit(id, {RecordOperation{"uuid", R"("abc")"}}));
  EXPECT_EQ(p["name"], "uuid");
  EXPECT_EQ(p["result"], "abc");
}

TEST_F(CommandsTest, CompleteWorkflowEndsTheExecutionWithItsOutputAndCancelsWhatItLeftOpen) {
  auto id = StartAndClaim();
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 60000}, ScheduleTask{.kind = "charge"}}).ok());
  auto r = Submit(id, {CompleteWorkflow{R"({"total": 3})"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "COMPLETED");
  auto view = store_->GetWorkflow(tenant_, id);
  EXPECT_EQ(view->output_json, R"({"total": 3})");
  EXPECT_TRUE(view->completed_at.has_value());
  EXPECT_EQ(Sql("SELECT status FROM timers WHERE execution_id = $1", {id}), "CANCELLED");
  EXPECT_EQ(Sql("SELECT status FROM task_executions WHERE workflow_id = $1", {id}), "CANCELLED");
  EXPECT_EQ(Submit(id, {Suspend{}}).status().code(), StatusCode::kAborted);  // no longer held
}

// An execution's end (status, output or error, lease) is one update of its row: one row version
// and one set of index entries, not a second update for the output.
TEST_F(CommandsTest, AnEndIsWrittenToTheExecutionsRowInOneUpdateWithItsOutputOrError) {
  NoteExecutionUpdates();
  auto done = StartAndClaim();
  int before = ExecutionUpdates(done.str());
  ASSERT_TRUE(Submit(done, {CompleteWorkflow{R"({"total": 3})"}}).ok());
  EXPECT_EQ(ExecutionUpdates(done.str()) - before, 1);
  EXPECT_EQ(store_->GetWorkflow(tenant_, done)->output_json, R"({"total": 3})");
  auto failed = StartAndClaim();
  before = ExecutionUpdates(failed.str());
  ASSERT_TRUE(Submit(failed, {FailWorkflow{"card declined"}}).ok());
  EXPECT_EQ(ExecutionUpdates(failed.str()) - before, 1);
  auto view = store_->GetWorkflow(tenant_, failed);
  EXPECT_EQ(view->status, "FAILED");
  EXPECT_EQ(view->error.value_or(""), "card declined");
  EXPECT_EQ(view->output_json, "null");
}

TEST_F(CommandsTest, FailWorkflowEndsTheExecutionWithItsError) {
  auto id = StartAndClaim();
  auto r = Submit(id, {FailWorkflow{"card declined"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "FAILED");
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->error.value_or(""), "card declined");
}

TEST_F(CommandsTest, SuspendWaitsUnlessNewsArrivedWhileTheWorkerHeldTheExecution) {
  auto waiting = StartAndClaim();
  EXPECT_EQ(Submit(waiting, {Suspend{}})->status, "WAITING");
  auto woken = StartAndClaim();
  ASSERT_TRUE(store_->Signal(tenant_, woken, "go", "1").ok());  // buffered: the worker holds it
  auto r = Submit(woken, {Suspend{}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "PENDING");
  EXPECT_EQ(r->events.back().type, "SIGNAL_RECEIVED");  // after the worker's own commands
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow)));
}

TEST_F(CommandsTest, ABatchWithOneInvalidCommandIsRefusedWholeAndChangesNothing) {
  auto id = StartAndClaim();
  int64_t seq = store_->GetWorkflow(tenant_, id)->last_sequence;
  auto r = Submit(id, {SetState{"k", "1"}, ScheduleTask{.kind = "charge"}, StartTimer{"t", 60000},
                       StartTimer{"late", limits::kMaxDurationMs.value + 1}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("StartTimer.duration_ms"), std::string::npos) << r.status().message();
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->last_sequence, seq);
  EXPECT_EQ(Count("workflow_state", id), 0);
  EXPECT_EQ(Count("task_executions", id), 0);
  EXPECT_EQ(Count("timers", id), 0);
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kTask)));
}

TEST_F(CommandsTest, ABatchThatConflictsWithTheExecutionMidwayIsRolledBackWhole) {
  auto id = StartAndClaim();
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 60000}}).ok());
  int64_t seq = store_->GetWorkflow(tenant_, id)->last_sequence;
  auto r = Submit(id, {ScheduleTask{.kind = "charge"}, SetState{"k", "1"}, StartTimer{"t", 1000}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->last_sequence, seq);
  EXPECT_EQ(Count("task_executions", id), 0);
  EXPECT_EQ(Count("workflow_state", id), 0);
}

TEST_F(CommandsTest, NothingMayFollowTheCommandThatEndsTheWorkflow) {
  auto id = StartAndClaim();
  auto r = Submit(id, {CompleteWorkflow{"1"}, SetState{"k", "1"}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "RUNNING");
}

TEST_F(CommandsTest, OnlyTheHoldingWorkerAtTheCurrentSequenceMaySubmit) {
  auto id = StartAndClaim();
  auto view = store_->GetWorkflow(tenant_, id);
  auto stale = store_->SubmitCommands(tenant_, worker_, id, view->last_sequence - 1, {Suspend{}});
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted);
  EXPECT_NE(stale.status().message().find("stale sequence"), std::string::npos);
  auto other = store_->SubmitCommands(tenant_, engine::WorkerId("someone-else"), id, view->last_sequence, {Suspend{}});
  EXPECT_EQ(other.status().code(), StatusCode::kAborted);
}

TEST_F(CommandsTest, ACancellationWhileHeldEndsTheExecutionAtTheWorkersNextSubmit) {
  auto id = StartAndClaim();
  ASSERT_TRUE(store_->Cancel(tenant_, id, "no longer wanted").ok());
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "RUNNING");
  auto r = Submit(id, {SetState{"k", "1"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "CANCELLED");
  auto types = EventTypes(id);
  EXPECT_EQ(std::vector<std::string>(types.end() - 3, types.end()),
            (std::vector<std::string>{"STATE_SET", "CANCELLATION_REQUESTED", "WORKFLOW_CANCELLED"}));
}

// The handlers themselves, over an execution locked in a unit of work.
TEST_F(CommandsTest, HandlersWorkOverTheLockedExecutionAndRecordTheBatchOutcome) {
  auto id = StartAndClaim();
  BatchOutcome out;
  Status s = store_->Run([&](Unit& u) -> Status {
    auto e = Execution::Lock(u, tenant_, id);
    if (!e.ok()) return e.status();
    int64_t before = e->last_seq;
    if (Status h = Handle(*e, out, StartTimer{"t", 1000}); !h.ok()) return h;
    if (Status h = Handle(*e, out, Suspend{}); !h.ok()) return h;
    if (Status h = Handle(*e, out, FailWorkflow{"x"}); !h.ok()) return h;
    EXPECT_EQ(e->last_seq, before + 2);
    EXPECT_EQ(e->appended.size(), 2u);
    return Status(StatusCode::kAborted, "roll back");
  });
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_TRUE(out.suspend);
  ASSERT_TRUE(out.terminal.has_value());
  EXPECT_EQ(out.terminal->first, model::WorkflowStatus::kFailed);
  EXPECT_EQ(Count("timers", id), 0);  // rolled back with the unit
}

TEST(ValidateBatchTest, EachCommandsFieldsAreCheckedAndDefaultsApplied) {
  std::vector<WorkflowCommand> batch = {ScheduleTask{.kind = "k"}, ScheduleChildWorkflow{"c", "k", "", ""}};
  ASSERT_TRUE(ValidateBatch(batch, "wq").ok());
  const auto& task = std::get<ScheduleTask>(batch[0]);
  EXPECT_EQ(task.queue, "wq");
  EXPECT_EQ(task.input_json, "null");
  EXPECT_EQ(task.max_attempts, 3);
  EXPECT_EQ(task.lease_ms, 30000);
  EXPECT_EQ(std::get<ScheduleChildWorkflow>(batch[1]).queue, "wq");

  struct Case {
    WorkflowCommand command;
    const char* names;
  };
  std::vector<Case> cases = {
      {ScheduleTask{.kind = ""}, "ScheduleTask.kind"},
      {ScheduleTask{.kind = "k", .max_attempts = 1001}, "ScheduleTask.max_attempts"},
      {ScheduleTask{.kind = "k", .lease_ms = -1}, "ScheduleTask.lease_ms"},
      {ScheduleTask{.kind = "k", .input_json = "{"}, "ScheduleTask.input_json"},
      {StartTimer{"", 1}, "StartTimer.name"},
      {CancelTimer{std::string(201, 'x')}, "CancelTimer.name"},
      {CreatePromise{"p", -5}, "CreatePromise.timeout_ms"},
      {ScheduleChildWorkflow{"", "k", "", ""}, "ScheduleChildWorkflow.name"},
      {SetState{"k", "nope"}, "SetState.value_json"},
      {ClearState{""}, "ClearState.key"},
      {RecordOperation{"op", "[1,"}, "RecordOperation.result_json"},
      {CompleteWorkflow{"{]"}, "CompleteWorkflow.output_json"},
      {FailWorkflow{std::string(10001, 'e')}, "FailWorkflow.error"},
  };
  for (auto& c : cases) {
    std::vector<WorkflowCommand> one = {c.command};
    Status s = ValidateBatch(one, "wq");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.names;
    EXPECT_NE(s.message().find(c.names), std::string::npos) << s.message();
  }
  std::vector<WorkflowCommand> too_many(1001, Suspend{});
  EXPECT_NE(ValidateBatch(too_many, "wq").message().find("commands_per_submit"), std::string::npos);
}

}  // namespace
}  // namespace flovyn::testing
