// Readiness tells the truth about dependencies: PostgreSQL and NATS going away and coming back,
// and a database host that accepts connections but never answers.
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Polls the ready probe until it answers `status`; returns how long that took.
std::chrono::milliseconds WaitForReadyStatus(int port, int status, std::chrono::milliseconds limit, HttpResult* last) {
  auto t0 = Clock::now();
  while (Clock::now() - t0 < limit) {
    *last = HttpGet(port, "/_/health/ready");
    if (last->status == status) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

TEST(DependencyOutageTest, PostgresStoppedThenRestartedWithoutRestartingTheServer) {
  Postgres pg;  // our own: this test stops it
  ServerProcess server({.database_url = pg.CreateDatabase()});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();

  pg.Stop();
  HttpResult ready;
  auto took = WaitForReadyStatus(server.http_port(), 503, std::chrono::seconds(8), &ready);
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_LT(took, std::chrono::milliseconds(6500)) << "the check timeout is 5 s and results live 1 s";
  auto j = json::parse(ready.body);
  EXPECT_EQ(j["status"], "DOWN");
  EXPECT_EQ(j["checks"]["database"]["status"], "DOWN");
  EXPECT_TRUE(j["checks"]["database"]["error"].is_string());
  EXPECT_EQ(ready.body.find("postgres://"), std::string::npos);
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health/live").status, 200);
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health/startup").status, 503);

  pg.Start();
  WaitForReadyStatus(server.http_port(), 200, std::chrono::seconds(15), &ready);
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_TRUE(server.process().running());
}

TEST(DependencyOutageTest, NatsStoppedThenRestarted) {
  Nats nats;
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(),
                        .env = {{"NATS__ENABLED", "true"}, {"NATS__URL", nats.Url()}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  auto up = json::parse(HttpGet(server.http_port(), "/_/health/ready").body);
  EXPECT_EQ(up["checks"]["nats"]["status"], "UP");

  nats.Stop();
  HttpResult ready;
  auto took = WaitForReadyStatus(server.http_port(), 503, std::chrono::seconds(8), &ready);
  EXPECT_EQ(ready.status, 503);
  EXPECT_LT(took, std::chrono::milliseconds(6500));
  auto j = json::parse(ready.body);
  EXPECT_EQ(j["checks"]["nats"]["status"], "DOWN");
  EXPECT_NE(j["checks"]["nats"]["error"].get<std::string>().find("not connected"), std::string::npos);
  EXPECT_EQ(j["checks"]["database"]["status"], "UP");
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health/live").status, 200);

  nats.Start();
  WaitForReadyStatus(server.http_port(), 200, std::chrono::seconds(15), &ready);
  EXPECT_EQ(ready.status, 200) << ready.body;
}

TEST(DependencyOutageTest, ServerStartsAndServesLivenessWhileNatsIsDown) {
  int dead_port = FreePort();
  ServerProcess server(
      {.database_url = Postgres::Shared().CreateDatabase(),
       .env = {{"NATS__ENABLED", "true"}, {"NATS__URL", "nats://127.0.0.1:" + std::to_string(dead_port)}}});
  // RUNNING (the legacy endpoint says so) but not ready: NATS is a dependency.
  HttpResult legacy;
  for (int i = 0; i < 200 && legacy.status != 200; ++i) {
    legacy = HttpGet(server.http_port(), "/_/health", std::chrono::seconds(1));
    if (legacy.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(legacy.status, 200) << server.process().Log();
  HttpResult ready = HttpGet(server.http_port(), "/_/health/ready");
  ASSERT_EQ(ready.status, 503) << server.process().Log();
  EXPECT_EQ(json::parse(ready.body)["checks"]["nats"]["status"], "DOWN");
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health/live").status, 200);
  EXPECT_TRUE(server.process().running());
}

TEST(DependencyOutageTest, ReadyAnswersWithinSixSecondsWhenTheDatabaseHostDropsPackets) {
  TcpProxy proxy(Postgres::Shared().port());
  ServerProcess server({.database_url = Postgres::Shared().Through(Postgres::Shared().CreateDatabase(), proxy.port())});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();

  proxy.SetBlackhole(true);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // let the cached result expire
  for (int i = 0; i < 2; ++i) {  // first probe: pooled connection hangs; second: connect hangs
    auto t0 = Clock::now();
    auto r = HttpGet(server.http_port(), "/_/health/ready", std::chrono::seconds(20));
    auto took = Clock::now() - t0;
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_LT(took, std::chrono::seconds(6));
    auto j = json::parse(r.body);
    EXPECT_EQ(j["checks"]["database"]["status"], "DOWN");
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  }
  // Probes never wait behind each other: concurrent probes during the outage all answer in time.
  std::vector<std::thread> probes;
  std::atomic<int> in_time{0};
  for (int i = 0; i < 10; ++i) {
    probes.emplace_back([&] {
      auto t0 = Clock::now();
      auto r = HttpGet(server.http_port(), "/_/health/ready", std::chrono::seconds(20));
      if (r.status == 503 && Clock::now() - t0 < std::chrono::seconds(6)) ++in_time;
    });
  }
  for (auto& t : probes) t.join();
  EXPECT_EQ(in_time.load(), 10);
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health/live", std::chrono::seconds(1)).status, 200);

  proxy.SetBlackhole(false);
  HttpResult ready;
  WaitForReadyStatus(server.http_port(), 200, std::chrono::seconds(20), &ready);
  EXPECT_EQ(ready.status, 200) << ready.body;
}

}  // namespace
}  // namespace flovyn::testing
