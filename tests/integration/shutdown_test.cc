// Graceful shutdown (operations.md §4) of a real server process.
#include <signal.h>

#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace flovyn::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

TEST(ShutdownTest, InFlightRequestCompletesAndNewConnectionsAreRefusedAfterTheDelay) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(),
                        .env = {{"SHUTDOWN__DELAY_SECS", "1"}, {"SHUTDOWN__TIMEOUT_SECS", "10"}},
                        .testbed = true});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  int port = server.http_port();

  HttpResult slow;
  std::thread t([&] { slow = HttpGet(port, "/api/testbed/sleep?ms=3000", 20s); });
  std::this_thread::sleep_for(300ms);
  auto t_signal = Clock::now();
  server.process().Signal(SIGTERM);

  // Ready turns 503 at once.
  HttpResult ready;
  for (int i = 0; i < 50; ++i) {
    ready = HttpGet(port, "/_/health/ready", 1s);
    if (ready.status == 503) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(ready.status, 503);
  EXPECT_LT(Clock::now() - t_signal, 500ms);
  // During the delay, new requests are still served.
  EXPECT_EQ(HttpGet(port, "/api/testbed/sleep?ms=0", 2s).status, 200);

  std::this_thread::sleep_for(1500ms);  // past the delay
  auto refused = HttpGet(port, "/_/health/live", 1s);
  EXPECT_EQ(refused.status, 0) << "new connections must be refused after the delay";
  EXPECT_NE(refused.error.find("connect"), std::string::npos) << refused.error;

  t.join();
  EXPECT_EQ(slow.status, 200) << slow.error;
  EXPECT_EQ(server.process().Wait(10s), 0) << server.process().Log();
  std::string log = server.process().Log();
  EXPECT_NE(log.find("drain: in-flight requests finished"), std::string::npos) << log;
  EXPECT_NE(log.find("stopped cleanly"), std::string::npos) << log;
}

TEST(ShutdownTest, RequestOutlivingTheTimeoutIsCutAndTheProcessExitsInTime) {
  ServerProcess server(
      {.database_url = Postgres::Shared().CreateDatabase(), .env = {{"SHUTDOWN__TIMEOUT_SECS", "2"}}, .testbed = true});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  HttpResult slow;
  std::thread t([&] { slow = HttpGet(server.http_port(), "/api/testbed/sleep?ms=30000", 40s); });
  std::this_thread::sleep_for(300ms);
  auto t0 = Clock::now();
  server.process().Signal(SIGTERM);
  int code = server.process().Wait(10s);
  auto took = Clock::now() - t0;
  t.join();
  EXPECT_EQ(code, 0) << server.process().Log();
  EXPECT_LT(took, 3s) << "timeout (2 s) plus one second";
  EXPECT_NE(slow.status, 200);
  EXPECT_NE(server.process().Log().find("cancelled 1 in-flight HTTP request"), std::string::npos)
      << server.process().Log();
}

TEST(ShutdownTest, ASecondSignalExitsAtOnce) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"SHUTDOWN__DELAY_SECS", "30"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  server.process().Signal(SIGTERM);
  ASSERT_TRUE(Eventually([&] { return HttpGet(server.http_port(), "/_/health/ready", 1s).status == 503; }))
      << "the first signal began the drain";
  EXPECT_TRUE(server.process().running()) << "and the 30 s delay holds it";
  auto t0 = Clock::now();
  server.process().Signal(SIGINT);
  int code = server.process().Wait(5s);
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_NE(code, -1);
  EXPECT_NE(server.process().Log().find("again during the drain"), std::string::npos);
}

TEST(ShutdownTest, EachPhaseIsLoggedWithItsDuration) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase()});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  server.process().Signal(SIGTERM);
  ASSERT_EQ(server.process().Wait(10s), 0);
  std::string log = server.process().Log();
  for (const char* phase :
       {"stage DRAINING", "drain: stopped accepting connections", "drain: in-flight requests finished",
        "drain: background work stopped, telemetry flushed", "drain: NATS and database closed", "stage STOPPED"}) {
    auto p = log.find(phase);
    ASSERT_NE(p, std::string::npos) << phase << "\n" << log;
    auto line_end = log.find('\n', p);
    std::string line = log.substr(p, line_end - p);
    EXPECT_TRUE(std::regex_search(line, std::regex(R"(\(\d+\.\d{3} s)"))) << line;
  }
}

TEST(ShutdownTest, SigtermDuringStartupWhileTheDatabaseIsUnreachableExitsCleanly) {
  ServerProcess server({.database_url = "postgres://postgres@127.0.0.1:" + std::to_string(FreePort()) + "/x"});
  HttpResult live;
  for (int i = 0; i < 200; ++i) {  // until it is retrying migrations against the missing database
    live = HttpGet(server.http_port(), "/_/health/live", 500ms);
    if (live.status == 200 && nlohmann::json::parse(live.body)["stage"] == "MIGRATING") break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(live.status, 200);
  EXPECT_EQ(nlohmann::json::parse(live.body)["stage"], "MIGRATING");
  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(10s), 0) << server.process().Log();
}

}  // namespace
}  // namespace flovyn::testing
