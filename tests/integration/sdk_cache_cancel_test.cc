// The worker's cache of live workflows (sticky executions, incremental history) and cancellation
// from the code's side: cancelling its own tasks and children, and a graceful cancellation of the
// workflow that the code catches to compensate. Against a real server and PostgreSQL.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/sdk/workflow.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string Echo(const v1::Task& t) { return t.input_json(); }

// `steps` tasks one after the other: one activation per step.
Workflow<int> Steps(WorkflowContext& ctx, int steps) {
  int sum = 0;
  for (int i = 0; i < steps; ++i) sum += co_await ctx.Task<int>("echo", i);
  co_return sum;
}

TEST(SdkCacheTest, AKeptWorkflowRunsOnFromItsNewEventsAndOtherWorkersLeaveItToItsWorker) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker a(client, {.name = "a"}), b(client, {.name = "b"});
  for (auto* w : {&a, &b}) {
    w->RegisterTask("echo", Echo);
    w->RegisterWorkflow("steps", Steps);
    ASSERT_TRUE(w->Start().ok());
  }
  std::string id = StartWorkflow(s, "steps", 20);
  auto done = s.WaitWorkflow("acme", id);
  ASSERT_EQ(done["status"], "COMPLETED") << done.dump();
  EXPECT_EQ(done["output"], 190);
  uint64_t a_runs = a.full_replays() + a.cached_activations(), b_runs = b.full_replays() + b.cached_activations();
  // 21 activations (the start and one per task result), all on the worker that took the first.
  EXPECT_EQ(a_runs + b_runs, 21u);
  EXPECT_TRUE((a_runs == 21 && b_runs == 0) || (a_runs == 0 && b_runs == 21)) << a_runs << " / " << b_runs;
  EXPECT_EQ(a.full_replays() + b.full_replays(), 1u) << "only the first activation replays (from the start)";
  EXPECT_EQ(a.cached_workflows() + b.cached_workflows(), 0u) << "a finished workflow leaves the cache";
  a.Stop();
  b.Stop();
}

TEST(SdkWorkerTest, OnWorkflowClosedRunsOnceAWorkflowsEndIsRecordedForCoroutinesAndDecidersAlike) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::mutex mu;
  std::vector<std::string> closed;
  std::vector<std::string> status_when_told;  // what the server holds at the moment the hook runs
  auto hook = [&](const std::string& id) {
    auto w = s.RestJson("GET", "/api/tenants/acme/workflows/" + id);
    std::lock_guard<std::mutex> l(mu);
    closed.push_back(id);
    status_when_told.push_back(w["status"].get<std::string>());
  };
  sdk::Worker worker(client, {.name = "w", .queue = "default", .on_workflow_closed = hook});
  worker.RegisterTask("echo", Echo);
  worker.RegisterWorkflow("steps", Steps);
  worker.RegisterWorkflow("decider", [](const sdk::History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_COMPLETED") == 0 && h.Count("TASK_SCHEDULED") == 0) {
      return {sdk::ScheduleTask("echo", "1"), sdk::Suspend()};
    }
    if (h.Count("TASK_COMPLETED") == 0) return {sdk::Suspend()};
    return {sdk::Fail("done on purpose")};
  });
  ASSERT_TRUE(worker.Start().ok());
  std::string a = StartWorkflow(s, "steps", 3);
  std::string b = StartWorkflow(s, "decider", 0);
  ASSERT_EQ(s.WaitWorkflow("acme", a)["status"], "COMPLETED");
  ASSERT_EQ(s.WaitWorkflow("acme", b)["status"], "FAILED");
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (closed.size() >= 2) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  worker.Stop();
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(closed.size(), 2u) << "once per workflow, not per activation";
  EXPECT_EQ(std::set<std::string>(closed.begin(), closed.end()), (std::set<std::string>{a, b}));
  for (size_t i = 0; i < closed.size(); ++i) {
    EXPECT_EQ(status_when_told[i], closed[i] == a ? "COMPLETED" : "FAILED") << "told only after the end is recorded";
  }
}

TEST(SdkCacheTest, WithoutACacheEveryActivationReplaysTheWholeHistory) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker w(client, {.workflow_cache_size = 0});
  w.RegisterTask("echo", Echo);
  w.RegisterWorkflow("steps", Steps);
  ASSERT_TRUE(w.Start().ok());
  std::string id = StartWorkflow(s, "steps", 5);
  ASSERT_EQ(s.WaitWorkflow("acme", id)["output"], 10);
  EXPECT_EQ(w.full_replays(), 6u);
  EXPECT_EQ(w.cached_activations(), 0u);
  w.Stop();
}

