// Group commit in the store: concurrent units share one transaction, each caller gets its own
// result after that commit, and a unit that fails takes nothing of itself or of its group into
// the database (the group rolls back and every unit runs again alone).
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/sql.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/model/status.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;

class GroupCommitTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    // A group waits 200 ms for company: threads started together land in one group.
    store_ = std::make_unique<Store>(
        *pool_, notifier_,
        StoreOptions{
            .group_commit_max = 64, .group_commit_lanes = 1, .group_commit_window = std::chrono::milliseconds(200)});
  }

  // `n` standalone tasks on queue "g", claimed by the worker.
  std::vector<TaskClaim> HeldTasks(int n) {
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(store_->SubmitTask(tenant_, {.kind = "charge", .queue = "g", .input_json = std::to_string(i)}).ok());
    }
    auto claims = store_->ClaimTasks(tenant_, worker_, "g", {"charge"}, n);
    EXPECT_TRUE(claims.ok());
    EXPECT_EQ(claims->size(), static_cast<size_t>(n));
    return *claims;
  }

  // A call completing each of `held` with `output`.
  std::vector<std::function<Status()>> Completions(const std::vector<TaskClaim>& held, const std::string& output) {
    std::vector<std::function<Status()>> calls;
    for (const auto& c : held) {
      calls.push_back(
          [this, output, id = c.task.id] { return store_->CompleteTask(tenant_, worker_, TaskId(id), 1, output); });
    }
    return calls;
  }

  // Runs `calls` on threads of their own, started together; their results in order.
  std::vector<Status> Together(const std::vector<std::function<Status()>>& calls) {
    std::vector<Status> out(calls.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < calls.size(); ++i) threads.emplace_back([&, i] { out[i] = calls[i](); });
    for (auto& t : threads) t.join();
    return out;
  }

  std::string StatusOf(const std::string& task) {
    return Sql("SELECT status FROM task_executions WHERE id = $1", {task});
  }
};

TEST_F(GroupCommitTest, ConcurrentCompletionsShareOneCommitAndEachCallerGetsItsAnswer) {
  auto held = HeldTasks(8);
  auto before = store_->group_stats();
  std::vector<std::function<Status()>> calls;
  for (const auto& c : held) {
    calls.push_back([&, id = c.task.id] { return store_->CompleteTask(tenant_, worker_, TaskId(id), 1, "true"); });
  }
  for (const auto& s : Together(calls)) EXPECT_TRUE(s.ok()) << s.ToString();
  auto after = store_->group_stats();
  EXPECT_EQ(after.units - before.units, 8);
  EXPECT_LE(after.commits - before.commits, 2) << "8 completions arriving together share commits";
  EXPECT_EQ(after.reruns, before.reruns);
  for (const auto& c : held) EXPECT_EQ(StatusOf(c.task.id), "COMPLETED");
  // Without grouping each unit commits alone (group_commit_max 1): the counters do not move.
  store_ = std::make_unique<Store>(*pool_, notifier_, StoreOptions{.group_commit_max = 1});
  auto more = HeldTasks(2);
  EXPECT_TRUE(store_->CompleteTask(tenant_, worker_, TaskId(more[0].task.id), 1, "true").ok());
  EXPECT_EQ(store_->group_stats().units, 0);
}

TEST_F(GroupCommitTest, ARefusedCompletionInAGroupChangesNothingAndTheOthersCommit) {
  auto held = HeldTasks(4);
  std::vector<std::function<Status()>> calls;
  for (size_t i = 0; i < held.size(); ++i) {
    int attempt = i == 2 ? 7 : 1;  // the third is for an attempt the worker does not hold
    calls.push_back([&, id = held[i].task.id, attempt] {
      return store_->CompleteTask(tenant_, worker_, TaskId(id), attempt, "1");
    });
  }
  auto results = Together(calls);
  for (size_t i = 0; i < held.size(); ++i) {
    if (i == 2) {
      EXPECT_EQ(results[i].code(), StatusCode::kAborted) << results[i].ToString();
      EXPECT_EQ(StatusOf(held[i].task.id), "RUNNING");
    } else {
      EXPECT_TRUE(results[i].ok()) << results[i].ToString();
      EXPECT_EQ(StatusOf(held[i].task.id), "COMPLETED");
    }
  }
  EXPECT_GE(store_->group_stats().reruns, 2) << "the group rolled back and its units ran alone";
}

