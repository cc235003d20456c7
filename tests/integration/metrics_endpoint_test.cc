// The metrics listener of a running server: promtool-clean, with the promised series.
#include <fstream>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "harness.h"

namespace flovyn::testing {
namespace {

TEST(MetricsEndpointTest, PromtoolAcceptsTheOutputAndTheSeriesArePresent) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"METRICS__ENABLED", "true"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  HttpGet(server.http_port(), "/_/health/live");
  HttpGet(server.http_port(), "/no/such/route");
  {
    auto stub = ::grpc::health::v1::Health::NewStub(
        ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()), ::grpc::InsecureChannelCredentials()));
    ::grpc::ClientContext ctx;
    ::grpc::health::v1::HealthCheckRequest req;
    ::grpc::health::v1::HealthCheckResponse res;
    ASSERT_TRUE(stub->Check(&ctx, req, &res).ok());
  }
  auto r = HttpGet(server.metrics_port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = r.body;
  for (const char* series : {
           "flovyn_http_requests_total{method=\"GET\",route=\"/_/health/live\",status=\"200\"} 1",
           "flovyn_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
           "flovyn_http_request_duration_seconds_bucket{method=\"GET\",route=\"/_/health/live\",le=\"+Inf\"} 1",
           // The call above, and the liveness probe's own self-check of the listener.
           "flovyn_grpc_requests_total{method=\"/grpc.health.v1.Health/Check\",code=\"OK\"} 2",
           "flovyn_grpc_request_duration_seconds_count{method=\"/grpc.health.v1.Health/Check\"} 2",
           "flovyn_db_pool_max_connections{pool=\"main\"} 16",
           "flovyn_db_pool_connections{pool=\"main\",state=\"in_use\"}",
           "flovyn_health_check_up{check=\"database\"} 1",
           "flovyn_build_info{program=\"flovyn-server\",version=\"0.1.0\"} 1",
           "flovyn_lifecycle_stage{stage=\"RUNNING\"} 1",
           "\nprocess_resident_memory_bytes ",
           "\nprocess_cpu_seconds_total ",
       }) {
    EXPECT_NE(m.find(series), std::string::npos) << series << "\n" << m;
  }
  std::string dir = MakeTempDir("flovyn-metrics");
  std::ofstream(dir + "/metrics.txt") << m;
  std::string out;
  EXPECT_EQ(RunCommand("promtool check metrics < " + dir + "/metrics.txt", &out), 0) << out;
  EXPECT_EQ(out, "") << out;
}

TEST(MetricsEndpointTest, NoMetricsListenerUnlessEnabled) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase()});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  EXPECT_EQ(HttpGet(server.metrics_port(), "/metrics", std::chrono::seconds(1)).status, 0);
}

}  // namespace
}  // namespace flovyn::testing
