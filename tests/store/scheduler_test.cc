// The scheduler driven by a ManualTime over the in-process store: timers fire at their
// deadlines (hinted by the commit that made them, or learnt from the database after a run), not
// on a fixed tick; leases and overdue cancellations are swept every sweep; no run after Stop.
// No sleeps: the database's clock is moved by moving the rows' deadlines into the past.
#include "engine/scheduler.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "flovyn/db/transaction.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace engine;
using namespace std::chrono_literals;

class SchedulerTest : public StoreTest {
 protected:
  void TearDown() override { notifier_.SetDeadlineSink(nullptr); }
  bool Fired(const ExecutionId& id) {
    auto types = EventTypes(id);
    return std::find(types.begin(), types.end(), "TIMER_FIRED") != types.end();
  }
  // What the database's clock would say once the timers are due: their deadlines moved back.
  void MakeDue(const ExecutionId& id) {
    Sql("UPDATE timers SET fire_at = now() - interval '1 millisecond' WHERE execution_id = $1", {id});
  }
  void Connect(Scheduler& s) {
    notifier_.SetDeadlineSink([&s](int64_t unix_us) { s.Hint(unix_us); });
  }
  // Now, and `ms` on, in Unix microseconds (a deadline's unit).
  static int64_t UnixUs(int64_t ms = 0) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch() +
                                                                 std::chrono::milliseconds(ms))
        .count();
  }
  // For the tests on real time: true once `cond` holds, false after 10 s.
  static bool Within10s(const std::function<bool()>& cond) {
    for (int i = 0; i < 1000; ++i) {
      if (cond()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return cond();
  }
  ManualTime time_;
};

TEST_F(SchedulerTest, ATimerFiresAtItsDeadlineHintedByTheCommitNotOnTheSweep) {
  Scheduler scheduler(*store_, 60s, &time_);
  Connect(scheduler);
  scheduler.Start();
  time_.Advance(0ms);  // the first run: nothing is due or pending
  EXPECT_EQ(scheduler.planned(), time_.Now() + 60s) << "nothing pending: the next run is the sweep";

  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 300}, Suspend{}}).ok());
  auto planned = scheduler.planned() - time_.Now();
  EXPECT_GT(planned, 200ms) << "the hint is the timer's deadline";
  EXPECT_LE(planned, 301ms);
  MakeDue(id);
  time_.Advance(planned - 1ms);
  EXPECT_FALSE(Fired(id)) << "no run before the deadline";
  time_.Advance(1ms);
  EXPECT_TRUE(Fired(id)) << "the run at the deadline fires it, 59.7 s before the sweep";
  EXPECT_EQ(EventTypes(id).back(), "TIMER_FIRED");
}

// A deadline travels in microseconds, so the run is planned at the timer's fire time and not up
// to two milliseconds after it (rounded up to the millisecond twice, as it was): a commit's hint
// is never before the deadline and within a round trip after it.
TEST_F(SchedulerTest, ACommitsHintIsTheTimersFireTimeToTheMicrosecond) {
  std::vector<int64_t> hinted;
  notifier_.SetDeadlineSink([&hinted](int64_t unix_us) { hinted.push_back(unix_us); });
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 300}, Suspend{}}).ok());
  ASSERT_EQ(hinted.size(), 1u);
  int64_t fire_at_us = std::stoll(
      Sql("SELECT (extract(epoch from fire_at) * 1000000)::bigint FROM timers WHERE execution_id = $1", {id}));
  EXPECT_GE(hinted[0], fire_at_us) << "never before the deadline";
  EXPECT_LT(hinted[0] - fire_at_us, 5000) << "within the commit's round trip";
  Scheduler scheduler(*store_, 60s, &time_);
  scheduler.Start();
  time_.Advance(0ms);
  int64_t unix_now = UnixUs();
  scheduler.Hint(unix_now + 1500);
  auto planned = scheduler.planned() - time_.Now();
  EXPECT_LE(planned, 1500us);
  EXPECT_GT(planned, 1000us) << "1.5 ms, not rounded to the millisecond";
  scheduler.Stop();
}