TEST(SdkCacheTest, AnEvictedWorkflowIsReplayedFromTheWholeHistoryAndTheCacheStaysWithinItsSize) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  // Room for one: three workflows in turn push each other out. Their steps take a while, so the
  // workflows run side by side (a worker carries a workflow from one step to the next on one
  // thread: without that, each would run through alone and never find itself evicted).
  sdk::Worker w(client, {.workflow_pollers = 2, .task_pollers = 2, .workflow_cache_size = 1});
  w.RegisterTask("echo", [](const v1::Task& t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return t.input_json();
  });
  w.RegisterWorkflow("steps", Steps);
  ASSERT_TRUE(w.Start().ok());
  std::vector<std::string> ids = {StartWorkflow(s, "steps", 8), StartWorkflow(s, "steps", 8),
                                  StartWorkflow(s, "steps", 8)};
  for (const auto& id : ids) {
    auto done = s.WaitWorkflow("acme", id);
    EXPECT_EQ(done["status"], "COMPLETED") << done.dump();
    EXPECT_EQ(done["output"], 28);
  }
  EXPECT_GT(w.full_replays(), 3u) << "evicted workflows came back and were replayed from their whole history";
  EXPECT_EQ(w.full_replays() + w.cached_activations(), 27u);
  EXPECT_LE(w.cached_workflows(), 1u);
  w.Stop();
}

TEST(SdkCacheTest, AWorkflowKeptByAStoppedWorkerGoesToAnotherAfterTheStickyWindow) {
  EngineServer s({.env = {{"ENGINE__STICKY_MS", "1000"}}});
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker first(client, {.name = "first"});
  first.RegisterWorkflow("steps", Steps);
  ASSERT_TRUE(first.Start().ok());
  std::string id = StartWorkflow(s, "steps", 3);
  ASSERT_TRUE(WaitForEvent(s, id, "TASK_SCHEDULED").is_object());
  first.Stop();  // keeps it, then leaves
  sdk::Worker second(client, {.name = "second"});
  second.RegisterTask("echo", Echo);
  second.RegisterWorkflow("steps", Steps);
  ASSERT_TRUE(second.Start().ok());
  auto done = s.WaitWorkflow("acme", id);
  EXPECT_EQ(done["status"], "COMPLETED") << done.dump();
  EXPECT_EQ(done["output"], 3);
  EXPECT_GE(second.full_replays(), 1u) << "the second worker had nothing kept: it replayed the history";
  second.Stop();
}

// ---------------------------------------------------------------------------- cancellation

// Races a task no worker runs, a child that waits for a signal, and a short timer: the timer
// wins, and the task and the child are cancelled on the server; the racer, still running, hears
// that its child ended CANCELLED.
Workflow<json> Racer(WorkflowContext& ctx, json) {
  std::vector<Future<Json>> racers;
  racers.push_back(ctx.Task("never", 1));
  racers.push_back(ctx.Child("waiter", nullptr));
  racers.push_back(Future<Json>(ctx.Sleep(300ms).state()));
  size_t winner = co_await FirstOf(ctx, racers);
  co_await ctx.Sleep(100ms);  // still open when the cancelled child reports back
  co_return json{{"winner", winner}};
}

Workflow<json> Waiter(WorkflowContext& ctx, json) { co_return co_await ctx.Signal("go"); }

TEST(SdkCancelTest, TheLosersOfARaceAreCancelledOnTheServerTheTaskAndTheChildAlike) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker w(client, {.workflow_pollers = 2});
  w.RegisterWorkflow("racer", Racer);
  w.RegisterWorkflow("waiter", Waiter);
  ASSERT_TRUE(w.Start().ok());
  std::string id = StartWorkflow(s, "racer", nullptr);
  auto done = s.WaitWorkflow("acme", id);
  ASSERT_EQ(done["status"], "COMPLETED") << done.dump();
  EXPECT_EQ(done["output"]["winner"], 2);
  auto events = s.Events("acme", id);
  auto scheduled = PayloadsOf(events, "TASK_SCHEDULED");
  ASSERT_EQ(scheduled.size(), 1u);
  auto task = s.RestJson("GET", "/api/tenants/acme/tasks/" + scheduled[0]["taskId"].get<std::string>());
  EXPECT_EQ(task["status"], "CANCELLED") << task.dump();
  auto children = PayloadsOf(events, "CHILD_WORKFLOW_SCHEDULED");
  ASSERT_EQ(children.size(), 1u);
  auto child = s.WaitWorkflow("acme", children[0]["childId"]);
  EXPECT_EQ(child["status"], "CANCELLED") << child.dump();
  // Both cancellations are in the racer's history; its code had moved on.
  EXPECT_EQ(PayloadsOf(events, "TASK_CANCELLED").size(), 1u);
  auto child_failed = PayloadsOf(events, "CHILD_WORKFLOW_FAILED");
  ASSERT_EQ(child_failed.size(), 1u);
  EXPECT_EQ(child_failed[0]["status"], "CANCELLED");
  EXPECT_EQ(w.last_violation(), "");
  w.Stop();
}

