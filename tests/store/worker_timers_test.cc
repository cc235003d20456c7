// Timers the worker that keeps their execution fires itself (SubmitWorkflowCommandsRequest
// .fires_timers, FireTimer): the server leaves each to that worker until its grace has passed,
// records TIMER_FIRED with the commands the worker's code issued next in one transaction, and
// refuses a fire that is early or of a timer no longer pending.
#include <thread>

#include <gtest/gtest.h>

#include "flovyn/core/status_macros.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;
using std::chrono::milliseconds;

class WorkerTimersTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    StoreOptions o;
    o.worker_timer_grace = milliseconds(1000);
    store_ = std::make_unique<Store>(*pool_, notifier_, o);
  }
  // A claimed execution whose batch started timer "t" (`ms` from now), kept cached by the worker,
  // which fires its timers itself when `fires`; `at_` is the history's last sequence then.
  void Sleep(int64_t ms, bool fires = true, const std::string& queue = "q") {
    id_ = StartAndClaim(queue);
    auto r = store_->SubmitCommands(tenant_, worker_, id_, 1, {StartTimer{"t", ms}, Suspend{}}, true, {}, fires);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    at_ = r->last_sequence;
  }
  int64_t DbNowMs() { return std::stoll(Sql("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")); }
  Store::Continuation Next(std::vector<WorkflowCommand> commands, int64_t at_ms) {
    return {.execution = id_,
            .expected_sequence = at_,
            .at_ms = at_ms,
            .commands = std::move(commands),
            .keep_cached = true,
            .fires_timers = true};
  }
  std::string History() {
    return Sql("SELECT string_agg(seq || ':' || type, ' ' ORDER BY seq) FROM workflow_events WHERE execution_id = $1",
               {id_.str()});
  }
  std::string Timer() { return Sql("SELECT status FROM timers WHERE execution_id = $1", {id_.str()}); }
  Status Fire(Store::Continuation* c, std::optional<SubmitResult>* continued, const std::string& name = "t") {
    return store_->FireTimer(tenant_, worker_, id_, name, c, continued);
  }

  ExecutionId id_;
  int64_t at_ = 0;
};

TEST_F(WorkerTimersTest, TheServerLeavesATimerToTheWorkerThatFiresItUntilItsGraceHasPassed) {
  ASSERT_NO_FATAL_FAILURE(Sleep(50));
  // The deadline in TIMER_STARTED is the timer's own; the server's is the grace later.
  // (fireAtMs is the deadline rounded up to the millisecond, so the server's is rounded up too.)
  EXPECT_EQ(Sql("SELECT ceil(extract(epoch from fire_at) * 1000) - (payload->>'fireAtMs')::numeric FROM timers, "
                "workflow_events e WHERE timers.execution_id = $1 AND e.execution_id = $1 AND e.type = 'TIMER_STARTED'",
                {id_.str()}),
            "1000");
  std::this_thread::sleep_for(milliseconds(150));
  auto fired = store_->FireDueTimers();
  ASSERT_TRUE(fired.ok());
  EXPECT_EQ(*fired, 0) << "past its deadline, but the worker fires it";
  EXPECT_EQ(Timer(), "PENDING");
  std::this_thread::sleep_for(milliseconds(950));
  fired = store_->FireDueTimers();
  ASSERT_TRUE(fired.ok());
  EXPECT_EQ(*fired, 1) << "the worker did not: the server fires it";
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TIMER_STARTED 3:TIMER_FIRED");

  // Without fires_timers, the server fires at the deadline.
  ASSERT_NO_FATAL_FAILURE(Sleep(50, false, "q2"));
  std::this_thread::sleep_for(milliseconds(100));
  fired = store_->FireDueTimers();
  ASSERT_TRUE(fired.ok());
  EXPECT_EQ(*fired, 1);
}

