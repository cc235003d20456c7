// CompleteTaskRequest.continuation: a task's result and the commands its worker's code issued on
// from it, in one transaction, only while the workflow is exactly where that worker saw it;
// otherwise the result alone, as without one.
#include <gtest/gtest.h>

#include "flovyn/core/status_macros.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;

class ContinuationTest : public StoreTest {
 protected:
  // An execution of `queue` whose batch scheduled task "charge", kept cached by the worker, and
  // that task claimed by it; `at` is the history's last sequence then.
  void ScheduleAndClaim(const std::string& queue = "q") {
    id_ = StartAndClaim(queue);
    auto r = store_->SubmitCommands(tenant_, worker_, id_, 1, {ScheduleTask{.kind = "charge"}, Suspend{}}, true);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto task = store_->ClaimTasks(tenant_, worker_, queue, {"charge"}, 1);
    ASSERT_TRUE(task.ok() && task->size() == 1);
    task_ = TaskId((*task)[0].task.id);
    at_ = std::stoll(Sql("SELECT last_seq FROM workflow_executions WHERE id = $1", {id_.str()}));
  }
  int64_t DbNowMs() { return std::stoll(Sql("SELECT (extract(epoch from now()) * 1000)::bigint")); }
  Store::Continuation Next(std::vector<WorkflowCommand> commands, int64_t completed_at_ms) {
    return {.execution = id_,
            .expected_sequence = at_,
            .at_ms = completed_at_ms,
            .commands = std::move(commands),
            .keep_cached = true};
  }
  std::string History() {
    return Sql("SELECT string_agg(seq || ':' || type, ' ' ORDER BY seq) FROM workflow_events WHERE execution_id = $1",
               {id_.str()});
  }
  std::string Row() {
    return Sql(
        "SELECT status || ' ' || coalesce(lease_owner, '-') || ' ' || coalesce(sticky_worker, '-') || ' ' || "
        "coalesce(sticky_seq::text, '-') || ' ' || last_seq FROM workflow_executions WHERE id = $1",
        {id_.str()});
  }

  ExecutionId id_;
  TaskId task_;
  int64_t at_ = 0;
};

TEST_F(ContinuationTest, TheResultAndTheCommandsTheWorkerRanOnFromItAreOneTransactionStampedAsTheCodeSawIt) {
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim());
  int64_t seen = DbNowMs() - 3;
  auto next = Next({ScheduleTask{.kind = "ship"}, Suspend{}}, seen);
  std::optional<SubmitResult> continued;
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, task_, 1, "7", nullptr, &next, &continued).ok());
  ASSERT_TRUE(continued.has_value()) << "applied";
  int64_t s = at_;
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TASK_SCHEDULED 3:TASK_STARTED " + std::to_string(s + 1) +
                           ":TASK_COMPLETED " + std::to_string(s + 2) + ":TASK_SCHEDULED");
  EXPECT_EQ(continued->last_sequence, s + 2);
  EXPECT_EQ(continued->status, "WAITING");
  ASSERT_EQ(continued->events.size(), 2u);
  EXPECT_EQ(continued->events[0].type, "TASK_COMPLETED");
  EXPECT_EQ(continued->events[0].created_at_ms, seen) << "stamped with the time the worker's code saw";
  EXPECT_EQ(Sql("SELECT (extract(epoch from created_at) * 1000)::bigint FROM workflow_events WHERE execution_id = $1 "
                "AND type = 'TASK_COMPLETED'",
                {id_.str()}),
            std::to_string(seen));
  EXPECT_EQ(Sql("SELECT string_agg(kind || '=' || status, ',' ORDER BY workflow_seq) FROM task_executions WHERE "
                "workflow_id = $1",
                {id_.str()}),
            "charge=COMPLETED,ship=PENDING");
  EXPECT_EQ(Row(), "WAITING - " + worker_.str() + " " + std::to_string(s + 2) + " " + std::to_string(s + 2))
      << "waits for ship, still sticky to the worker that keeps it at its new sequence";
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "nobody else needs to run it";

  // Commands that keep the worker on the workflow keep it held (RUNNING under its lease).
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim());
  next = Next({SetState{"k", "1"}}, DbNowMs());
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, task_, 1, "7", nullptr, &next, &continued).ok());
  ASSERT_TRUE(continued.has_value());
  EXPECT_EQ(Row(), "RUNNING " + worker_.str() + " " + worker_.str() + " " + std::to_string(at_ + 2) + " " +
                       std::to_string(at_ + 2));
  auto done = store_->SubmitCommands(tenant_, worker_, id_, at_ + 2, {CompleteWorkflow{"1"}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->status, "COMPLETED");
}

