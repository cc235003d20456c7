// The building blocks of bounded serving: the LRU map, the work pool's refusal when full, the
// timer thread, and the WorkHub's one-shot waiters (news, sweep, deadline, drain, eviction).
#include <atomic>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "engine/work_hub.h"
#include "flovyn/core/lru.h"
#include "flovyn/core/time_source.h"
#include "flovyn/core/timers.h"
#include "flovyn/core/work_pool.h"
#include "flovyn/metrics/registry.h"

namespace flovyn {
namespace {

using namespace std::chrono_literals;
using engine::WorkHub;

TEST(LruMapTest, EvictsTheLeastRecentlyUsedWhenFull) {
  LruMap<std::string, int> m(2);
  m.Put("a", 1);
  m.Put("b", 2);
  ASSERT_EQ(m.Get("a"), 1);  // a is now the most recent
  m.Put("c", 3);             // evicts b
  EXPECT_TRUE(m.Contains("a"));
  EXPECT_FALSE(m.Contains("b"));
  EXPECT_TRUE(m.Contains("c"));
  EXPECT_EQ(m.size(), 2u);
}

TEST(WorkPoolTest, RefusesBeyondItsQueueAndRunsWhatItAccepted) {
  WorkPool pool("test", 1, 2);
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.TrySubmit([gate, &ran] {
    gate.wait();
    ++ran;
  }));
  while (pool.busy() == 0) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(pool.TrySubmit([&ran] { ++ran; }));
  EXPECT_TRUE(pool.TrySubmit([&ran] { ++ran; }));
  EXPECT_FALSE(pool.TrySubmit([&ran] { ++ran; })) << "a third queued job exceeds the bound of 2";
  release.set_value();
  pool.Stop();
  EXPECT_EQ(ran, 3);
  EXPECT_FALSE(pool.TrySubmit([] {})) << "a stopped pool refuses";
}

TEST(TimersTest, RunsInOrderAndCancelledOnesNever) {
  Timers t;
  std::mutex mu;
  std::vector<int> order;
  auto now = Timers::Clock::now();
  t.At(now + 30ms, [&] {
    std::lock_guard<std::mutex> l(mu);
    order.push_back(2);
  });
  t.At(now + 10ms, [&] {
    std::lock_guard<std::mutex> l(mu);
    order.push_back(1);
  });
  uint64_t never = t.At(now + 20ms, [&] {
    std::lock_guard<std::mutex> l(mu);
    order.push_back(99);
  });
  EXPECT_TRUE(t.Cancel(never));
  std::this_thread::sleep_for(80ms);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(t.Cancel(never));
}

struct Woken {
  std::mutex mu;
  std::vector<WorkHub::Wake> why;
  WorkHub::WakeFn Fn() {
    return [this](WorkHub::Wake w) {
      std::lock_guard<std::mutex> l(mu);
      why.push_back(w);
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu);
    return why.size();
  }
};

TEST(WorkHubTest, OneNotificationWakesOnePollerAndStreamsAllHearIt) {
  WorkHub hub(10s);
  Woken a, b, s1, s2;
  auto far = WorkHub::Clock::now() + 60s;
  std::string key = engine::WorkKey("t", "q", engine::WorkKind::kTask);
  std::string any = engine::AnyKindKey("t", "q");
  ASSERT_NE(hub.Park(key, hub.Observe(key), far, a.Fn()).ticket, 0u);
  ASSERT_NE(hub.Park(key, hub.Observe(key), far, b.Fn()).ticket, 0u);
  ASSERT_NE(hub.Park(any, hub.Observe(any), far, s1.Fn()).ticket, 0u);
  ASSERT_NE(hub.Park(any, hub.Observe(any), far, s2.Fn()).ticket, 0u);
  EXPECT_EQ(hub.waiting(), 4);
  hub.Notify(key);
  EXPECT_EQ(a.count() + b.count(), 1u) << "one unit of news, one poller";
  EXPECT_EQ(s1.count(), 1u);
  EXPECT_EQ(s2.count(), 1u);
  EXPECT_EQ(hub.waiting(), 1);
}

// News for an execution a worker keeps cached goes to that worker's poller, not the oldest
// waiter; when that worker is not waiting, the oldest gets it as usual. Streams hear it all the same.
TEST(WorkHubTest, TaggedNewsWakesThePollerWithThatTagFirst) {
  WorkHub hub(10s);
  Woken oldest, keeper, stream;
  auto far = WorkHub::Clock::now() + 60s;
  std::string key = engine::WorkKey("t", "q", engine::WorkKind::kWorkflow);
  std::string any = engine::AnyKindKey("t", "q");
  ASSERT_NE(hub.Park(key, hub.Observe(key), far, oldest.Fn(), "worker-a").ticket, 0u);
  ASSERT_NE(hub.Park(key, hub.Observe(key), far, keeper.Fn(), "worker-b").ticket, 0u);
  ASSERT_NE(hub.Park(any, hub.Observe(any), far, stream.Fn()).ticket, 0u);
  hub.Notify(engine::TaggedKey(key, "worker-b"));
  EXPECT_EQ(keeper.count(), 1u);
  EXPECT_EQ(oldest.count(), 0u);
  EXPECT_EQ(stream.count(), 1u);
  hub.Notify(engine::TaggedKey(key, "worker-gone"));
  EXPECT_EQ(oldest.count(), 1u) << "nobody with that tag waits: the oldest waiter gets it";
  EXPECT_EQ(hub.waiting(), 0);
}

TEST(WorkHubTest, NewsBetweenObserveAndParkIsNotLost) {
  WorkHub hub(10s);
  std::string key = engine::WorkKey("t", "q", engine::WorkKind::kWorkflow);
  uint64_t seen = hub.Observe(key);
  hub.Notify(key);  // arrives while the poller is claiming
  Woken w;
  auto p = hub.Park(key, seen, WorkHub::Clock::now() + 60s, w.Fn());
  EXPECT_EQ(p.ticket, 0u);
  EXPECT_EQ(p.immediate, WorkHub::Wake::kNews);
}

// Time moves only when the test says (ManualTime): each wake happens at its moment, exactly once.
TEST(WorkHubTest, DeadlineSweepCancelAndDrainEachWakeExactlyOnce) {
  ManualTime time;
  WorkHub hub(50ms, &time);
  std::string key = engine::WorkKey("t", "q", engine::WorkKind::kTask);
  Woken deadline, swept, cancelled, drained;
  hub.Park(key, hub.Observe(key), time.Now() + 20ms, deadline.Fn());
  time.Advance(19ms);
  EXPECT_EQ(deadline.count(), 0u) << "before its deadline";
  time.Advance(1ms);
  ASSERT_EQ(deadline.count(), 1u);
  EXPECT_EQ(deadline.why[0], WorkHub::Wake::kDeadline);

  hub.Park(key, hub.Observe(key), time.Now() + 60s, swept.Fn());
  time.Advance(29ms);
  EXPECT_EQ(swept.count(), 0u) << "before the sweep";
  time.Advance(1ms);  // 50 ms: the first sweep
  ASSERT_EQ(swept.count(), 1u);
  EXPECT_EQ(swept.why[0], WorkHub::Wake::kSweep);

  auto c = hub.Park(key, hub.Observe(key), time.Now() + 60s, cancelled.Fn());
  EXPECT_TRUE(hub.Cancel(c.ticket));
  EXPECT_FALSE(hub.Cancel(c.ticket));
  time.Advance(120s);  // past its deadline and many sweeps: a cancelled waiter never wakes

  hub.Park(key, hub.Observe(key), time.Now() + 60s, drained.Fn());
  hub.Drain();
  ASSERT_EQ(drained.count(), 1u);
  EXPECT_EQ(drained.why[0], WorkHub::Wake::kDrain);
  EXPECT_EQ(cancelled.count(), 0u);
  EXPECT_EQ(hub.waiting(), 0);
  EXPECT_EQ(hub.Park(key, hub.Observe(key), time.Now() + 60s, drained.Fn()).immediate, WorkHub::Wake::kDrain);
}

TEST(WorkHubTest, AQueueFoundEmptyStaysKnownEmptyForItsScopeUntilNewsOrTheSweep) {
  ManualTime time;
  WorkHub hub(1s, &time);
  std::string key = engine::WorkKey("t", "q", engine::WorkKind::kTask);
  uint64_t seen = hub.Observe(key);
  EXPECT_FALSE(hub.KnownEmpty(key, seen, "a")) << "nothing is known before a claim found nothing";
  hub.FoundEmpty(key, seen, "a");
  EXPECT_TRUE(hub.KnownEmpty(key, hub.Observe(key), "a"));
  EXPECT_FALSE(hub.KnownEmpty(key, hub.Observe(key), "b")) << "another poller's kinds are not known empty";
  hub.Notify(key);  // news: the next poll of any scope claims again
  EXPECT_FALSE(hub.KnownEmpty(key, hub.Observe(key), "a"));

  // A claim during which news arrived proves nothing.
  seen = hub.Observe(key);
  hub.Notify(key);
  hub.FoundEmpty(key, seen, "a");
  EXPECT_FALSE(hub.KnownEmpty(key, hub.Observe(key), "a"));

  // The sweep forgets it too: work may have become due without news (a retry's backoff).
  seen = hub.Observe(key);
  hub.FoundEmpty(key, seen, "a");
  EXPECT_TRUE(hub.KnownEmpty(key, seen, "a"));
  time.Advance(1s);
  EXPECT_FALSE(hub.KnownEmpty(key, hub.Observe(key), "a"));

  // At most kEmptyScopes scopes are remembered per key.
  seen = hub.Observe(key);
  for (size_t i = 0; i < WorkHub::kEmptyScopes + 5; ++i) hub.FoundEmpty(key, seen, "s" + std::to_string(i));
  EXPECT_TRUE(hub.KnownEmpty(key, seen, "s0"));
  EXPECT_FALSE(hub.KnownEmpty(key, seen, "s" + std::to_string(WorkHub::kEmptyScopes)));
}

TEST(WorkHubTest, KeysWithoutWaitersAreForgottenAfterTwoSweeps) {
  ManualTime time;
  WorkHub hub(1s, &time);
  for (int i = 0; i < 30000; ++i) hub.Observe(engine::WorkKey("t", "q" + std::to_string(i), engine::WorkKind::kTask));
  EXPECT_EQ(hub.keys(), 30000u);
  hub.Notify("t|nobody|waits");  // news for a key nobody holds creates nothing
  EXPECT_EQ(hub.keys(), 30000u);
  time.Advance(2s);  // two sweeps: untouched for 2 s, not yet more than two sweeps
  EXPECT_EQ(hub.keys(), 30000u);
  time.Advance(1s);
  EXPECT_EQ(hub.keys(), 0u);
}

TEST(MetricFamilyTest, LabelSetsBeyondTheLimitShareOneOtherSeriesAndAreCounted) {
  metrics::Registry r;
  auto& f = r.AddCounter("flovyn_test_total", "test", {"kind"});
  f.set_max_series(3);
  for (int i = 0; i < 100; ++i) f.With({"k" + std::to_string(i)})->Inc();
  EXPECT_EQ(f.children().size(), 4u);  // three, and "other"
  EXPECT_EQ(f.overflowed(), 97u);
  std::string page = r.Expose();
  EXPECT_NE(page.find("flovyn_test_total{kind=\"other\"} 97"), std::string::npos) << page;
  EXPECT_NE(page.find("flovyn_metric_series_overflow_total{metric=\"flovyn_test_total\"} 97"), std::string::npos);
  EXPECT_EQ(&r.AddCounter("flovyn_test_total", "test", {"kind"}), &f) << "one family per name";
}

}  // namespace
}  // namespace flovyn

namespace flovyn {
namespace {
TEST(ManualTimeTest, CallbacksRunInTimeOrderWhenTimeReachesThemAndCancelledOnesNever) {
  ManualTime time;
  auto t0 = time.Now();
  std::vector<int> ran;
  time.At(t0 + 30ms, [&] { ran.push_back(3); });
  time.At(t0 + 10ms, [&] {
    ran.push_back(1);
    time.At(time.Now() + 5ms, [&] { ran.push_back(2); });  // scheduled by a callback, due within the step
  });
  uint64_t never = time.At(t0 + 20ms, [&] { ran.push_back(99); });
  EXPECT_TRUE(time.Cancel(never));
  time.Advance(29ms);
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  EXPECT_EQ(time.Now(), t0 + 29ms);
  time.Advance(1ms);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(time.Cancel(never));
}
}  // namespace
}  // namespace flovyn
