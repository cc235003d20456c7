// The scheduler driven by a ManualTime over the in-process store: each kind of background work
// happens on the tick it belongs to, and not before, with no sleeps.
#include "engine/scheduler.h"

#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace engine;
using namespace std::chrono_literals;

class SchedulerTest : public StoreTest {
 protected:
  bool Fired(const ExecutionId& id) {
    auto types = EventTypes(id);
    return std::find(types.begin(), types.end(), "TIMER_FIRED") != types.end();
  }
  ManualTime time_;
};

TEST_F(SchedulerTest, ADueTimerFiresOnTheNextTickAndNoTickRunsAfterStop) {
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 60000}, Suspend{}}).ok());
  Sql("UPDATE timers SET fire_at = now() - interval '1 second' WHERE execution_id = $1", {id});
  Scheduler scheduler(*store_, 100ms, &time_);
  scheduler.Start();
  time_.Advance(99ms);
  EXPECT_FALSE(Fired(id)) << "no tick yet";
  time_.Advance(1ms);
  EXPECT_TRUE(Fired(id)) << "the first tick fires what is due";

  auto later = StartAndClaim("q2");  // the first is pending again on "q"
  ASSERT_TRUE(Submit(later, {StartTimer{"t", 60000}, Suspend{}}).ok());
  Sql("UPDATE timers SET fire_at = now() - interval '1 second' WHERE execution_id = $1", {later});
  scheduler.Stop();
  time_.Advance(10s);
  EXPECT_FALSE(Fired(later)) << "stopped: no more ticks";
}

TEST_F(SchedulerTest, ExpiredLeasesReturnToTheQueueOnEveryFifthTick) {
  auto id = StartAndClaim("q");
  Sql("UPDATE workflow_executions SET lease_expires_at = now() - interval '1 second' WHERE id = $1", {id});
  Scheduler scheduler(*store_, 100ms, &time_);
  scheduler.Start();
  for (int tick = 1; tick < Scheduler::kLeaseEvery; ++tick) {
    time_.Advance(100ms);
    EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id}), "RUNNING") << "tick " << tick;
  }
  time_.Advance(100ms);
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id}), "PENDING");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "pollers are woken";
}

}  // namespace
}  // namespace flovyn::testing
