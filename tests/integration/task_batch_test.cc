// Task results reported together (CompleteTasks): several results in one call and one commit,
// a result the worker no longer holds refused alone, a call past the limit or with an output
// that is not JSON refused whole, and the SDK's worker reporting tasks it claimed together that
// way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

std::string RegisterWorker(sdk::Client& client) {
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("batcher");
  EXPECT_TRUE(client.RegisterWorker(reg, &worker).ok());
  return worker;
}

void Submit(sdk::Client& client, const std::string& queue, int n) {
  for (int i = 0; i < n; ++i) {
    v1::SubmitTaskRequest t;
    t.set_kind("noop");
    t.set_queue(queue);
    t.set_input_json(std::to_string(i));
    std::string id;
    ASSERT_TRUE(client.SubmitTask(t, &id).ok());
  }
}

std::vector<v1::Task> Claim(sdk::Client& client, const std::string& worker, const std::string& queue, int n) {
  v1::PollTaskRequest poll;
  poll.set_worker_id(worker);
  poll.set_queue(queue);
  poll.set_timeout_ms(2000);
  poll.set_max_tasks(n);
  v1::PollTaskResponse res;
  EXPECT_TRUE(client.PollTask(poll, &res).ok());
  std::vector<v1::Task> tasks;
  if (!res.has_work()) return tasks;
  tasks.push_back(res.task());
  tasks.insert(tasks.end(), res.more_tasks().begin(), res.more_tasks().end());
  return tasks;
}

std::string Status(EngineServer& s, const std::string& task) {
  return Sql(s, "SELECT status FROM task_executions WHERE id = '" + task + "'");
}

TEST(TaskBatchTest, SeveralResultsInOneCallAreRecordedAndOneNotHeldIsRefusedAlone) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  // A workflow's task, so a result in the batch reaches its workflow too.
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("charger", "null", &started, "tb").ok());
  HeldWorkflow held = ClaimNextWorkflow(client, "tb");
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(held.worker_id);
  sub.set_execution_id(started.execution_id());
  sub.set_expected_sequence(held.claim.events(held.claim.events_size() - 1).sequence());
  *sub.add_commands() = sdk::ScheduleTask("noop", "7");
  *sub.add_commands() = sdk::Suspend();
  v1::SubmitWorkflowCommandsResponse submitted;
  ASSERT_TRUE(client.SubmitCommands(sub, &submitted).ok());
  Submit(client, "tb", 3);

  std::vector<v1::Task> tasks = Claim(client, held.worker_id, "tb", 10);
  ASSERT_EQ(tasks.size(), 4u);
  v1::Task stranger = tasks[0];
  stranger.set_id("00000000-0000-4000-8000-000000000000");
  v1::Task stale = tasks[1];
  stale.set_attempt(2);  // not the attempt the worker holds
  std::vector<v1::Task> results = tasks;
  results.push_back(stranger);
  results.push_back(stale);
  std::vector<std::string> outputs;
  for (size_t i = 0; i < results.size(); ++i) outputs.push_back("{\"n\":" + std::to_string(i) + "}");
  v1::CompleteTasksResponse res;
  ASSERT_TRUE(client.CompleteTasks(held.worker_id, results, outputs, &res).ok());
  ASSERT_EQ(res.outcomes_size(), 6);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(res.outcomes(i).code(), 0) << res.outcomes(i).message();
  EXPECT_EQ(res.outcomes(4).code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(res.outcomes(5).code(), static_cast<int>(grpc::StatusCode::ABORTED)) << res.outcomes(5).message();

  for (size_t i = 0; i < tasks.size(); ++i) {
    EXPECT_EQ(Status(s, tasks[i].id()), "COMPLETED");
    EXPECT_EQ(Sql(s, "SELECT output::text FROM task_executions WHERE id = '" + tasks[i].id() + "'"),
              "{\"n\": " + std::to_string(i) + "}")
        << "each result its own output; the stale attempt changed nothing";
  }
  auto events = s.Events("acme", started.execution_id());
  auto done = std::find_if(events.begin(), events.end(), [](auto& e) { return e["type"] == "TASK_COMPLETED"; });
  ASSERT_NE(done, events.end()) << "the workflow's task result reached it";
  EXPECT_TRUE(Eventually([&] {
    return Sql(s, "SELECT status FROM workflow_executions WHERE id = '" + started.execution_id() + "'") == "PENDING";
  })) << "and made it runnable";
}

TEST(TaskBatchTest, PastTheLimitOrWithAnOutputThatIsNotJsonTheCallIsRefusedWholeAndChangesNothing) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string worker = RegisterWorker(client);
  Submit(client, "tb", 2);
  std::vector<v1::Task> tasks = Claim(client, worker, "tb", 2);
  ASSERT_EQ(tasks.size(), 2u);

  std::vector<v1::Task> many(101, tasks[0]);
  v1::CompleteTasksResponse res;
  auto st = client.CompleteTasks(worker, many, std::vector<std::string>(101, "null"), &res);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("max_tasks_per_poll"), std::string::npos) << st.error_message();

  st = client.CompleteTasks(worker, tasks, {"1", "{not json"}, &res);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("output of result 1"), std::string::npos) << st.error_message();
  for (const auto& t : tasks) EXPECT_EQ(Status(s, t.id()), "RUNNING") << "nothing recorded";
}

TEST(TaskBatchTest, TheSdkWorkerReportsTheTasksItClaimedTogetherInOneCall) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  Submit(client, "sdk-tb", 12);
  std::atomic<int> runs{0};
  sdk::Worker worker(client, {.name = "batched",
                              .queue = "sdk-tb",
                              .task_pollers = 1,
                              .poll_timeout = std::chrono::milliseconds(500),
                              .max_tasks_per_poll = 6});
  worker.RegisterTask("noop", [&runs](const v1::Task& t) {
    ++runs;
    return t.input_json();
  });
  ASSERT_TRUE(worker.Start().ok());
  EXPECT_TRUE(Eventually([&] { return worker.tasks_completed() == 12; }));
  worker.Stop();
  EXPECT_EQ(runs.load(), 12);
  EXPECT_EQ(Sql(s, "SELECT count(*) FROM task_executions WHERE status = 'COMPLETED' AND output = input"), "12");
  auto metrics = HttpGet(s.server().metrics_port(), "/metrics").body;
  EXPECT_NE(metrics.find("method=\"/flovyn.v1.TaskExecution/CompleteTasks\",code=\"OK\""), std::string::npos);
  EXPECT_EQ(metrics.find("method=\"/flovyn.v1.TaskExecution/CompleteTask\","), std::string::npos)
      << "no result reported alone";
}

}  // namespace
}  // namespace flovyn::testing