// A deadline is learned twice, from its commit's hint and from a run's report, each a little
// off the other; the run at the first fires it, and its report (the truth about what is
// pending) clears the other, so no run is spent on a timer already fired.
TEST_F(SchedulerTest, ADeadlineLearnedTwiceGetsOneRun) {
  Scheduler scheduler(*store_, 60s, &time_);
  Connect(scheduler);
  scheduler.Start();
  time_.Advance(0ms);
  auto later = StartAndClaim("q");
  ASSERT_TRUE(Submit(later, {StartTimer{"t", 300}, Suspend{}}).ok());
  auto sooner = StartAndClaim("q");
  ASSERT_TRUE(Submit(sooner, {StartTimer{"t", 100}, Suspend{}}).ok());
  MakeDue(sooner);
  time_.Advance(scheduler.planned() - time_.Now());
  ASSERT_TRUE(Fired(sooner));
  EXPECT_FALSE(Fired(later));
  EXPECT_EQ(scheduler.runs(), 2u);
  MakeDue(later);  // known from its hint and from the run's report
  time_.Advance(scheduler.planned() - time_.Now());
  EXPECT_TRUE(Fired(later));
  EXPECT_EQ(scheduler.runs(), 3u);
  EXPECT_EQ(scheduler.planned(), time_.Now() + 60s) << "nothing pending: no run before the sweep";
  scheduler.Stop();
}

TEST_F(SchedulerTest, AfterARunTheNextDeadlineComesFromTheDatabaseSoTimersFromBeforeAStartAreOnTime) {
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 10000}, Suspend{}}).ok());  // no scheduler to hint yet
  Scheduler scheduler(*store_, 60s, &time_);
  scheduler.Start();
  time_.Advance(0ms);
  auto planned = scheduler.planned() - time_.Now();
  EXPECT_GT(planned, 5s) << "planned for the pending timer";
  EXPECT_LE(planned, 10001ms);
  time_.Advance(5s);
  EXPECT_FALSE(Fired(id));
  MakeDue(id);
  time_.Advance(planned - 5s);
  EXPECT_TRUE(Fired(id));
}

// Timers due a few milliseconds apart: what is overdue after a run that fired something is
// fired by a run at once, not kOverdueRetry later (which made every timer of a busy second wait
// up to 10 ms); what a run could not fire at all (locked by another replica) waits kOverdueRetry.
TEST_F(SchedulerTest, WorkOverdueAfterARunThatFiredIsFiredAtOnceAndWorkThatCouldNotBeFiredWaitsTheRetry) {
  Scheduler scheduler(*store_, 60s, &time_);
  Connect(scheduler);
  auto a = StartAndClaim("q");
  ASSERT_TRUE(Submit(a, {StartTimer{"t", 60000}, Suspend{}}).ok());
  auto b = StartAndClaim("q");
  ASSERT_TRUE(Submit(b, {StartTimer{"t", 60000}, Suspend{}}).ok());
  MakeDue(a);
  MakeDue(b);
  // Another replica holds b's timer while this one runs.
  auto other = pool_->Acquire();
  ASSERT_TRUE(other.ok());
  auto deadline = db::Clock::now() + 10s;
  ASSERT_TRUE((*other)->ExecSimple("BEGIN", deadline).ok());
  ASSERT_TRUE(
      (*other)->Exec("SELECT 1 FROM timers WHERE execution_id = $1 FOR UPDATE", {std::string(b.str())}, deadline).ok());
  scheduler.Start();
  time_.Advance(0ms);
  EXPECT_TRUE(Fired(a));
  EXPECT_FALSE(Fired(b));
  EXPECT_EQ(scheduler.runs(), 2u) << "the run that fired a found b overdue: a second run followed at once";
  EXPECT_EQ(scheduler.planned(), time_.Now() + Scheduler::kOverdueRetry)
      << "the second fired nothing (b is locked elsewhere): the next waits the retry";
  ASSERT_TRUE((*other)->ExecSimple("ROLLBACK", deadline).ok());
  time_.Advance(Scheduler::kOverdueRetry);
  EXPECT_TRUE(Fired(b));
  scheduler.Stop();
}

TEST_F(SchedulerTest, AnEarlierHintReplacesALaterPlanAndALaterHintDoesNot) {
  Scheduler scheduler(*store_, 60s, &time_);
  scheduler.Start();
  time_.Advance(0ms);
  auto unix_now = UnixUs();
  scheduler.Hint(unix_now + 2000000);
  auto first = scheduler.planned() - time_.Now();
  EXPECT_GT(first, 1900ms);
  EXPECT_LE(first, 2000ms);
  scheduler.Hint(unix_now + 5000000);
  EXPECT_EQ(scheduler.planned() - time_.Now(), first) << "a later deadline waits for the run planned before it";
  scheduler.Hint(unix_now + 1000000);
  EXPECT_LE(scheduler.planned() - time_.Now(), 1000ms);
}

TEST_F(SchedulerTest, APromiseTimeoutIsADeadlineToo) {
  Scheduler scheduler(*store_, 60s, &time_);
  Connect(scheduler);
  scheduler.Start();
  time_.Advance(0ms);
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {CreatePromise{"p", 400}, Suspend{}}).ok());
  auto planned = scheduler.planned() - time_.Now();
  EXPECT_GT(planned, 300ms);
  EXPECT_LE(planned, 401ms);
  Sql("UPDATE promises SET timeout_at = now() - interval '1 millisecond' WHERE execution_id = $1", {id});
  time_.Advance(planned);
  EXPECT_EQ(Sql("SELECT status FROM promises WHERE execution_id = $1", {id}), "TIMED_OUT");
}

