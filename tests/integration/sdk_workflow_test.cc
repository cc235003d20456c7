// Coroutine workflows (flovyn/sdk/workflow.h) against a real server and PostgreSQL: the scenarios
// users write, each step durable and replayed.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/sdk/testing.h"
#include "flovyn/sdk/workflow.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

size_t CountType(const std::vector<json>& events, const std::string& type) {
  size_t n = 0;
  for (const auto& e : events) n += e["type"] == type ? 1 : 0;
  return n;
}

struct Order {
  std::string customer;
  int amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order, customer, amount)
struct Receipt {
  int charged = 0;
  std::string parcel;
  std::string receipt_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Receipt, charged, parcel, receipt_id)

Workflow<Receipt> OrderWorkflow(WorkflowContext& ctx, Order in) {
  ctx.State().Set("stage", "charging");
  ctx.SetSearchAttributes({{"customer", in.customer}});
  Receipt r;
  r.charged = co_await ctx.Task<int>("charge", in.amount, flovyn::TaskOptions().Attempts(3).Backoff(100ms));
  r.receipt_id = co_await ctx.Run("receipt-id", [&ctx] { return ctx.Uuid(); });
  co_await ctx.Sleep(300ms);
  ctx.State().Set("stage", "shipping");
  r.parcel = co_await ctx.Task<std::string>("ship", in.customer);
  ctx.State().Clear("stage");
  ctx.State().Set("done", true);
  co_return r;
}

TEST(SdkWorkflowTest, AnOrderRunsTasksWithRetriesATimerAndASideEffectWithTypedInputOutputAndState) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.name = "orders"});
  std::atomic<int> charge_attempts{0};
  worker.RegisterTask("charge", [&charge_attempts](const v1::Task& t) {
    if (++charge_attempts == 1) throw sdk::TaskFailure("gateway timeout");
    return json(json::parse(t.input_json()).get<int>() * 100).dump();
  });
  worker.RegisterTask("ship", [](const v1::Task& t) {
    return json("parcel-for-" + json::parse(t.input_json()).get<std::string>()).dump();
  });
  worker.RegisterWorkflow("order", OrderWorkflow);
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartWorkflow(s, "order", {{"customer", "c-42"}, {"amount", 7}});
  auto w = s.WaitWorkflow("acme", id);
  ASSERT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(w["output"]["charged"], 700);
  EXPECT_EQ(w["output"]["parcel"], "parcel-for-c-42");
  EXPECT_EQ(w["output"]["receipt_id"].get<std::string>().size(), 36u);
  EXPECT_EQ(charge_attempts.load(), 2) << "the first attempt failed and was retried";
  EXPECT_EQ(w["searchAttributes"]["customer"], "c-42") << w.dump();
  auto state = s.RestJson("GET", "/api/tenants/acme/workflows/" + id + "/state");
  EXPECT_EQ(state["state"], json({{"done", true}})) << state.dump();
  auto events = s.Events("acme", id);
  EXPECT_TRUE(DenseHistory(events));
  EXPECT_EQ(CountType(events, "OPERATION_COMPLETED"), 1u) << "the side effect is recorded once";
  EXPECT_EQ(CountType(events, "TASK_SCHEDULED"), 2u);
  EXPECT_EQ(CountType(events, "TIMER_FIRED"), 1u);
  EXPECT_EQ(worker.last_violation(), "");
  worker.Stop();
}

Workflow<json> Approval(WorkflowContext& ctx, json in) {
  int reminders = 0;
  while (true) {
    bool timed_out = false;
    try {
      json decision = co_await ctx.Promise("approval-" + std::to_string(reminders), 400ms);
      co_return json{{"decision", decision}, {"reminders", reminders}};
    } catch (const TimedOut&) {
      timed_out = true;
    }
    if (!timed_out || reminders == in.value("max_reminders", 1)) break;
    co_await ctx.Task("remind", reminders++);
  }
  auto override = co_await ctx.Signal<std::string>("override");
  co_return json{{"decision", override}, {"reminders", reminders}};
}

