// The engine end to end: a real server, real PostgreSQL, workers built on the C++ SDK.
#include <signal.h>

#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using sdk::History;

std::vector<std::string> Types(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["type"]);
  return out;
}

json Payload(const v1::WorkflowEvent* e) { return json::parse(e->payload_json()); }

std::string StartRest(EngineServer& s, const std::string& kind, const json& input, const std::string& key = "") {
  json body = {{"kind", kind}, {"input", input}};
  if (!key.empty()) body["idempotencyKey"] = key;
  auto j = s.RestJson("POST", "/api/tenants/acme/workflows", body.dump());
  return j.value("id", "");
}

TEST(EngineWorkflowTest, TwoTasksInSequenceCompleteWithTheRightOutputAndADenseHistory) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.name = "w1"});
  worker.RegisterTask("add", [](const v1::Task& t) {
    auto in = json::parse(t.input_json());
    return json{{"sum", in["a"].get<int>() + in["b"].get<int>()}}.dump();
  });
  worker.RegisterTask("double", [](const v1::Task& t) {
    return json{{"value", json::parse(t.input_json())["value"].get<int>() * 2}}.dump();
  });
  worker.RegisterWorkflow("math", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    auto done = h.OfType("TASK_COMPLETED");
    if (h.Count("TASK_SCHEDULED") == 0) return {sdk::ScheduleTask("add", sdk::History(h).Input()), sdk::Suspend()};
    if (done.size() == 1 && h.Count("TASK_SCHEDULED") == 1) {
      int sum = Payload(done[0])["output"]["sum"];
      return {sdk::ScheduleTask("double", json{{"value", sum}}.dump()), sdk::Suspend()};
    }
    if (done.size() == 2) return {sdk::Complete(Payload(done[1])["output"].dump())};
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartRest(s, "math", {{"a", 2}, {"b", 3}});
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(w["output"], json({{"value", 10}}));
  auto events = s.Events("acme", id);
  EXPECT_TRUE(DenseHistory(events));
  auto types = Types(events);
  std::vector<std::string> expected{"WORKFLOW_STARTED", "TASK_SCHEDULED", "TASK_STARTED",   "TASK_COMPLETED",
                                    "TASK_SCHEDULED",   "TASK_STARTED",   "TASK_COMPLETED", "WORKFLOW_COMPLETED"};
  EXPECT_EQ(types, expected);
  worker.Stop();
}

TEST(EngineWorkflowTest, TaskFailureIsRetriedWithBackoffThenFailsTheWorkflowWithItsMessage) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.name = "w"});
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> attempts;
  worker.RegisterTask("flaky", [&](const v1::Task&) -> std::string {
    std::lock_guard<std::mutex> l(mu);
    attempts.push_back(std::chrono::steady_clock::now());
    throw sdk::TaskFailure("disk full on attempt " + std::to_string(attempts.size()));
  });
  worker.RegisterWorkflow("fragile", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_SCHEDULED") == 0) return {sdk::ScheduleTask("flaky", "{}", 3, 200), sdk::Suspend()};
    auto failed = h.OfType("TASK_FAILED");
    if (!failed.empty()) return {sdk::Fail("task failed: " + Payload(failed[0])["error"].get<std::string>())};
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartRest(s, "fragile", json::object());
  auto w = s.WaitWorkflow("acme", id, 30s);
  EXPECT_EQ(w["status"], "FAILED") << w.dump();
  EXPECT_EQ(w["error"], "task failed: disk full on attempt 3");
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_GE(attempts[1] - attempts[0], 190ms) << "first retry after the initial backoff";
  EXPECT_GE(attempts[2] - attempts[1], 390ms) << "backoff doubles";
  auto tasks = s.RestJson("GET", "/api/tenants/acme/tasks?kind=flaky");
  ASSERT_EQ(tasks["items"].size(), 1u);
  EXPECT_EQ(tasks["items"][0]["status"], "FAILED");
  EXPECT_EQ(tasks["items"][0]["attempt"], 3);
  auto events = Types(s.Events("acme", id));
  EXPECT_EQ(std::count(events.begin(), events.end(), "TASK_FAILED"), 1) << "one TASK_FAILED, after the last attempt";
  EXPECT_EQ(std::count(events.begin(), events.end(), "TASK_STARTED"), 3);
}