TEST_F(ContinuationTest, AContinuationThatEndsTheWorkflowCompletesIt) {
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim());
  auto next = Next({CompleteWorkflow{"7"}}, DbNowMs());
  std::optional<SubmitResult> continued;
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, task_, 1, "7", nullptr, &next, &continued).ok());
  ASSERT_TRUE(continued.has_value());
  EXPECT_EQ(continued->status, "COMPLETED");
  EXPECT_EQ(Sql("SELECT status || ' ' || output::text FROM workflow_executions WHERE id = $1", {id_.str()}),
            "COMPLETED 7");
}

// Anything between what the worker saw and its result (here a signal), a clock too far from the
// database's, or a workflow no longer sticky to it: the result alone is recorded, as without a
// continuation, and the commands are not applied.
TEST_F(ContinuationTest, WhenTheWorkflowIsNotWhereTheWorkerSawItOnlyTheResultIsRecorded) {
  struct Case {
    std::string name;
    std::function<void()> meanwhile;
    int64_t skew_ms;
  };
  std::vector<Case> cases = {
      {"a signal came first", [this] { ASSERT_TRUE(store_->Signal(tenant_, id_, "poke", "1").ok()); }, 0},
      {"the worker's clock is a minute behind", [] {}, -60000},
      {"the worker's clock is five seconds ahead", [] {}, 5000},
      {"another worker keeps it",
       [this] { Sql("UPDATE workflow_executions SET sticky_worker = 'someone-else' WHERE id = $1", {id_.str()}); }, 0},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim("q" + std::to_string(i)));
    c.meanwhile();
    std::string before = History();
    auto next = Next({ScheduleTask{.kind = "ship"}, Suspend{}}, DbNowMs() + c.skew_ms);
    std::optional<SubmitResult> continued;
    ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, task_, 1, "7", nullptr, &next, &continued).ok());
    EXPECT_FALSE(continued.has_value());
    EXPECT_EQ(History().substr(0, before.size()), before);
    EXPECT_NE(History().find("TASK_COMPLETED"), std::string::npos) << "the result is recorded";
    EXPECT_EQ(History().find(":TASK_SCHEDULED", before.size()), std::string::npos) << "the commands are not";
    EXPECT_EQ(Sql("SELECT count(*) FROM task_executions WHERE workflow_id = $1 AND kind = 'ship'", {id_.str()}), "0");
    EXPECT_EQ(Sql("SELECT status FROM task_executions WHERE id = $1", {task_.str()}), "COMPLETED");
    EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id_.str()}), "PENDING")
        << "runnable, for whichever worker claims it";
  }
}

TEST_F(ContinuationTest, RefusedCommandsRefuseTheWholeCallAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(ScheduleAndClaim());
  std::string before = History();
  auto next = Next({ScheduleTask{.kind = ""}, Suspend{}}, DbNowMs());
  std::optional<SubmitResult> continued;
  Status s = store_->CompleteTask(tenant_, worker_, task_, 1, "7", nullptr, &next, &continued);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(continued.has_value());
  EXPECT_EQ(History(), before);
  EXPECT_EQ(Sql("SELECT status FROM task_executions WHERE id = $1", {task_.str()}), "RUNNING")
      << "the result waits for a call that can be recorded";
}

}  // namespace
}  // namespace flovyn::testing