TEST(SdkWorkflowTest, APromiseWithATimeoutSendsRemindersThenASignalDecides) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  std::atomic<int> reminded{0};
  worker.RegisterTask("remind", [&reminded](const v1::Task&) {
    ++reminded;
    return std::string("null");
  });
  worker.RegisterWorkflow("approval", Approval);
  ASSERT_TRUE(worker.Start().ok());

  // Resolved in time: the first promise carries the decision.
  std::string quick = StartWorkflow(s, "approval", {{"max_reminders", 1}});
  json created = WaitForEvent(s, quick, "PROMISE_CREATED");
  ASSERT_TRUE(created.is_object());
  auto r = s.Rest("POST", "/api/tenants/acme/promises/" + created["promiseId"].get<std::string>() + "/resolve",
                  R"({"value":"yes"})");
  EXPECT_EQ(r.status, 200) << r.body;
  auto wq = s.WaitWorkflow("acme", quick);
  EXPECT_EQ(wq["output"], json({{"decision", "yes"}, {"reminders", 0}})) << wq.dump();

  // Nobody answers: one reminder, a second timeout, then the signal decides.
  std::string slow = StartWorkflow(s, "approval", {{"max_reminders", 1}});
  for (int i = 0; i < 100 && CountType(s.Events("acme", slow), "PROMISE_TIMED_OUT") < 2; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(client.Signal(slow, "override", R"("approved by admin")").ok());
  auto ws = s.WaitWorkflow("acme", slow);
  EXPECT_EQ(ws["output"], json({{"decision", "approved by admin"}, {"reminders", 1}})) << ws.dump();
  EXPECT_EQ(reminded.load(), 1);
  worker.Stop();
}

Workflow<int> Square(WorkflowContext&, int n) {
  if (n < 0) throw std::invalid_argument("negative input " + std::to_string(n));
  co_return n* n;
}

Workflow<json> Parent(WorkflowContext& ctx, json in) {
  // Children, a fan-out of tasks joined, and a helper coroutine run alongside.
  std::vector<Future<int>> kids;
  for (int n : in["children"]) kids.push_back(ctx.Child<int>("square", n));
  json children = json::array();
  for (auto& k : kids) {
    try {
      children.push_back(co_await k);
    } catch (const ChildFailed& e) {
      children.push_back(e.error);
    }
  }
  std::vector<Future<int>> parts;
  for (int i = 0; i < in.value("tasks", 0); ++i) parts.push_back(ctx.Task<int>("inc", i));
  auto counted = ctx.Spawn([](WorkflowContext& c, std::vector<Future<int>> p) -> Workflow<int> {
    int sum = 0;
    for (int v : co_await All(c, std::move(p))) sum += v;
    co_return sum;
  }(ctx, std::move(parts)));
  int sum = co_await counted;
  co_return json{{"children", children}, {"sum", sum}};
}

TEST(SdkWorkflowTest, ChildrenReportOutputsAndFailuresAndAHundredTasksFanOutAndJoin) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.workflow_pollers = 2, .task_pollers = 4});
  worker.RegisterTask("inc", [](const v1::Task& t) { return json(json::parse(t.input_json()).get<int>() + 1).dump(); });
  worker.RegisterWorkflow("square", Square);
  worker.RegisterWorkflow("parent", Parent);
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartWorkflow(s, "parent", {{"children", {3, -1, 5}}, {"tasks", 100}});
  auto w = s.WaitWorkflow("acme", id, 60s);
  ASSERT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(w["output"]["children"], json({9, "negative input -1", 25}));
  EXPECT_EQ(w["output"]["sum"], 5050);
  auto events = s.Events("acme", id);
  EXPECT_EQ(CountType(events, "TASK_SCHEDULED"), 100u);
  EXPECT_EQ(CountType(events, "CHILD_WORKFLOW_FAILED"), 1u);
  worker.Stop();
}