TEST(EngineWorkflowTest, TimerFiresAfterItsDuration) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("sleepy", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TIMER_STARTED") == 0) return {sdk::StartTimer("nap", 700), sdk::Suspend()};
    if (h.Count("TIMER_FIRED") == 1) return {sdk::Complete("\"rested\"")};
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());
  auto t0 = std::chrono::steady_clock::now();
  std::string id = StartRest(s, "sleepy", nullptr);
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["status"], "COMPLETED");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 700ms);
  auto events = s.Events("acme", id);
  EXPECT_TRUE(DenseHistory(events));
  auto started = std::find_if(events.begin(), events.end(), [](auto& e) { return e["type"] == "TIMER_STARTED"; });
  auto fired = std::find_if(events.begin(), events.end(), [](auto& e) { return e["type"] == "TIMER_FIRED"; });
  ASSERT_NE(fired, events.end());
  EXPECT_GE((*fired)["createdAtMs"].get<int64_t>() - (*started)["createdAtMs"].get<int64_t>(), 700);
}

TEST(EngineWorkflowTest, CancellingATimerThatFiredWhileTheWorkerDecidedIsRecordedAndChangesNothing) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string id = StartRest(s, "race", nullptr);
  auto held = ClaimNextWorkflow(client);
  // The worker keeps the execution (no Suspend) while its timer fires on the server.
  v1::SubmitWorkflowCommandsResponse first;
  ASSERT_TRUE(SubmitAs(client, held.worker_id, id, 1, {sdk::StartTimer("deadline", 50)}, &first).ok());
  for (int i = 0; i < 100 && SqlInt(s, "SELECT count(*) FROM timers WHERE status = 'FIRED'") == 0; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  v1::WorkflowCommand cancel;
  cancel.mutable_cancel_timer()->set_name("deadline");
  auto st = SubmitAs(client, held.worker_id, id, first.last_sequence(), {cancel, sdk::Complete("\"task won\"")});
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto events = s.Events("acme", id);
  EXPECT_TRUE(DenseHistory(events));
  std::vector<std::string> expected{"WORKFLOW_STARTED", "TIMER_STARTED", "TIMER_CANCELLED", "WORKFLOW_COMPLETED"};
  EXPECT_EQ(Types(events), expected) << "the buffered TIMER_FIRED goes with the ended run";
  EXPECT_EQ(events[2]["payload"]["alreadyFired"], true);
  // A timer that never existed is still refused.
  std::string other = StartRest(s, "race", nullptr);
  auto held2 = ClaimNextWorkflow(client);
  v1::WorkflowCommand ghost;
  ghost.mutable_cancel_timer()->set_name("ghost");
  EXPECT_EQ(SubmitAs(client, held2.worker_id, other, 1, {ghost}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(EngineWorkflowTest, APendingTimerSurvivesAServerRestartAndFiresOnce) {
  EngineServer s;
  auto sleepy = [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TIMER_STARTED") == 0) return {sdk::StartTimer("nap", 2500), sdk::Suspend()};
    if (h.Count("TIMER_FIRED") >= 1) return {sdk::Complete(std::to_string(h.Count("TIMER_FIRED")))};
    return {sdk::Suspend()};
  };
  std::string id;
  {
    sdk::Client client(s.ClientFor("acme"));
    sdk::Worker worker(client, {});
    worker.RegisterWorkflow("sleepy", sleepy);
    ASSERT_TRUE(worker.Start().ok());
    id = StartRest(s, "sleepy", nullptr);
    for (int i = 0; i < 200 && Types(s.Events("acme", id)).size() < 2; ++i) std::this_thread::sleep_for(20ms);
    worker.Stop();
  }
  ASSERT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["status"], "WAITING");
  s.server().process().Signal(SIGTERM);
  ASSERT_EQ(s.server().process().Wait(15s), 0);
  s.Restart();
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("sleepy", sleepy);
  ASSERT_TRUE(worker.Start().ok());
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(w["output"], 1);
  std::this_thread::sleep_for(500ms);
  auto types = Types(s.Events("acme", id));
  EXPECT_EQ(std::count(types.begin(), types.end(), "TIMER_FIRED"), 1);
}

// A workflow that waits on a promise and completes with how it was settled.
std::vector<v1::WorkflowCommand> AwaitApproval(const History& h, int64_t timeout_ms) {
  if (h.Count("PROMISE_CREATED") == 0) return {sdk::CreatePromise("approval", timeout_ms), sdk::Suspend()};
  for (const char* t : {"PROMISE_RESOLVED", "PROMISE_REJECTED", "PROMISE_TIMED_OUT"}) {
    auto e = h.OfType(t);
    if (!e.empty()) return {sdk::Complete(json{{"how", t}, {"payload", Payload(e[0])}}.dump())};
  }
  return {sdk::Suspend()};
}

std::string WaitPromiseId(EngineServer& s, const std::string& id) {
  for (int i = 0; i < 500; ++i) {
    for (auto& e : s.Events("acme", id)) {
      if (e["type"] == "PROMISE_CREATED") return e["payload"]["promiseId"];
    }
    std::this_thread::sleep_for(20ms);
  }
  return "";
}

TEST(EngineWorkflowTest, PromisesResolvedOverRestRejectedOverGrpcAndTimedOutEachWakeTheWorkflow) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("approve", [](const History& h) { return AwaitApproval(h, 0); });
  worker.RegisterWorkflow("approve-timeout", [](const History& h) { return AwaitApproval(h, 500); });
  ASSERT_TRUE(worker.Start().ok());

  std::string a = StartRest(s, "approve", nullptr);
  std::string pa = WaitPromiseId(s, a);
  ASSERT_FALSE(pa.empty());
  auto r = s.Rest("POST", "/api/tenants/acme/promises/" + pa + "/resolve", R"({"value":{"ok":true}})");
  EXPECT_EQ(r.status, 200) << r.body;
  auto wa = s.WaitWorkflow("acme", a);
  EXPECT_EQ(wa["output"]["how"], "PROMISE_RESOLVED");
  EXPECT_EQ(wa["output"]["payload"]["value"], json({{"ok", true}}));
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/promises/" + pa + "/resolve", R"({"value":1})").status, 409)
      << "a settled promise cannot be settled again";

  std::string b = StartRest(s, "approve", nullptr);
  std::string pb = WaitPromiseId(s, b);
  EXPECT_TRUE(client.RejectPromise(pb, "nope").ok());
  auto wb = s.WaitWorkflow("acme", b);
  EXPECT_EQ(wb["output"]["how"], "PROMISE_REJECTED");
  EXPECT_EQ(wb["output"]["payload"]["error"], "nope");

  std::string c = StartRest(s, "approve-timeout", nullptr);
  auto wc = s.WaitWorkflow("acme", c);
  EXPECT_EQ(wc["output"]["how"], "PROMISE_TIMED_OUT");
}

TEST(EngineWorkflowTest, ChildWorkflowsReportSuccessAndFailureToTheirParentTwoLevelsDeep) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.workflow_pollers = 2});
  // parent -> child -> grandchild; the grandchild's output bubbles up.
  worker.RegisterWorkflow("grandchild", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    auto in = json::parse(h.Input());
    if (in.value("fail", false)) return {sdk::Fail("grandchild broke")};
    return {sdk::Complete(json{{"depth", 2}}.dump())};
  });
  auto relay = [](const char* child_kind) {
    return [child_kind](const History& h) -> std::vector<v1::WorkflowCommand> {
      if (h.Count("CHILD_WORKFLOW_SCHEDULED") == 0)
        return {sdk::ScheduleChild("c", child_kind, h.Input()), sdk::Suspend()};
      auto ok = h.OfType("CHILD_WORKFLOW_COMPLETED");
      if (!ok.empty()) return {sdk::Complete(json{{"child", Payload(ok[0])["output"]}}.dump())};
      auto bad = h.OfType("CHILD_WORKFLOW_FAILED");
      if (!bad.empty()) return {sdk::Fail("child failed: " + Payload(bad[0])["error"].get<std::string>())};
      return {sdk::Suspend()};
    };
  };
  worker.RegisterWorkflow("child", relay("grandchild"));
  worker.RegisterWorkflow("parent", relay("child"));
  ASSERT_TRUE(worker.Start().ok());

  std::string ok = StartRest(s, "parent", json::object());
  auto w = s.WaitWorkflow("acme", ok);
  EXPECT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(w["output"], json({{"child", {{"child", {{"depth", 2}}}}}}));

  std::string bad = StartRest(s, "parent", {{"fail", true}});
  auto wb = s.WaitWorkflow("acme", bad);
  EXPECT_EQ(wb["status"], "FAILED");
  EXPECT_EQ(wb["error"], "child failed: child failed: grandchild broke");
  // The children are listed with their parent.
  auto list = s.RestJson("GET", "/api/tenants/acme/workflows?kind=child");
  ASSERT_EQ(list["items"].size(), 2u);
  for (auto& c : list["items"]) EXPECT_TRUE(c["parentId"] == ok || c["parentId"] == bad);
}

