// Label floods: invented HTTP methods and gRPC methods, new queue names and kinds, and
// NUL-suffixed tenant slugs must not grow the process or its /metrics page.
#include <thread>

#include <gtest/gtest.h>

#include "app_harness.h"
#include "engine_harness.h"
#include "flovyn/v1/flovyn.grpc.pb.h"
#include "hostile.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

// RSS once the process has settled (the server hands freed memory back every few seconds).
double SettledRss(pid_t pid) {
  std::this_thread::sleep_for(6500ms);
  return ReadProc(pid).rss_mb;
}

void InventedMethods(int port, int n) {
  for (int i = 0; i < n; ++i) HttpRequest("M" + std::to_string(i), port, "/api/x", "", {}, 5s);
}

TEST(HostileLabelsTest, InventedMethodsNewQueuesAndNulSlugsGrowNeitherTheServerNorItsMetrics) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  pid_t pid = s.server().process().pid();
  int metrics_port = s.server().metrics_port();
  sdk::Client client(s.ClientFor("acme"));
  v1::RegisterWorkerRequest reg;
  reg.set_name("w");
  std::string worker;
  ASSERT_TRUE(client.RegisterWorker(reg, &worker).ok());
  auto poll_queues = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      v1::PollTaskRequest req;
      req.set_worker_id(worker);
      req.set_queue("q-" + std::to_string(i));
      req.set_timeout_ms(0);
      v1::PollTaskResponse res;
      (void)client.PollTask(req, &res);
    }
  };
  // Warm every path once, then measure.
  InventedMethods(s.http_port(), 50);
  poll_queues(0, 200);
  for (int i = 0; i < 50; ++i) s.Rest("GET", "/api/tenants/acme%00w" + std::to_string(i) + "/workflows");
  double before = SettledRss(pid);

  InventedMethods(s.http_port(), 5000);
  for (int i = 0; i < 20000; ++i) {
    auto r = s.Rest("GET", "/api/tenants/acme%00z" + std::to_string(i) + "/workflows");
    if (i == 0) {
      EXPECT_EQ(r.status, 400) << r.body;
    }
  }
  std::vector<std::thread> pollers;
  for (int t = 0; t < 6; ++t) pollers.emplace_back(poll_queues, 1000 + t * 5000, 1000 + (t + 1) * 5000);
  for (auto& t : pollers) t.join();
  // Work on 300 new queues of 300 new kinds: the depth and per-kind series hit their caps.
  for (int i = 0; i < 300; ++i) {
    v1::StartWorkflowResponse started;
    (void)client.StartWorkflow("kind-" + std::to_string(i), "{}", &started);
  }
  {
    H2Conn c(s.server().grpc_port());
    for (int i = 0; i < 2000; ++i) c.Reset(c.OpenStream("/invented.Service/M" + std::to_string(i)));
    c.Flush();
  }
  std::this_thread::sleep_for(2500ms);  // a queue-depth refresh
  double after = SettledRss(pid);
  auto metrics = HttpGet(metrics_port, "/metrics");
  std::printf(
      "server: RSS %.1f -> %.1f MiB after 5000 methods, 20000 NUL slugs, 30000 queues, 300 kinds, "
      "2000 gRPC paths; /metrics %zu bytes\n",
      before, after, metrics.body.size());
  EXPECT_LT(after - before, 10);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_LT(metrics.body.size(), 1024u * 1024);
  EXPECT_EQ(metrics.body.find("method=\"M4999\""), std::string::npos);
  EXPECT_EQ(metrics.body.find("/invented.Service/"), std::string::npos);
  EXPECT_NE(metrics.body.find("flovyn_workflows_started_total{kind=\"kind-299\"}"), std::string::npos);
}

TEST(HostileLabelsTest, InventedMethodsAndNulPathsGrowNeitherTheConsoleNorItsMetrics) {
  int metrics_port = FreePort();
  AppProcess app({.database_url = Postgres::Shared().CreateDatabase(),
                  .backend_url = "http://127.0.0.1:1",
                  .env = {{"METRICS__ENABLED", "true"}, {"METRICS__PORT", std::to_string(metrics_port)}}});
  // No engine behind it (readiness would wait for one): live is enough to take requests.
  for (int i = 0; i < 200 && HttpGet(app.port(), "/api/health/live", 1s).status != 200; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(HttpGet(app.port(), "/api/health/live").status, 200) << app.process().Log();
  pid_t pid = app.process().pid();
  InventedMethods(app.port(), 50);
  for (int i = 0; i < 50; ++i) HttpGet(app.port(), "/api/orgs/a%00w" + std::to_string(i));
  double before = SettledRss(pid);
  InventedMethods(app.port(), 5000);
  for (int i = 0; i < 20000; ++i) HttpGet(app.port(), "/api/orgs/a%00z" + std::to_string(i));
  double after = SettledRss(pid);
  auto metrics = HttpGet(metrics_port, "/metrics");
  std::printf("console: RSS %.1f -> %.1f MiB after 5000 methods and 20000 NUL paths; /metrics %zu bytes\n", before,
              after, metrics.body.size());
  EXPECT_LT(after - before, 10);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_LT(metrics.body.size(), 1024u * 1024);
  EXPECT_EQ(metrics.body.find("method=\"M4999\""), std::string::npos);
}

}  // namespace
}  // namespace flovyn::testing