// Version 1 charges, then waits for "go" and ships.
Workflow<std::string> PayV1(WorkflowContext& ctx, json) {
  co_await ctx.Task("charge", 0);
  auto go = co_await ctx.Signal<std::string>("go");
  co_await ctx.Task("ship", 0);
  co_return "shipped " + go;
}
// Version 2 adds a fraud check before charging, behind a patch.
Workflow<std::string> PayV2(WorkflowContext& ctx, json) {
  if (ctx.Patched("fraud-check")) co_await ctx.Task("fraud", 0);
  co_await ctx.Task("charge", 0);
  auto go = co_await ctx.Signal<std::string>("go");
  co_await ctx.Task("ship", 0);
  co_return "shipped " + go;
}
// A broken change: it labels before charging, without a patch.
Workflow<std::string> PayBroken(WorkflowContext& ctx, json) {
  co_await ctx.Task("label", 0);
  co_await ctx.Task("charge", 0);
  co_return "never";
}

std::vector<std::string> TaskKinds(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e["type"] == "TASK_SCHEDULED") out.push_back(e["payload"]["kind"]);
  }
  return out;
}

void RegisterPayTasks(sdk::Worker& w) {
  for (const char* kind : {"charge", "ship", "fraud", "label"}) {
    w.RegisterTask(kind, [](const v1::Task&) { return std::string("null"); });
  }
}

// Starts a "pay" workflow under version 1 and returns once it waits for "go".
std::string StartUnderV1(EngineServer& s, sdk::Client& client) {
  sdk::Worker v1(client, {.name = "v1", .poll_timeout = 500ms});
  RegisterPayTasks(v1);
  v1.RegisterWorkflow("pay", PayV1);
  EXPECT_TRUE(v1.Start().ok());
  std::string id = StartWorkflow(s, "pay", nullptr);
  // Waiting for the signal: the charge is done (a WAITING before that is the wait for the task).
  for (int i = 0; i < 200; ++i) {
    if (s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["status"] == "WAITING" &&
        CountType(s.Events("acme", id), "TASK_COMPLETED") == 1) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(TaskKinds(s.Events("acme", id)), std::vector<std::string>({"charge"}));
  v1.Stop();
  return id;
}

TEST(SdkWorkflowTest, PatchedKeepsARunningExecutionOnItsOldPathWhileNewOnesTakeTheNewOne) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string old_id = StartUnderV1(s, client);
  ASSERT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + old_id)["status"], "WAITING");

  sdk::Worker v2(client, {.name = "v2", .poll_timeout = 500ms});
  RegisterPayTasks(v2);
  v2.RegisterWorkflow("pay", PayV2);
  ASSERT_TRUE(v2.Start().ok());
  std::string new_id = StartWorkflow(s, "pay", nullptr);
  EXPECT_TRUE(client.Signal(old_id, "go", R"("old")").ok());
  auto old_w = s.WaitWorkflow("acme", old_id);
  EXPECT_EQ(old_w["output"], "shipped old") << old_w.dump();
  EXPECT_EQ(TaskKinds(s.Events("acme", old_id)), std::vector<std::string>({"charge", "ship"}));
  for (int i = 0; i < 200 && s.RestJson("GET", "/api/tenants/acme/workflows/" + new_id)["status"] != "WAITING"; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(client.Signal(new_id, "go", R"("new")").ok());
  auto new_w = s.WaitWorkflow("acme", new_id);
  EXPECT_EQ(new_w["output"], "shipped new") << new_w.dump();
  auto events = s.Events("acme", new_id);
  EXPECT_EQ(TaskKinds(events), std::vector<std::string>({"fraud", "charge", "ship"}));
  EXPECT_EQ(events[1]["type"], "OPERATION_COMPLETED");
  EXPECT_EQ(events[1]["payload"]["name"], "patch:fraud-check");
  EXPECT_EQ(v2.last_violation(), "");
  v2.Stop();

  // The testing kit replays the exported histories through each version, as a CI check would.
  json old_history = s.RestJson("GET", "/api/tenants/acme/workflows/" + old_id + "/events");
  json new_history = s.RestJson("GET", "/api/tenants/acme/workflows/" + new_id + "/events");
  EXPECT_TRUE(flovyn::testing::ReplayHistory(MakeWorkflow(PayV1), old_history).ok());
  EXPECT_TRUE(flovyn::testing::ReplayHistory(MakeWorkflow(PayV2), old_history).ok());
  auto v2_new = flovyn::testing::ReplayHistory(MakeWorkflow(PayV2), new_history);
  EXPECT_TRUE(v2_new.ok()) << v2_new.violation;
  EXPECT_TRUE(v2_new.decision.completed) << "the replay reaches the recorded end";
  auto v1_new = flovyn::testing::ReplayHistory(MakeWorkflow(PayV1), new_history);
  EXPECT_NE(v1_new.violation.find("step \"patch:fraud-check\""), std::string::npos) << v1_new.violation;
  auto broken = flovyn::testing::ReplayHistory(MakeWorkflow(PayBroken), old_history);
  EXPECT_NE(broken.violation.find("the code issued task \"label\""), std::string::npos) << broken.violation;
}