// Promise timeouts are looked for by a run only when the database reported a promise deadline
// due by then or a hint (of either kind) fell due: a run for a timer alone is one transaction.
TEST_F(SchedulerTest, ARunLooksForOverduePromisesOnlyWhenAPromiseDeadlineOrAHintIsDue) {
  auto t = StartAndClaim("q");
  ASSERT_TRUE(Submit(t, {StartTimer{"t", 10000}, Suspend{}}).ok());  // no scheduler to hint yet
  auto p = StartAndClaim("q");
  ASSERT_TRUE(Submit(p, {CreatePromise{"p", 20000}, Suspend{}}).ok());
  Scheduler scheduler(*store_, 60s, &time_);
  scheduler.Start();
  time_.Advance(0ms);
  EXPECT_EQ(scheduler.promise_runs(), 1u) << "the first run looks for everything";
  MakeDue(t);
  time_.Advance(scheduler.planned() - time_.Now());
  EXPECT_TRUE(Fired(t));
  EXPECT_EQ(scheduler.runs(), 2u);
  EXPECT_EQ(scheduler.promise_runs(), 1u) << "the timer's run: no promise was due";
  Sql("UPDATE promises SET timeout_at = now() - interval '1 millisecond' WHERE execution_id = $1", {p});
  auto promise_at = scheduler.planned() - time_.Now();
  EXPECT_GT(promise_at, 5s) << "planned for the promise's deadline, about 10 s on";
  time_.Advance(promise_at);
  EXPECT_EQ(scheduler.promise_runs(), 2u);
  EXPECT_EQ(Sql("SELECT status FROM promises WHERE execution_id = $1", {p}), "TIMED_OUT");
  scheduler.Hint(UnixUs(100));
  time_.Advance(100ms);
  EXPECT_EQ(scheduler.promise_runs(), 3u) << "a hint may be a promise's";
  scheduler.Stop();
}

// The sweep has a timer of its own: a sweep held up (here by a lock on the tasks' table, which
// the task-lease sweep reads and firing a timer does not) leaves timers firing on time.
TEST_F(SchedulerTest, ASweepHeldUpDoesNotHoldUpATimer) {
  auto other = pool_->Acquire();
  ASSERT_TRUE(other.ok());
  auto deadline = db::Clock::now() + 30s;
  ASSERT_TRUE((*other)->ExecSimple("BEGIN", deadline).ok());
  ASSERT_TRUE((*other)->ExecSimple("LOCK TABLE task_executions IN ACCESS EXCLUSIVE MODE", deadline).ok());
  Scheduler scheduler(*store_, 60s);  // real time: timer threads of its own
  Connect(scheduler);
  scheduler.Start();
  // The first sweep is under way and waits for the lock.
  ASSERT_TRUE(Within10s([&] {
    return Sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
               "'%task_executions%'") != "0";
  }));
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 100}, Suspend{}}).ok());
  EXPECT_TRUE(Within10s([&] { return Fired(id); })) << "the timer fired while the sweep waited";
  ASSERT_TRUE((*other)->ExecSimple("ROLLBACK", deadline).ok());
  scheduler.Stop();
}

// Runs go on lanes: a deadline that falls due while a run is held up (here by a lock another
// session holds on the first timer's execution) is fired by a run on another lane.
TEST_F(SchedulerTest, ATimerDueWhileARunIsHeldUpIsFiredByAnotherLane) {
  auto a = StartAndClaim("q");
  ASSERT_TRUE(Submit(a, {StartTimer{"t", 100}, Suspend{}}).ok());
  auto b = StartAndClaim("q");
  ASSERT_TRUE(Submit(b, {StartTimer{"t", 400}, Suspend{}}).ok());
  auto other = pool_->Acquire();
  ASSERT_TRUE(other.ok());
  auto deadline = db::Clock::now() + 30s;
  ASSERT_TRUE((*other)->ExecSimple("BEGIN", deadline).ok());
  ASSERT_TRUE((*other)
                  ->Exec("SELECT 1 FROM workflow_executions WHERE id = $1 FOR UPDATE", {std::string(a.str())}, deadline)
                  .ok());
  Scheduler scheduler(*store_, 60s, nullptr, 2);  // real time, two lanes
  scheduler.Start();
  EXPECT_TRUE(Within10s([&] { return Fired(b); })) << "b fired while the run firing a waited";
  EXPECT_FALSE(Fired(a));
  ASSERT_TRUE((*other)->ExecSimple("ROLLBACK", deadline).ok());
  EXPECT_TRUE(Within10s([&] { return Fired(a); })) << "and a once the lock went";
  scheduler.Stop();
}