// Books a room and waits for payment; a cancellation is caught, the booking released, and the
// cancellation goes on (the execution ends CANCELLED).
Workflow<json> Booking(WorkflowContext& ctx, json) {
  const std::string wanted = "room-7";
  std::string room = co_await ctx.Task<std::string>("book", wanted);
  bool cancelled = false;
  try {
    co_await ctx.Task("await-payment", room);
  } catch (const Cancelled&) {
    cancelled = true;
  }
  if (cancelled) {
    co_await ctx.Task("release", room);
    throw Cancelled("booking cancelled, " + room + " released");
  }
  co_return json{{"room", room}};
}

TEST(SdkCancelTest, AGracefulCancellationReachesTheCodeWhichCompensatesAndEndsCancelled) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker w(client, {});
  std::atomic<int> released{0};
  w.RegisterTask("book", Echo);
  w.RegisterTask("release", [&released](const v1::Task&) {
    ++released;
    return std::string("null");
  });
  w.RegisterWorkflow("booking", Booking);  // nobody runs "await-payment"
  ASSERT_TRUE(w.Start().ok());
  std::string id = StartWorkflow(s, "booking", nullptr);
  json payment;
  for (int i = 0; i < 200 && payment.is_null(); ++i) {
    for (const auto& p : PayloadsOf(s.Events("acme", id), "TASK_SCHEDULED")) {
      if (p["kind"] == "await-payment") payment = p;
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(payment.is_object());
  auto r =
      s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel", R"({"reason":"customer left","graceMs":60000})");
  EXPECT_EQ(r.status, 202) << r.body;
  auto done = s.WaitWorkflow("acme", id);
  EXPECT_EQ(done["status"], "CANCELLED") << done.dump();
  EXPECT_EQ(released.load(), 1) << "the code compensated before ending";
  auto events = s.Events("acme", id);
  auto requested = PayloadsOf(events, "CANCELLATION_REQUESTED");
  ASSERT_EQ(requested.size(), 1u);
  EXPECT_EQ(requested[0]["reason"], "customer left");
  EXPECT_EQ(requested[0]["graceMs"], 60000);
  auto ended = PayloadsOf(events, "WORKFLOW_CANCELLED");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["error"], "booking cancelled, room-7 released");
  auto task = s.RestJson("GET", "/api/tenants/acme/tasks/" + payment["taskId"].get<std::string>());
  EXPECT_EQ(task["status"], "CANCELLED") << "the step it waited for was cancelled on the server";
  w.Stop();
}

// Catches the cancellation and waits on regardless.
Workflow<json> Stubborn(WorkflowContext& ctx, json) {
  for (;;) {
    try {
      co_await ctx.Signal("never");
    } catch (const Cancelled&) {
    }
    if (ctx.CancelRequested()) co_await ctx.Sleep(24h);
  }
}

TEST(SdkCancelTest, CodeThatIgnoresAGracefulCancellationIsCancelledOutrightWhenTheGracePeriodEnds) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker w(client, {});
  w.RegisterWorkflow("stubborn", Stubborn);
  ASSERT_TRUE(w.Start().ok());
  std::string id = StartWorkflow(s, "stubborn", nullptr);
  ASSERT_TRUE(WaitForEvent(s, id, "WORKFLOW_STARTED").is_object());
  auto r = s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel", R"({"graceMs":2000})");
  EXPECT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(WaitForEvent(s, id, "TIMER_STARTED").is_object()) << "the code saw the request and went on";
  EXPECT_NE(s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["status"], "CANCELLED");
  auto done = s.WaitWorkflow("acme", id);
  EXPECT_EQ(done["status"], "CANCELLED") << done.dump();
  auto requested = PayloadsOf(s.Events("acme", id), "CANCELLATION_REQUESTED");
  ASSERT_EQ(requested.size(), 2u);
  EXPECT_EQ(requested[1]["reason"], "the cancellation's grace period ended");
  w.Stop();
}

TEST(SdkCancelTest, AGracePeriodOverTheDurationLimitIsRefusedNamingItAndChangesNothing) {
  EngineServer s;
  std::string id = StartWorkflow(s, "nobody-runs-this", nullptr);
  auto r = s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel", R"({"graceMs":999999999999})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("max_duration_ms"), std::string::npos) << r.body;
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["status"], "PENDING");
  EXPECT_TRUE(PayloadsOf(s.Events("acme", id), "CANCELLATION_REQUESTED").empty());
}

}  // namespace
}  // namespace flovyn::testing
