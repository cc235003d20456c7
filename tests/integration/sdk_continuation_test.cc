// A worker that keeps a workflow cached runs its code on from a task's result itself and sends
// the result with the commands the code issued (CompleteTaskRequest.continuation): one call and
// one commit per step. The history it leaves replays to the same decisions, times included.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/sdk/replay.h"
#include "flovyn/sdk/workflow.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;

int64_t Ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Five steps, each on the last one's result; the code notes the time it sees after each.
Workflow<json> Chain(WorkflowContext& ctx, int start) {
  int v = start;
  json seen = json::array();
  for (int i = 0; i < 5; ++i) {
    v = co_await ctx.Task<int>("add", v);
    seen.push_back(Ms(ctx.Now()));
  }
  co_return json{{"sum", v}, {"seen", seen}};
}

TEST(SdkContinuationTest, EachStepIsOneCallCarryingTheResultAndTheNextCommandsAndReplaysTheSame) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.name = "chain", .queue = "chain"});
  worker.RegisterTask("add", [](const v1::Task& t) { return json(json::parse(t.input_json()).get<int>() + 1).dump(); });
  worker.RegisterWorkflow("chain", Chain);
  ASSERT_TRUE(worker.Start().ok());
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("chain", "10", &started, "chain").ok());
  auto w = s.WaitWorkflow("acme", started.execution_id());
  worker.Stop();
  ASSERT_EQ(w["status"], "COMPLETED") << w.dump();
  EXPECT_EQ(w["output"]["sum"], 15);
  EXPECT_EQ(worker.last_violation(), "");
  EXPECT_EQ(GrpcCalls(s, "TaskExecution/CompleteTask"), 5);
  EXPECT_EQ(GrpcCalls(s, "WorkflowDispatch/SubmitWorkflowCommands"), 1)
      << "only the first activation submits on its own; every later step goes with a task's result";
  EXPECT_EQ(GrpcCalls(s, "WorkflowDispatch/GetEvents"), 0) << "no continuation was refused";

  // Each TASK_COMPLETED carries the time the code saw for it, and is followed in the history by
  // what the code did next.
  std::vector<v1::WorkflowEvent> history;
  ASSERT_TRUE(client.GetEvents(started.execution_id(), &history).ok());
  std::vector<int64_t> completed_at;
  std::string after_completed;
  for (size_t i = 0; i < history.size(); ++i) {
    if (history[i].type() != "TASK_COMPLETED") continue;
    completed_at.push_back(history[i].created_at_ms());
    if (i + 1 < history.size()) after_completed += history[i + 1].type() + " ";
  }
  EXPECT_EQ(json(completed_at), w["output"]["seen"]);
  EXPECT_EQ(after_completed, "TASK_SCHEDULED TASK_SCHEDULED TASK_SCHEDULED TASK_SCHEDULED WORKFLOW_COMPLETED ");

  // A worker that never ran it replays the whole history to the same end.
  Decision d = Decide(started.execution_id(), history, MakeWorkflow(Chain));
  EXPECT_EQ(d.violation, "");
  ASSERT_TRUE(d.completed);
  ASSERT_EQ(d.commands.size(), 1u);
  EXPECT_EQ(json::parse(d.commands[0].complete_workflow().output_json()), w["output"]);
}

}  // namespace
}  // namespace flovyn::testing
