// Timers fired by the worker that keeps the workflow (WorkerOptions::fire_timers): at the
// deadline the code runs on there at once, and TIMER_FIRED goes to the server with the commands
// the code issued next (FireTimer), in one call and one commit. A worker that stops mid-sleep
// leaves its timer to the server, which fires it engine.worker_timer_grace_ms late and hands
// the workflow to another worker.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/sdk/replay.h"
#include "flovyn/sdk/workflow.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

int64_t Ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Two sleeps; the code notes the time it sees after each.
Workflow<json> Naps(WorkflowContext& ctx, int ms) {
  json seen = json::array();
  for (int i = 0; i < 2; ++i) {
    co_await ctx.Sleep(milliseconds(ms));
    seen.push_back(Ms(ctx.Now()));
  }
  co_return seen;
}

// Each TIMER_FIRED of `history` with its TIMER_STARTED's deadline: (fired at, deadline) in ms.
std::vector<std::pair<int64_t, int64_t>> Fires(const std::vector<v1::WorkflowEvent>& history) {
  std::map<std::string, int64_t> deadline;
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& e : history) {
    json p = json::parse(e.payload_json());
    if (e.type() == "TIMER_STARTED") deadline[p["name"]] = p["fireAtMs"].get<int64_t>();
    if (e.type() == "TIMER_FIRED") out.emplace_back(e.created_at_ms(), deadline[p["name"]]);
  }
  return out;
}

TEST(SdkTimersTest, ASleepWakesOnTheWorkerThatKeepsItsWorkflowAndItsTimerGoesWithTheNextCommands) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.name = "naps", .queue = "naps"});
  worker.RegisterWorkflow("naps", Naps);
  ASSERT_TRUE(worker.Start().ok());
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("naps", "150", &started, "naps").ok());
  auto w = s.WaitWorkflow("acme", started.execution_id());
  worker.Stop();
  ASSERT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(worker.last_violation(), "");
  EXPECT_EQ(worker.timers_fired_here(), 2u);
  EXPECT_EQ(GrpcCalls(s, "WorkflowDispatch/FireTimer"), 2);
  EXPECT_EQ(GrpcCalls(s, "WorkflowDispatch/SubmitWorkflowCommands"), 1)
      << "only the first activation submits on its own; each later one goes with its timer";

  std::vector<v1::WorkflowEvent> history;
  ASSERT_TRUE(client.GetEvents(started.execution_id(), &history).ok());
  std::string types;
  for (const auto& e : history) types += e.type() + " ";
  EXPECT_EQ(types, "WORKFLOW_STARTED TIMER_STARTED TIMER_FIRED TIMER_STARTED TIMER_FIRED WORKFLOW_COMPLETED ");
  auto fires = Fires(history);
  ASSERT_EQ(fires.size(), 2u);
  json seen = json::array();
  for (auto [at, deadline] : fires) {
    EXPECT_GE(at, deadline) << "never before the deadline";
    seen.push_back(at);
  }
  EXPECT_EQ(seen, w["output"]) << "each TIMER_FIRED carries the time the code saw";

  // A worker that never ran it replays the whole history to the same end.
  Decision d = Decide(started.execution_id(), history, MakeWorkflow(Naps));
  EXPECT_EQ(d.violation, "");
  ASSERT_TRUE(d.completed);
  ASSERT_EQ(d.commands.size(), 1u);
  EXPECT_EQ(json::parse(d.commands[0].complete_workflow().output_json()), w["output"]);
}

// Waits for signal "go" for at most a minute.
Workflow<std::string> Patient(WorkflowContext& ctx, int) {
  co_return co_await WithTimeout(ctx, ctx.Signal<std::string>("go"), std::chrono::minutes(1));
}

TEST(SdkTimersTest, AWorkerArmsTimersOnlyForTheWorkflowsItKeepsUntilTheyEndOrLeaveItsCache) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.name = "patient", .queue = "patient", .workflow_cache_size = 2});
  worker.RegisterWorkflow("patient", Patient);
  ASSERT_TRUE(worker.Start().ok());
  auto start = [&] {
    v1::StartWorkflowResponse r;
    EXPECT_TRUE(client.StartWorkflow("patient", "0", &r, "patient").ok());
    // Its timer is started once its first activation is recorded.
    for (int i = 0; i < 500; ++i) {
      std::vector<v1::WorkflowEvent> history;
      EXPECT_TRUE(client.GetEvents(r.execution_id(), &history).ok());
      if (history.size() >= 2) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return r.execution_id();
  };
  auto armed = [&](size_t n) {
    for (int i = 0; i < 400 && worker.armed_timers() != n; ++i) std::this_thread::sleep_for(milliseconds(5));
    return worker.armed_timers();
  };
  start();
  start();
  EXPECT_EQ(armed(2), 2u) << "one timer for each kept workflow";
  std::string last = start();
  ASSERT_TRUE(client.Signal(last, "go", R"("now")").ok());
  EXPECT_EQ(s.WaitWorkflow("acme", last)["status"], "COMPLETED");
  EXPECT_EQ(armed(1), 1u) << "the first left the cache (of 2) with its timer, and the last's timer was cancelled "
                             "when the signal won";
  worker.Stop();
  EXPECT_EQ(worker.timers_fired_here(), 0u);
}

TEST(SdkTimersTest, ATimerOfAWorkerThatStoppedMidSleepFiresOnTheServerAfterTheGraceForAnotherWorker) {
  EngineServer s({.env = {{"ENGINE__WORKER_TIMER_GRACE_MS", "700"}, {"ENGINE__STICKY_MS", "100"}}});
  sdk::Client client(s.ClientFor("acme"));
  auto first = std::make_unique<sdk::Worker>(client, sdk::WorkerOptions{.name = "first", .queue = "naps"});
  first->RegisterWorkflow("naps", Naps);
  ASSERT_TRUE(first->Start().ok());
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("naps", "1000", &started, "naps").ok());
  // The first sleep has begun; the worker that keeps it stops before its deadline.
  std::vector<v1::WorkflowEvent> history;
  for (int i = 0; i < 500 && history.size() < 2; ++i) {
    history.clear();
    ASSERT_TRUE(client.GetEvents(started.execution_id(), &history).ok());
    if (history.size() < 2) std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(history.size(), 2u);
  first->Stop();
  EXPECT_EQ(first->timers_fired_here(), 0u);

  sdk::Worker second(client, {.name = "second", .queue = "naps"});
  second.RegisterWorkflow("naps", Naps);
  ASSERT_TRUE(second.Start().ok());
  auto w = s.WaitWorkflow("acme", started.execution_id());
  second.Stop();
  ASSERT_EQ(w["status"], "COMPLETED") << w.dump();
  history.clear();
  ASSERT_TRUE(client.GetEvents(started.execution_id(), &history).ok());
  auto fires = Fires(history);
  ASSERT_EQ(fires.size(), 2u);
  // The server fires at the deadline plus the grace (the deadline in fireAtMs is rounded up, the
  // firing's stamp down, to the millisecond); without the grace it fires within a few ms.
  EXPECT_GE(fires[0].first - fires[0].second, 699) << "the server waited for the grace before firing it";
  EXPECT_EQ(second.timers_fired_here(), 1u) << "the second sleep was the second worker's to fire";
}

}  // namespace
}  // namespace flovyn::testing