TEST_F(WorkerTimersTest, AFiredTimerAndTheCommandsTheWorkersCodeIssuedNextAreOneTransaction) {
  ASSERT_NO_FATAL_FAILURE(Sleep(30));
  std::this_thread::sleep_for(milliseconds(40));
  int64_t seen = DbNowMs();
  auto next = Next({StartTimer{"u", 60000}, Suspend{}}, seen);
  std::optional<SubmitResult> continued;
  ASSERT_TRUE(Fire(&next, &continued).ok());
  ASSERT_TRUE(continued.has_value()) << "applied";
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TIMER_STARTED 3:TIMER_FIRED 4:TIMER_STARTED");
  ASSERT_EQ(continued->events.size(), 2u);
  EXPECT_EQ(continued->events[0].type, "TIMER_FIRED");
  EXPECT_EQ(continued->events[0].created_at_ms, seen) << "stamped with the time the worker's code saw";
  EXPECT_EQ(continued->events[0].payload_json, R"({"name":"t"})") << "as the scheduler records it";
  EXPECT_EQ(Sql("SELECT string_agg(name || '=' || status || ':' || held_ms, ',' ORDER BY name) FROM timers WHERE "
                "execution_id = $1",
                {id_.str()}),
            "t=FIRED:1000,u=PENDING:1000")
      << "the next timer is the worker's to fire too";
  EXPECT_EQ(Sql("SELECT status || ' ' || coalesce(sticky_worker, '-') || ' ' || last_seq FROM workflow_executions "
                "WHERE id = $1",
                {id_.str()}),
            "WAITING " + worker_.str() + " 4");
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "nobody else needs to run it";

  // The timer fired: a second fire of it is refused and changes nothing.
  Status again = Fire(&next, &continued);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition) << again.ToString();
  EXPECT_NE(again.message().find("not pending"), std::string::npos) << again.message();
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TIMER_STARTED 3:TIMER_FIRED 4:TIMER_STARTED");
}

TEST_F(WorkerTimersTest, AnEarlyFireOrOneOfNoPendingTimerChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(Sleep(10000));
  auto next = Next({CompleteWorkflow{"1"}}, DbNowMs());
  std::optional<SubmitResult> continued;
  Status early = Fire(&next, &continued);
  EXPECT_EQ(early.code(), StatusCode::kFailedPrecondition) << early.ToString();
  EXPECT_NE(early.message().find("not due"), std::string::npos) << early.message();
  Status unknown = Fire(&next, &continued, "nope");
  EXPECT_EQ(unknown.code(), StatusCode::kFailedPrecondition) << unknown.ToString();
  EXPECT_FALSE(continued.has_value());
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TIMER_STARTED");
  EXPECT_EQ(Timer(), "PENDING");
  // Another tenant's worker cannot fire it.
  auto other = store_->CreateTenant("other", "Other");
  ASSERT_TRUE(other.ok());
  Status foreign = store_->FireTimer(TenantId(other->id), worker_, id_, "t", nullptr, &continued);
  EXPECT_EQ(foreign.code(), StatusCode::kNotFound) << foreign.ToString();
  EXPECT_EQ(Timer(), "PENDING");
}

TEST_F(WorkerTimersTest, AFireFromAWorkerWhoseViewIsStaleRecordsTheTimerAloneAsTheServerWould) {
  ASSERT_NO_FATAL_FAILURE(Sleep(20));
  ASSERT_TRUE(store_->Signal(tenant_, id_, "poke", "1").ok());  // the history moved on
  std::this_thread::sleep_for(milliseconds(30));
  auto next = Next({CompleteWorkflow{"1"}}, DbNowMs());
  std::optional<SubmitResult> continued;
  ASSERT_TRUE(Fire(&next, &continued).ok());
  EXPECT_FALSE(continued.has_value()) << "the code saw no signal: its commands are not applied";
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TIMER_STARTED 3:SIGNAL_RECEIVED 4:TIMER_FIRED");
  EXPECT_EQ(Timer(), "FIRED");
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id_.str()}), "PENDING")
      << "runnable, for a poll to take";

  // Without a continuation (the worker no longer keeps the workflow) the same: the timer alone.
  ASSERT_NO_FATAL_FAILURE(Sleep(20, true, "q2"));
  std::this_thread::sleep_for(milliseconds(30));
  ASSERT_TRUE(Fire(nullptr, &continued).ok());
  EXPECT_FALSE(continued.has_value());
  EXPECT_EQ(History(), "1:WORKFLOW_STARTED 2:TIMER_STARTED 3:TIMER_FIRED");
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id_.str()}), "PENDING");
}

}  // namespace
}  // namespace flovyn::testing