TEST(EngineWorkflowTest, SignalsReachARunningWorkflowAndSignalWithStartCreatesOrReuses) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("collector", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    auto signals = h.OfType("SIGNAL_RECEIVED");
    if (signals.size() >= 2) {
      json names = json::array();
      for (auto* e : signals) names.push_back(Payload(e)["name"]);
      return {sdk::Complete(names.dump())};
    }
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());

  std::string id = StartRest(s, "collector", nullptr);
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"first","payload":1})").status,
            202);
  EXPECT_TRUE(client.Signal(id, "second", "2").ok());
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["output"], json({"first", "second"}));
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"late"})").status, 409)
      << "a finished workflow takes no signals";

  v1::SignalWithStartRequest req;
  req.mutable_start()->set_kind("collector");
  req.mutable_start()->set_idempotency_key("order-42");
  req.set_signal_name("a");
  v1::SignalWithStartResponse first, second;
  ASSERT_TRUE(client.SignalWithStart(req, &first).ok());
  EXPECT_TRUE(first.created());
  req.set_signal_name("b");
  ASSERT_TRUE(client.SignalWithStart(req, &second).ok());
  EXPECT_FALSE(second.created());
  EXPECT_EQ(first.execution_id(), second.execution_id());
  auto ws = s.WaitWorkflow("acme", first.execution_id());
  EXPECT_EQ(ws["output"], json({"a", "b"}));
}