// Hints come from commits, so from the network: the deadlines kept in memory are bounded, the
// latest forgotten first (the database reports them again after a run), the earliest kept.
TEST_F(SchedulerTest, HintsPastTheBoundForgetTheLatestAndKeepTheEarliest) {
  Scheduler scheduler(*store_, 60s, &time_);
  scheduler.Start();
  time_.Advance(0ms);
  auto unix_now = UnixUs();
  for (int i = 0; i < 3000; ++i) scheduler.Hint(unix_now + 10000000 + i * 1000);
  EXPECT_EQ(scheduler.known(), Scheduler::kKnownDeadlines);
  auto first = scheduler.planned() - time_.Now();
  EXPECT_GT(first, 9900ms);
  EXPECT_LE(first, 10000ms) << "the earliest hint is the plan";
  scheduler.Hint(unix_now + 5000000);
  EXPECT_EQ(scheduler.known(), Scheduler::kKnownDeadlines);
  EXPECT_LE(scheduler.planned() - time_.Now(), 5000ms) << "an earlier one still comes in";
  scheduler.Stop();
}

TEST_F(SchedulerTest, NoRunAfterStop) {
  Scheduler scheduler(*store_, 100ms, &time_);
  Connect(scheduler);
  scheduler.Start();
  time_.Advance(0ms);
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"t", 50}, Suspend{}}).ok());
  MakeDue(id);
  scheduler.Stop();
  time_.Advance(10s);
  EXPECT_FALSE(Fired(id)) << "stopped: no more runs";
  notifier_.SetDeadlineSink(nullptr);
}

TEST_F(SchedulerTest, ExpiredLeasesReturnToTheQueueOnTheNextSweep) {
  Scheduler scheduler(*store_, 500ms, &time_);
  scheduler.Start();
  time_.Advance(0ms);
  auto id = StartAndClaim("q");
  Sql("UPDATE workflow_executions SET lease_expires_at = now() - interval '1 second' WHERE id = $1", {id});
  time_.Advance(499ms);
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id}), "RUNNING") << "before the sweep";
  time_.Advance(1ms);
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE id = $1", {id}), "PENDING");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow))) << "pollers are woken";
}

// Another replica's commit reaches this one's scheduler: the deadline travels through
// PostgreSQL's NOTIFY (the notifier used without NATS) to the other notifier's sink.
TEST_F(SchedulerTest, ADeadlineCommittedOnOneReplicaReachesTheOtherThroughNotify) {
  WorkHub hub_a, hub_b;
  PostgresNotifier a(hub_a, *pool_), b(hub_b, *pool_);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int64_t> at_a, at_b;
  a.SetDeadlineSink([&](int64_t us) {
    std::lock_guard<std::mutex> l(mu);
    at_a.push_back(us);
  });
  b.SetDeadlineSink([&](int64_t us) {
    std::lock_guard<std::mutex> l(mu);
    at_b.push_back(us);
    cv.notify_all();
  });
  b.Start();
  // The listener may not be listening yet: send until it hears (each NOTIFY is a new commit).
  bool heard = false;
  for (int attempt = 0; attempt < 50 && !heard; ++attempt) {
    ASSERT_TRUE(db::InTransaction(*pool_, [&](db::Tx& tx) { return a.InTransaction(tx, DeadlineKey(1234567)); }).ok());
    std::unique_lock<std::mutex> l(mu);
    heard = cv.wait_for(l, 100ms, [&] { return !at_b.empty(); });
  }
  b.Stop();
  ASSERT_TRUE(heard);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(at_b.front(), 1234567);
  EXPECT_TRUE(at_a.empty()) << "the sender's own NOTIFY is not delivered back to it";
}

TEST(DeadlineKeyTest, RoundTripsAndIsNeverAWorkKey) {
  EXPECT_EQ(ParseDeadlineKey(DeadlineKey(1700000000123456)), 1700000000123456);
  EXPECT_EQ(ParseDeadlineKey("@deadline/1700000000123"), 1700000000123000) << "an earlier replica's milliseconds";
  EXPECT_FALSE(ParseDeadlineKey("@due/"));
  EXPECT_FALSE(ParseDeadlineKey("@due/12x"));
  EXPECT_FALSE(ParseDeadlineKey(WorkKey("00000000-0000-0000-0000-000000000001", "q", WorkKind::kTask)));
  EXPECT_FALSE(ParseDeadlineKey("@deadline/"));
  EXPECT_FALSE(ParseDeadlineKey("@deadline/12x"));
  EXPECT_FALSE(ParseDeadlineKey("*"));
}

}  // namespace
}  // namespace flovyn::testing