TEST(SdkWorkflowTest, ADeterminismViolationIsRefusedAndShownAndAFixedWorkerFinishesTheExecution) {
  // A short workflow lease: stopping the broken worker can cancel a poll the server has just
  // answered with a claim, which then lapses only with the lease.
  EngineServer s({.env = {{"ENGINE__PROBLEM_RETRY_MS", "300"},
                          {"ENGINE__POLL_SWEEP_MS", "100"},
                          {"ENGINE__WORKFLOW_LEASE_MS", "2000"}}});
  sdk::Client client(s.ClientFor("acme"));
  std::string id = StartUnderV1(s, client);
  auto before = s.Events("acme", id);

  sdk::Worker broken(client, {.name = "broken", .poll_timeout = 500ms});
  RegisterPayTasks(broken);
  broken.RegisterWorkflow("pay", PayBroken);
  ASSERT_TRUE(broken.Start().ok());
  EXPECT_TRUE(client.Signal(id, "go", R"("at last")").ok());
  json w;
  for (int i = 0; i < 200; ++i) {
    w = s.RestJson("GET", "/api/tenants/acme/workflows/" + id);
    if (w["problem"].is_object()) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(w["problem"].is_object()) << w.dump();
  std::string message = w["problem"]["message"];
  EXPECT_NE(message.find("step 1: the history holds task \"charge\" (TASK_SCHEDULED, sequence 2)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("the code issued task \"label\""), std::string::npos) << message;
  EXPECT_NE(w["status"], "FAILED");
  std::this_thread::sleep_for(800ms);  // handed out again and refused again: still nothing changes
  broken.Stop();
  EXPECT_EQ(broken.last_violation(), message);
  auto during = s.Events("acme", id);
  ASSERT_EQ(during.size(), before.size() + 1) << "only the signal was appended";
  EXPECT_EQ(during.back()["type"], "SIGNAL_RECEIVED");

  sdk::Worker fixed(client, {.name = "fixed", .poll_timeout = 500ms});
  RegisterPayTasks(fixed);
  fixed.RegisterWorkflow("pay", PayV1);
  ASSERT_TRUE(fixed.Start().ok());
  auto done = s.WaitWorkflow("acme", id);
  EXPECT_EQ(done["status"], "COMPLETED") << done.dump();
  EXPECT_EQ(done["output"], "shipped at last");
  EXPECT_TRUE(done["problem"].is_null()) << "the problem goes with the next submit";
  fixed.Stop();
}

TEST(SdkWorkflowTest, AWorkflowLeftMidwayByItsWorkerIsFinishedByAnotherThroughReplay) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string id = StartUnderV1(s, client);  // that worker is gone, its workflow half done
  sdk::Worker other(client, {.name = "other", .poll_timeout = 500ms});
  RegisterPayTasks(other);
  other.RegisterWorkflow("pay", PayV1);
  ASSERT_TRUE(other.Start().ok());
  EXPECT_TRUE(client.Signal(id, "go", R"("by another")").ok());
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["output"], "shipped by another") << w.dump();
  EXPECT_EQ(TaskKinds(s.Events("acme", id)), std::vector<std::string>({"charge", "ship"})) << "charged once";
  other.Stop();
}

