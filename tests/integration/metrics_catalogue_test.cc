// Every metric of the catalogue is exposed, and the engine's move when their cause happens.
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/engine_metrics.h"
#include "engine_harness.h"
#include "flovyn/metrics/catalogue.h"
#include "otlp_collector.h"
#include "server_main.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using sdk::History;

// Sum of every sample of `name` whose label text contains `labels` (all samples when empty).
double Value(const std::string& text, const std::string& name, const std::string& labels = "") {
  return MetricValue(text, name, labels);
}

TEST(MetricsCatalogueTest, EveryCatalogueMetricIsExposedAndEngineMetricsMoveWithTheirCause) {
  Nats nats;
  TestCollector collector;
  EngineServer s({.env = {{"METRICS__ENABLED", "true"},
                          {"NATS__ENABLED", "true"},
                          {"NATS__URL", nats.Url()},
                          {"OTEL__ENABLED", "true"},
                          {"OTEL__OTLP_ENDPOINT", "127.0.0.1:" + std::to_string(collector.port())},
                          {"OTEL__BATCH_INTERVAL_MS", "100"}}});
  auto scrape = [&] { return HttpGet(s.server().metrics_port(), "/metrics").body; };
  std::string before = scrape();

  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {.workflow_pollers = 2, .task_pollers = 2});
  worker.RegisterTask("t-ok", [](const v1::Task&) { return std::string("1"); });
  worker.RegisterTask("t-bad", [](const v1::Task&) -> std::string { throw sdk::TaskFailure("broken"); });
  worker.RegisterWorkflow("cat-ok", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TIMER_STARTED") == 0)
      return {sdk::StartTimer("t", 100), sdk::ScheduleTask("t-ok", "1"), sdk::Suspend()};
    if (h.Count("TIMER_FIRED") == 1 && h.Count("TASK_COMPLETED") == 1) return {sdk::Complete("1")};
    return {sdk::Suspend()};
  });
  worker.RegisterWorkflow("cat-fail", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_SCHEDULED") == 0) return {sdk::ScheduleTask("t-bad", "1", 2, 50), sdk::Suspend()};
    if (h.Count("TASK_FAILED") == 1) return {sdk::Fail("gave up")};
    return {sdk::Suspend()};
  });
  worker.RegisterWorkflow("cat-wait", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_SCHEDULED") == 0) {
      auto c = sdk::ScheduleTask("t-lease", "1", 2);
      c.mutable_schedule_task()->set_queue("lease-q");
      c.mutable_schedule_task()->set_lease_ms(200);
      return {c, sdk::Suspend()};
    }
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());
  v1::StartWorkflowResponse ok, bad, waiting;
  ASSERT_TRUE(client.StartWorkflow("cat-ok", "1", &ok).ok());
  ASSERT_TRUE(client.StartWorkflow("cat-fail", "1", &bad).ok());
  ASSERT_TRUE(client.StartWorkflow("cat-wait", "1", &waiting).ok());
  EXPECT_EQ(s.WaitWorkflow("acme", ok.execution_id())["status"], "COMPLETED");
  EXPECT_EQ(s.WaitWorkflow("acme", bad.execution_id())["status"], "FAILED");

  // A task claimed by a worker that dies: its lease expires.
  std::string dead;
  v1::RegisterWorkerRequest reg;
  reg.set_name("dead");
  ASSERT_TRUE(client.RegisterWorker(reg, &dead).ok());
  v1::PollTaskRequest poll;
  poll.set_worker_id(dead);
  poll.set_queue("lease-q");
  poll.set_timeout_ms(5000);
  v1::PollTaskResponse claimed;
  ASSERT_TRUE(client.PollTask(poll, &claimed).ok());
  ASSERT_TRUE(claimed.has_work());
  // Cancelling: a waiting workflow and a standalone task.
  v1::SubmitTaskRequest standalone;
  standalone.set_kind("never");
  standalone.set_queue("depth-q");
  std::string cancel_me, queued1, queued2;
  ASSERT_TRUE(client.SubmitTask(standalone, &cancel_me).ok());
  ASSERT_TRUE(client.CancelTask(cancel_me).ok());
  ASSERT_TRUE(client.SubmitTask(standalone, &queued1).ok());
  ASSERT_TRUE(client.SubmitTask(standalone, &queued2).ok());

  // Long-polls and a stream, open while we scrape.
  std::thread idle_poll([&] {
    v1::PollTaskRequest p;
    p.set_worker_id(dead);
    p.set_queue("idle-q");
    p.set_timeout_ms(3000);
    v1::PollTaskResponse r;
    (void)client.PollTask(p, &r);
  });
  grpc::ClientContext stream_ctx;
  auto stream = client.Subscribe(&stream_ctx, "idle-q");
  nats.Stop();
  std::this_thread::sleep_for(300ms);
  nats.Start();
  std::this_thread::sleep_for(2500ms);  // lease expiry, queue depth refresh, NATS reconnect
  std::string during = scrape();
  idle_poll.join();
  stream_ctx.TryCancel();
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + waiting.execution_id() + "/cancel").status, 202);
  s.WaitWorkflow("acme", waiting.execution_id());
  worker.Stop();
  std::string after;
  for (int i = 0; i < 40; ++i) {  // the server notices cancelled polls within a quarter second
    after = scrape();
    if (Value(after, "flovyn_long_polls_active") == 0 && Value(after, "flovyn_notification_streams_active") == 0) break;
    std::this_thread::sleep_for(100ms);
  }

  auto moved = [&](const std::string& name, const std::string& labels = "") {
    return Value(after, name, labels) > Value(before, name, labels);
  };
  EXPECT_TRUE(moved("flovyn_workflows_started_total", "kind=\"cat-ok\""));
  EXPECT_TRUE(moved("flovyn_workflows_completed_total", "kind=\"cat-ok\""));
  EXPECT_TRUE(moved("flovyn_workflows_failed_total", "kind=\"cat-fail\""));
  EXPECT_TRUE(moved("flovyn_workflows_cancelled_total", "kind=\"cat-wait\""));
  for (const char* outcome : {"completed", "retried", "failed", "cancelled"}) {
    EXPECT_TRUE(moved("flovyn_tasks_total", std::string("outcome=\"") + outcome + "\"")) << outcome;
  }
  EXPECT_TRUE(moved("flovyn_dispatch_latency_seconds_count", "kind=\"workflow\""));
  EXPECT_TRUE(moved("flovyn_dispatch_latency_seconds_count", "kind=\"task\""));
  EXPECT_TRUE(moved("flovyn_lease_expiries_total", "kind=\"task\""));
  EXPECT_TRUE(moved("flovyn_timers_fired_total"));
  EXPECT_TRUE(moved("flovyn_timer_lag_seconds_count"));
  EXPECT_TRUE(moved("flovyn_group_commit_units_count"));
  EXPECT_EQ(Value(during, "flovyn_queue_depth", "kind=\"task\",queue=\"depth-q\""), 2);
  EXPECT_GE(Value(during, "flovyn_long_polls_active", "kind=\"task\""), 1);
  EXPECT_GE(Value(during, "flovyn_notification_streams_active"), 1);
  EXPECT_EQ(Value(after, "flovyn_long_polls_active"), 0);
  EXPECT_EQ(Value(after, "flovyn_notification_streams_active"), 0);
  EXPECT_EQ(Value(after, "flovyn_nats_connected"), 1);
  EXPECT_GE(Value(after, "flovyn_nats_reconnects_total"), 1);
  EXPECT_GT(Value(after, "flovyn_migration_duration_seconds"), 0);
  EXPECT_TRUE(moved("flovyn_trace_spans_exported_total"));
  EXPECT_TRUE(moved("flovyn_grpc_requests_total"));
  EXPECT_TRUE(moved("flovyn_http_requests_total"));

  for (const auto* m : metrics::Catalogue(server::MetricSpecs())) {
    EXPECT_NE(after.find(std::string("# TYPE ") + m->name + " "), std::string::npos) << m->name << " is not exposed";
  }
  std::string dir = MakeTempDir("flovyn-catalogue");
  std::ofstream(dir + "/metrics.txt") << after;
  std::string out;
  EXPECT_EQ(RunCommand("promtool check metrics < " + dir + "/metrics.txt", &out), 0) << out;
}

}  // namespace
}  // namespace flovyn::testing
