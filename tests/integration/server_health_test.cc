// The health table of operations.md §2 against a real server process and PostgreSQL.
#include <signal.h>

#include <thread>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
constexpr int64_t kServerLockKey = 0x466c6f76796e0001;

void ExpectProbeShape(const HttpResult& r, int status, const std::string& overall) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("cache-control"), "no-store");
  auto j = json::parse(r.body);
  EXPECT_EQ(j["status"], overall) << r.body;
  EXPECT_TRUE(j["checks"].is_object()) << r.body;
}

void ExpectNoSecret(const std::string& body) {
  EXPECT_EQ(body.find("test-worker-token-secret"), std::string::npos) << body;
  EXPECT_EQ(body.find("postgres://"), std::string::npos) << body;
  EXPECT_EQ(body.find("127.0.0.1:"), std::string::npos) << body;
}

TEST(ServerHealthTest, RunningWithHealthyDependencies) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase()});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  int port = server.http_port();

  auto live = HttpGet(port, "/_/health/live");
  ExpectProbeShape(live, 200, "UP");
  EXPECT_FALSE(json::parse(live.body).contains("stage"));

  auto ready = HttpGet(port, "/_/health/ready");
  ExpectProbeShape(ready, 200, "UP");
  auto rj = json::parse(ready.body);
  EXPECT_EQ(rj["checks"]["database"]["status"], "UP");
  EXPECT_TRUE(rj["checks"]["database"]["latencyMs"].is_number());
  EXPECT_FALSE(rj["checks"].contains("nats")) << "nats is only checked when enabled";

  auto startup = HttpGet(port, "/_/health/startup");
  ExpectProbeShape(startup, 200, "UP");

  auto legacy = HttpGet(port, "/_/health");
  EXPECT_EQ(legacy.status, 200);
  EXPECT_EQ(legacy.headers["cache-control"], "no-store");
  auto lj = json::parse(legacy.body);
  EXPECT_EQ(lj["status"], "UP");
  EXPECT_EQ(lj["version"], "0.1.0");
  EXPECT_EQ(lj["plugins"], json::array({"worker-token", "eventhook", "schedules"}));

  for (const auto& r : {live, ready, startup, legacy}) ExpectNoSecret(r.body);
}

TEST(ServerHealthTest, HealthNeedsNoAuthenticationWithSecurityOn) {
  ServerProcess server(
      {.database_url = Postgres::Shared().CreateDatabase(), .env = {{"FLOVYN_SECURITY__ENABLED", "true"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  for (const char* p : {"/_/health/live", "/_/health/ready", "/_/health/startup", "/_/health"}) {
    EXPECT_EQ(HttpGet(server.http_port(), p).status, 200) << p;
  }
}

TEST(ServerHealthTest, WhileMigratingOnlyLivenessIsUpAndApiAnswers503) {
  std::string url = Postgres::Shared().CreateDatabase();
  // Hold the migration lock so the server stays in MIGRATING.
  PGconn* holder = PQconnectdb(url.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
  PQclear(PQexec(holder, ("SELECT pg_advisory_lock(" + std::to_string(kServerLockKey) + ")").c_str()));

  ServerProcess server({.database_url = url});
  int port = server.http_port();
  HttpResult live;
  for (int i = 0; i < 200 && live.status != 200; ++i) {
    live = HttpGet(port, "/_/health/live", std::chrono::milliseconds(500));
    if (live.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  live = HttpGet(port, "/_/health/live");
  ExpectProbeShape(live, 200, "UP");
  EXPECT_EQ(json::parse(live.body)["stage"], "MIGRATING");

  auto ready = HttpGet(port, "/_/health/ready");
  ExpectProbeShape(ready, 503, "DOWN");
  EXPECT_EQ(json::parse(ready.body)["stage"], "MIGRATING");

  auto startup = HttpGet(port, "/_/health/startup");
  ExpectProbeShape(startup, 503, "DOWN");
  EXPECT_EQ(json::parse(startup.body)["stage"], "MIGRATING");

  auto legacy = HttpGet(port, "/_/health");
  EXPECT_EQ(legacy.status, 503);
  EXPECT_EQ(json::parse(legacy.body)["status"], "DOWN");

  auto api = HttpGet(port, "/api/anything");
  EXPECT_EQ(api.status, 404) << "unknown routes are 404 in every stage";

  PQclear(PQexec(holder, ("SELECT pg_advisory_unlock(" + std::to_string(kServerLockKey) + ")").c_str()));
  PQfinish(holder);
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  EXPECT_EQ(HttpGet(port, "/_/health/startup").status, 200);
}

TEST(ServerHealthTest, ApiRoutesAnswer503WithRetryAfterBeforeRunning) {
  std::string url = Postgres::Shared().CreateDatabase();
  PGconn* holder = PQconnectdb(url.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
  PQclear(PQexec(holder, ("SELECT pg_advisory_lock(" + std::to_string(kServerLockKey) + ")").c_str()));
  ServerProcess server({.database_url = url, .testbed = true});
  HttpResult api;
  for (int i = 0; i < 200 && api.status == 0; ++i) {
    api = HttpGet(server.http_port(), "/api/testbed/sleep?ms=0", std::chrono::milliseconds(500));
    if (api.status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(api.status, 503);
  EXPECT_EQ(api.headers["retry-after"], "1");
  EXPECT_EQ(json::parse(api.body)["error"]["code"], "UNAVAILABLE");
  PQfinish(holder);  // releases the lock
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  EXPECT_EQ(HttpGet(server.http_port(), "/api/testbed/sleep?ms=0").status, 200);
}

TEST(ServerHealthTest, DrainingIsNotReadyButAlive) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"SHUTDOWN__DELAY_SECS", "2"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  server.process().Signal(SIGTERM);
  ASSERT_TRUE(Eventually([&] { return HttpGet(server.http_port(), "/_/health/ready").status == 503; }));
  auto ready = HttpGet(server.http_port(), "/_/health/ready");
  ExpectProbeShape(ready, 503, "DOWN");
  EXPECT_EQ(json::parse(ready.body)["stage"], "DRAINING");
  auto live = HttpGet(server.http_port(), "/_/health/live");
  ExpectProbeShape(live, 200, "UP");
  EXPECT_EQ(json::parse(live.body)["stage"], "DRAINING");
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health").status, 503);
  EXPECT_EQ(server.process().Wait(std::chrono::seconds(10)), 0) << server.process().Log();
}

TEST(ServerHealthTest, ProbesShareChecksUnderAStorm) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"METRICS__ENABLED", "true"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto before = HttpGet(server.metrics_port(), "/metrics").body;
  std::vector<std::thread> storm;
  for (int t = 0; t < 8; ++t) {
    storm.emplace_back([&] {
      for (int i = 0; i < 50; ++i) EXPECT_EQ(HttpGet(server.http_port(), "/_/health/ready").status, 200);
    });
  }
  for (auto& t : storm) t.join();
  auto after = HttpGet(server.metrics_port(), "/metrics").body;
  auto runs = [](const std::string& m) {
    const std::string needle = "flovyn_health_check_runs_total{check=\"database\",result=\"up\"} ";
    auto p = m.find(needle);
    return p == std::string::npos ? 0 : std::stoi(m.substr(p + needle.size()));
  };
  // 400 probes in well under a few seconds: at most a handful of evaluations (one per second).
  EXPECT_LE(runs(after) - runs(before), 5) << after;
}

}  // namespace
}  // namespace flovyn::testing