std::atomic<bool> g_crunch_saw_cancel{false};

// A long task as a plain function: it heartbeats, reports progress, and stops once cancelled.
int Crunch(sdk::TaskContext& t, int beats) {
  for (int i = 0; i < beats; ++i) {
    if (!t.Progress({{"beat", i}}) || !t.Heartbeat()) {
      g_crunch_saw_cancel = true;
      return -1;
    }
    std::this_thread::sleep_for(20ms);
  }
  return beats;
}

Workflow<std::string> Cruncher(WorkflowContext& ctx, json) {
  bool cancelled = false;
  try {
    co_await ctx.Task<int>("crunch", 1000);
  } catch (const Cancelled&) {
    cancelled = true;
  }
  if (!cancelled) co_return "crunched";
  co_await ctx.Task("cleanup", 0);
  co_return "cleaned up";
}

TEST(SdkWorkflowTest, ATaskCancelledWhileRunningLearnsFromItsHeartbeatAndTheWorkflowCompensates) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.task_pollers = 2});
  worker.RegisterTask("crunch", Crunch);
  worker.RegisterTask("cleanup", [](const v1::Task&) { return std::string("null"); });
  worker.RegisterWorkflow("cruncher", Cruncher);
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartWorkflow(s, "cruncher", nullptr);
  json scheduled = WaitForEvent(s, id, "TASK_STARTED");
  ASSERT_TRUE(scheduled.is_object());
  std::string task = scheduled["taskId"];
  for (int i = 0; i < 100 && s.RestJson("GET", "/api/tenants/acme/tasks/" + task)["progress"].is_null(); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(s.RestJson("GET", "/api/tenants/acme/tasks/" + task)["progress"].contains("beat"));
  auto r = s.Rest("POST", "/api/tenants/acme/tasks/" + task + "/cancel", R"({"reason":"not needed"})");
  EXPECT_EQ(r.status, 202) << r.body;
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["output"], "cleaned up") << w.dump();
  for (int i = 0; i < 100 && !g_crunch_saw_cancel; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(g_crunch_saw_cancel.load()) << "the running task saw the cancellation at its next heartbeat";
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/tasks/" + task)["status"], "CANCELLED");
  worker.Stop();
}

// A long-lived subscription driven by signals: every three events it continues as a new run
// carrying its total, so no run's history grows without bound.
Workflow<json> Subscription(WorkflowContext& ctx, json in) {
  int total = in.value("total", 0);
  int run = in.value("run", 1);
  for (int i = 0; i < 3; ++i) {
    json ev = co_await ctx.Signal("event");
    if (ev.value("op", "") == "stop") co_return json{{"total", total}, {"runs", run}};
    total += ev.value("amount", 0);
    ctx.State().Set("total", total);
  }
  json next = {{"total", total}, {"run", run + 1}};
  co_await ctx.ContinueAsNew(next);
  co_return nullptr;  // not reached
}

Workflow<json> Subscriber(WorkflowContext& ctx, json) {
  json last = co_await ctx.Child("subscription", json::object());
  co_return json{{"child", last}};
}

// Waits until execution `id` is COMPLETED as continued; returns the next run's id.
std::string NextRun(EngineServer& s, const std::string& id) {
  auto w = s.WaitWorkflow("acme", id);
  return w["output"].value("continuedAsNew", "");
}

