// Trace export over OTLP/gRPC to a collector run by the test: span links across the REST call,
// the gRPC calls and the worker; flush at shutdown; a collector that is down.
#include <signal.h>

#include <mutex>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/trace/trace.h"
#include "otlp_collector.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::map<std::string, std::string> OtelEnv(int port, const std::string& interval = "100") {
  return {{"OTEL__ENABLED", "true"},
          {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)},
          {"OTEL_SERVICE_NAME", "flovyn-test"},
          {"OTEL__BATCH_INTERVAL_MS", interval}};
}

TEST(TracingTest, OneTraceRunsFromTheClientsStartThroughTheWorkersTask) {
  TestCollector collector;
  EngineServer s({.env = OtelEnv(collector.port())});
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterTask("traced-task", [](const v1::Task&) { return std::string("1"); });
  worker.RegisterWorkflow("traced", [](const sdk::History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_SCHEDULED") == 0) return {sdk::ScheduleTask("traced-task", "{}"), sdk::Suspend()};
    if (h.Count("TASK_COMPLETED") == 1) return {sdk::Complete("1")};
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(worker.Start().ok());

  // The client's own span, as a caller instrumented with OpenTelemetry would send it.
  std::string client_trace = "4bf92f3577b34da6a3ce929d0e0e4736", client_span = "00f067aa0ba902b7";
  auto r = HttpRequest("POST", s.http_port(), "/api/tenants/acme/workflows", R"({"kind":"traced"})",
                       {{"Authorization", "Bearer " + TenantKey("acme")},
                        {"traceparent", "00-" + client_trace + "-" + client_span + "-01"}});
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = json::parse(r.body)["id"];
  EXPECT_EQ(s.WaitWorkflow("acme", id)["status"], "COMPLETED");
  worker.Stop();

  const ReceivedSpan *rest = nullptr, *submit = nullptr, *complete = nullptr, *poll_task = nullptr;
  for (int i = 0; i < 100 && !(rest && submit && complete); ++i) {
    std::this_thread::sleep_for(100ms);
    rest = collector.Find([&](const ReceivedSpan& sp) {
      return sp.name == "POST /api/tenants/{tenant}/workflows" && sp.trace_id == client_trace;
    });
    // The submit that scheduled the task, and the task's completion, in the same trace.
    submit = collector.Find([&](const ReceivedSpan& sp) {
      return sp.name == "flovyn.v1/SubmitWorkflowCommands" && sp.trace_id == client_trace;
    });
    complete = collector.Find(
        [&](const ReceivedSpan& sp) { return sp.name == "flovyn.v1/CompleteTask" && sp.trace_id == client_trace; });
  }
  ASSERT_NE(rest, nullptr) << "REST server span in the client's trace";
  EXPECT_EQ(rest->parent_id, client_span) << "the REST span is a child of the client's span";
  EXPECT_EQ(rest->service, "flovyn-test");
  EXPECT_EQ(rest->attributes.at("http.status_code"), "201");
  ASSERT_NE(submit, nullptr) << "the worker's SubmitWorkflowCommands continues the trace";
  EXPECT_EQ(submit->parent_id, rest->span_id) << "the worker's call is a child of the start";
  ASSERT_NE(complete, nullptr) << "the task's completion continues the trace";
  const ReceivedSpan* scheduler =
      collector.Find([&](const ReceivedSpan& sp) { return sp.span_id == complete->parent_id; });
  ASSERT_NE(scheduler, nullptr);
  EXPECT_EQ(scheduler->name, "flovyn.v1/SubmitWorkflowCommands") << "the task's parent is the call that scheduled it";
  // Store transactions nest under their calls.
  const ReceivedSpan* start_tx = collector.Find(
      [&](const ReceivedSpan& sp) { return sp.name == "store.StartWorkflow" && sp.parent_id == rest->span_id; });
  EXPECT_NE(start_tx, nullptr);
  (void)poll_task;
}

TEST(TracingTest, SpansQueuedAtSigtermReachTheCollectorBeforeExit) {
  TestCollector collector;
  // A batch interval far longer than the test: only the shutdown flush can export.
  EngineServer s({.env = OtelEnv(collector.port(), "600000")});
  for (int i = 0; i < 5; ++i) s.RestJson("POST", "/api/tenants/acme/workflows", R"({"kind":"flush-me"})");
  std::this_thread::sleep_for(300ms);
  size_t before = collector.spans().size();
  s.server().process().Signal(SIGTERM);
  ASSERT_EQ(s.server().process().Wait(15s), 0) << s.server().process().Log();
  size_t starts = 0;
  for (const auto& sp : collector.spans()) starts += sp.name == "POST /api/tenants/{tenant}/workflows";
  EXPECT_EQ(before, 0u) << "nothing was exported before the shutdown";
  EXPECT_GE(starts, 5u);
}

TEST(TracingTest, WithTheCollectorDownRequestsAreUnaffectedAndDroppedSpansAreCounted) {
  int dead = FreePort();
  auto env = OtelEnv(dead, "50");
  env["METRICS__ENABLED"] = "true";
  env["OTEL__MAX_QUEUE"] = "16";
  EngineServer s({.env = env});
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows", R"({"kind":"k"})").status, 201);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  std::string metrics;
  double dropped = 0;
  for (int i = 0; i < 100 && dropped == 0; ++i) {
    std::this_thread::sleep_for(100ms);
    metrics = HttpGet(s.server().metrics_port(), "/metrics").body;
    const std::string needle = "\nflovyn_trace_spans_dropped_total ";
    auto p = metrics.find(needle);
    if (p != std::string::npos) dropped = std::stod(metrics.substr(p + needle.size()));
  }
  EXPECT_GT(dropped, 0) << metrics;
  EXPECT_EQ(s.Rest("GET", "/_/health/ready", "", "").status, 200);
}

TEST(TraceContextTest, TraceparentRoundTripsAndRejectsGarbage) {
  auto c = trace::SpanContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->TraceParent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_FALSE(trace::SpanContext::Parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(trace::SpanContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(trace::SpanContext::Parse("garbage"));
  EXPECT_FALSE(trace::SpanContext::Parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(trace::SpanContext::Parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
}

}  // namespace
}  // namespace flovyn::testing