TEST_F(GroupCommitTest, AUnitThatWritesThenFailsLeavesNoWriteBehindWhileItsGroupCommits) {
  auto held = HeldTasks(3);
  auto calls = Completions(held, "2");
  calls.push_back([&] {
    return store_->RunGrouped(
        [&](Unit& u) -> Status {
          RETURN_IF_ERROR(u.Exec("UPDATE tenants SET name = 'changed' WHERE id = $1", {tenant_.str()}).status());
          u.Wake(tenant_, "never", WorkKind::kTask);
          return FailedPrecondition("this unit refuses after writing");
        },
        "");
  });
  auto results = Together(calls);
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].ToString();
    EXPECT_EQ(StatusOf(held[i].task.id), "COMPLETED");
  }
  EXPECT_EQ(results.back().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Sql("SELECT name FROM tenants WHERE id = $1", {tenant_.str()}), "Acme");
  EXPECT_FALSE(notifier_.Woke(WorkKey(tenant_, "never", WorkKind::kTask))) << "a refused unit wakes nobody";
}

// A unit's last statement may go out only with its group's COMMIT (deferred): when it fails there,
// the COMMIT never ran, so the group's units run again alone and the others commit.
TEST_F(GroupCommitTest, AUnitWhoseDeferredStatementFailsAtTheCommitLeavesTheOthersToCommit) {
  auto held = HeldTasks(3);
  auto calls = Completions(held, "2");
  calls.push_back([&] {
    return store_->RunGrouped(
        [&](Unit& u) {
          return u.Defer("UPDATE tenants SET name = $1::int::text WHERE id = $2", {"x", tenant_.str()});
        },
        "~ last of its group: ordered after every task id");
  });
  auto before = store_->group_stats();
  auto results = Together(calls);
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].ToString();
    EXPECT_EQ(StatusOf(held[i].task.id), "COMPLETED");
  }
  EXPECT_FALSE(results.back().ok());
  EXPECT_EQ(Sql("SELECT name FROM tenants WHERE id = $1", {tenant_.str()}), "Acme");
  EXPECT_EQ(store_->group_stats().reruns - before.reruns, 4) << "the group ran again, each unit alone";
}

TEST_F(GroupCommitTest, WakeUpsOfAGroupAreSentAfterItsCommit) {
  std::vector<std::function<Status()>> calls;
  for (const std::string queue : {"a", "b", "c"}) {
    calls.push_back([&, queue] { return store_->SubmitTask(tenant_, {.kind = "charge", .queue = queue}).status(); });
  }
  for (const auto& s : Together(calls)) EXPECT_TRUE(s.ok()) << s.ToString();
  for (const std::string queue : {"a", "b", "c"}) {
    EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, queue, WorkKind::kTask))) << queue;
    EXPECT_EQ(Sql("SELECT count(*) FROM task_executions WHERE queue = $1", {queue}), "1");
  }
}