TEST(SdkWorkflowTest, ASubscriptionContinuesAsNewRunsLinkedBothWaysAndItsParentGetsTheLastRunsOutput) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.workflow_pollers = 2});
  worker.RegisterWorkflow("subscription", Subscription);
  worker.RegisterWorkflow("subscriber", Subscriber);
  ASSERT_TRUE(worker.Start().ok());
  std::string parent = StartWorkflow(s, "subscriber", nullptr);
  json scheduled = WaitForEvent(s, parent, "CHILD_WORKFLOW_SCHEDULED");
  ASSERT_TRUE(scheduled.is_object());
  std::string run1 = scheduled["childId"];
  for (int amount : {1, 2, 3}) EXPECT_TRUE(client.Signal(run1, "event", json{{"amount", amount}}.dump()).ok());
  std::string run2 = NextRun(s, run1);
  ASSERT_FALSE(run2.empty());
  auto first = s.Events("acme", run1);
  ASSERT_GE(first.size(), 2u);
  EXPECT_EQ(first[first.size() - 2]["type"], "WORKFLOW_CONTINUED_AS_NEW");
  EXPECT_EQ(first[first.size() - 2]["payload"]["executionId"], run2);
  EXPECT_EQ(first.back()["type"], "WORKFLOW_COMPLETED");
  auto second = s.Events("acme", run2);
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second[0]["payload"]["continuedFrom"], run1);
  EXPECT_EQ(second[0]["payload"]["input"], json({{"total", 6}, {"run", 2}}));
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + run2)["parentId"], parent);
  EXPECT_NE(s.RestJson("GET", "/api/tenants/acme/workflows/" + parent)["status"], "COMPLETED")
      << "the parent waits for the last run, not the first";
  EXPECT_TRUE(client.Signal(run2, "event", R"({"amount":4})").ok());
  EXPECT_TRUE(client.Signal(run2, "event", R"({"op":"stop"})").ok());
  auto done = s.WaitWorkflow("acme", parent);
  EXPECT_EQ(done["output"], json({{"child", {{"total", 10}, {"runs", 2}}}})) << done.dump();
  worker.Stop();
}

// A reminder a month out, then a week later a second one unless a signal came.
Workflow<json> Reminder(WorkflowContext& ctx, json) {
  co_await ctx.Sleep(std::chrono::hours(24 * 30));
  co_await ctx.Task("remind", 1);
  bool answered = false;
  try {
    co_await ctx.Promise("answer", std::chrono::hours(24 * 7));
    answered = true;
  } catch (const TimedOut&) {
  }
  if (!answered) co_await ctx.Task("remind", 2);
  co_return json{{"answered", answered}};
}

TEST(SdkWorkflowTest, TimeSkippingRunsAThirtyDayReminderAndAWeekLongPromiseTimeoutAtOnce) {
  EngineServer s({.env = {{"ENGINE__ALLOW_TIME_SKIPPING", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterTask("remind", [](const v1::Task&) { return std::string("null"); });
  worker.RegisterWorkflow("reminder", Reminder);
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartWorkflow(s, "reminder", nullptr);
  std::vector<v1::WorkflowEvent> history;
  auto t0 = std::chrono::steady_clock::now();
  auto status = flovyn::testing::RunSkippingTime(client, id, &history);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["output"], json({{"answered", false}})) << w.dump();
  auto events = s.Events("acme", id);
  EXPECT_EQ(CountType(events, "TIMER_FIRED"), 1u);
  EXPECT_EQ(CountType(events, "PROMISE_TIMED_OUT"), 1u);
  EXPECT_EQ(CountType(events, "TASK_SCHEDULED"), 2u);
  worker.Stop();

  // A server without the setting refuses, naming it, and nothing fires.
  EngineServer prod;
  sdk::Client other(prod.ClientFor("acme"));
  std::string waiting = StartWorkflow(prod, "reminder", nullptr);
  auto refused = other.SkipTime(waiting);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("engine.allow_time_skipping"), std::string::npos) << refused.error_message();
}

TEST(SdkWorkflowTest, AProblemReportOverTheTextLimitIsRefusedNamingItAndRecordsNothing) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string id = StartWorkflow(s, "pay", nullptr);
  auto held = ClaimNextWorkflow(client);
  v1::ReportWorkflowProblemRequest report;
  report.set_worker_id(held.worker_id);
  report.set_execution_id(id);
  report.set_expected_sequence(1);
  report.set_message(std::string(1 << 20, 'x'));
  auto refused = client.ReportProblem(report);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("message"), std::string::npos) << refused.error_message();
  EXPECT_TRUE(s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["problem"].is_null());
  report.set_message("a short one");
  EXPECT_TRUE(client.ReportProblem(report).ok());
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["problem"]["message"], "a short one");
}

}  // namespace
}  // namespace flovyn::testing