TEST(EngineWorkflowTest, IdempotencyKeyReturnsTheFirstExecution) {
  EngineServer s;
  json body = {{"kind", "k"}, {"input", 1}, {"idempotencyKey", "same"}};
  auto first = s.Rest("POST", "/api/tenants/acme/workflows", body.dump());
  auto second = s.Rest("POST", "/api/tenants/acme/workflows", body.dump());
  EXPECT_EQ(first.status, 201);
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(json::parse(first.body)["id"], json::parse(second.body)["id"]);
  EXPECT_FALSE(json::parse(second.body)["created"].get<bool>());
  sdk::Client client(s.ClientFor("acme"));
  v1::StartWorkflowResponse grpc_start;
  ASSERT_TRUE(client.StartWorkflow("k", "1", &grpc_start, "default", "same").ok());
  EXPECT_EQ(grpc_start.execution_id(), json::parse(first.body)["id"]);
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows?kind=k")["items"].size(), 1u);
}

TEST(EngineWorkflowTest, CancellingAWaitingWorkflowCancelsItAndItsTasks) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("long", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_SCHEDULED") == 0) return {sdk::ScheduleTask("never-run", "{}"), sdk::Suspend()};
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartRest(s, "long", nullptr);
  for (int i = 0; i < 200 && Types(s.Events("acme", id)).size() < 2; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel").status, 202);
  auto w = s.WaitWorkflow("acme", id);
  EXPECT_EQ(w["status"], "CANCELLED");
  auto tasks = s.RestJson("GET", "/api/tenants/acme/tasks?kind=never-run");
  EXPECT_EQ(tasks["items"][0]["status"], "CANCELLED");
  auto types = Types(s.Events("acme", id));
  EXPECT_EQ(types.back(), "WORKFLOW_CANCELLED");
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel").status, 409);
}

TEST(EngineWorkflowTest, StateAndOperationsAreRecorded) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("stateful", [](const History&) -> std::vector<v1::WorkflowCommand> {
    return {sdk::SetState("progress", R"({"step":1})"), sdk::RecordOperation("uuid", "\"abc\""), sdk::Complete("null")};
  });
  ASSERT_TRUE(worker.Start().ok());
  std::string id = StartRest(s, "stateful", nullptr);
  EXPECT_EQ(s.WaitWorkflow("acme", id)["status"], "COMPLETED");
  std::map<std::string, std::string> state;
  ASSERT_TRUE(client.GetState(id, &state).ok());
  EXPECT_EQ(json::parse(state["progress"]), json({{"step", 1}}));
  auto types = Types(s.Events("acme", id));
  EXPECT_EQ(types,
            (std::vector<std::string>{"WORKFLOW_STARTED", "STATE_SET", "OPERATION_COMPLETED", "WORKFLOW_COMPLETED"}));
}

}  // namespace
}  // namespace flovyn::testing