// RunGroupedThen (SubmitTaskThen): the caller's thread is free at once while a lane is busy, and
// the answer comes from the thread that committed the group, after the commit. Units nobody waits
// for at the queue's front are led by whoever committed last, so none is left behind.
TEST_F(GroupCommitTest, ACallerThatDoesNotWaitIsFreeAtOnceAndAnsweredAfterItsGroupCommits) {
  store_ = std::make_unique<Store>(
      *pool_, notifier_,
      StoreOptions{
          .group_commit_max = 2, .group_commit_lanes = 1, .group_commit_window = std::chrono::milliseconds(200)});
  struct Answer {
    std::mutex mu;
    std::optional<StatusOr<TaskId>> id;
    std::thread::id thread;
  };
  std::vector<std::unique_ptr<Answer>> answers;
  std::thread leader([&] { EXPECT_TRUE(store_->SubmitTask(tenant_, {.kind = "charge", .queue = "t"}).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the leader holds the one lane
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    auto* a = answers.emplace_back(std::make_unique<Answer>()).get();
    store_->SubmitTaskThen(tenant_, {.kind = "charge", .queue = "t"}, [a](StatusOr<TaskId> id) {
      std::lock_guard<std::mutex> l(a->mu);
      a->id = std::move(id);
      a->thread = std::this_thread::get_id();
    });
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(100)) << "returned at once";
  for (auto& a : answers) {
    std::lock_guard<std::mutex> l(a->mu);
    EXPECT_FALSE(a->id.has_value()) << "not answered before its commit";
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM task_executions WHERE queue = 't'"), "0");
  // The leader commits itself and the first of them (a group of 2), then leads the other two.
  leader.join();
  for (auto& a : answers) {
    std::lock_guard<std::mutex> l(a->mu);
    ASSERT_TRUE(a->id.has_value());
    ASSERT_TRUE(a->id->ok()) << a->id->status().ToString();
    EXPECT_EQ(Sql("SELECT status FROM task_executions WHERE id = $1", {a->id->value().str()}), "PENDING");
    EXPECT_NE(a->thread, std::this_thread::get_id());
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM task_executions WHERE queue = 't'"), "4");
  EXPECT_EQ(store_->group_stats().commits, 2);
}

// The queue of units nobody waits for is bounded (group_commit_queue_max): past it a caller waits
// for its commit on its own thread, as RunGrouped's do, so calls in flight cannot grow the queue
// without end while the database is slow. Each is still answered after its commit.
TEST_F(GroupCommitTest, PastTheQueueBoundACallerWaitsForItsCommitInsteadOfQueueingMore) {
  store_ = std::make_unique<Store>(
      *pool_, notifier_, StoreOptions{.group_commit_max = 64, .group_commit_lanes = 1, .group_commit_queue_max = 3});
  // The one lane is held by a unit that waits for an advisory lock this test holds.
  auto holder = pool_->Acquire();
  ASSERT_TRUE(holder.ok());
  auto far = db::Clock::now() + std::chrono::seconds(30);
  ASSERT_TRUE((*holder)->ExecSimple("SELECT pg_advisory_lock(4242)", far).ok());
  std::thread leader([&] {
    EXPECT_TRUE(
        store_->RunGrouped([](Unit& u) { return u.Exec("SELECT pg_advisory_xact_lock(4242)").status(); }, "").ok());
  });
  for (int i = 0; i < 500 && Sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") != "1";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::atomic<int> answered{0};
  auto insert = [&](int i) {
    return [i, tenant_id = tenant_.str()](Unit& u) {
      return u.Exec("UPDATE tenants SET name = name || $1 WHERE id = $2", {std::to_string(i), tenant_id}).status();
    };
  };
  // Three are queued and the caller is free at once.
  for (int i = 0; i < 3; ++i) {
    store_->RunGroupedThen(insert(i), "", [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++answered;
    });
  }
  EXPECT_EQ(store_->group_stats().waited, 0);
  // The fourth finds the queue full: it waits for its own commit instead of queueing.
  std::atomic<bool> returned{false};
  std::thread fourth([&] {
    store_->RunGroupedThen(insert(3), "", [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++answered;
    });
    returned = true;
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (store_->group_stats().waited != 1 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(store_->group_stats().waited, 1) << "the fourth caller was counted as waiting";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(returned.load()) << "the caller past the bound holds its thread until its commit";
  EXPECT_EQ(answered.load(), 0) << "nobody is answered before its commit";
  ASSERT_TRUE((*holder)->ExecSimple("SELECT pg_advisory_unlock(4242)", far).ok());
  leader.join();
  fourth.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(answered.load(), 4);
  EXPECT_EQ(store_->group_stats().waited, 1);
  EXPECT_EQ(store_->group_stats().units, 5);
}

}  // namespace
}  // namespace flovyn::testing
