#include "flovyn/health/monitor.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

namespace flovyn::health {
namespace {

using namespace std::chrono_literals;

TEST(MonitorTest, ConcurrentProbesShareOneEvaluation) {
  Monitor m(2s, 1s);
  std::atomic<int> calls{0};
  m.Register("db", [&](Clock::time_point) {
    ++calls;
    std::this_thread::sleep_for(100ms);
    return CheckResult{true, 0, ""};
  });
  std::vector<std::thread> probes;
  std::atomic<int> up{0};
  for (int i = 0; i < 20; ++i) {
    probes.emplace_back([&] {
      if (m.EvaluateBlocking().all_up) ++up;
    });
  }
  for (auto& t : probes) t.join();
  EXPECT_EQ(up.load(), 20);
  EXPECT_EQ(calls.load(), 1);
}

TEST(MonitorTest, ResultIsReusedForAtMostMaxAge) {
  Monitor m(2s, 200ms);
  std::atomic<int> calls{0};
  m.Register("db", [&](Clock::time_point) {
    ++calls;
    return CheckResult{true, 0, ""};
  });
  m.EvaluateBlocking();
  m.EvaluateBlocking();
  EXPECT_EQ(calls.load(), 1);
  std::this_thread::sleep_for(250ms);
  m.EvaluateBlocking();
  EXPECT_EQ(calls.load(), 2);
}

TEST(MonitorTest, ASlowCheckIsDownAtTheTimeoutWithoutDelayingOthers) {
  Monitor m(300ms, 0ms);
  std::atomic<bool> release{false};
  m.Register("slow", [&](Clock::time_point deadline) {
    while (!release && Clock::now() < deadline + 1s) std::this_thread::sleep_for(5ms);
    return CheckResult{true, 0, ""};
  });
  m.Register("fast", [](Clock::time_point) { return CheckResult{true, 0, ""}; });
  auto t0 = Clock::now();
  Report r = m.EvaluateBlocking();
  auto took = Clock::now() - t0;
  release = true;
  EXPECT_LT(took, 1s);
  EXPECT_FALSE(r.all_up);
  EXPECT_FALSE(r.checks["slow"].up);
  EXPECT_NE(r.checks["slow"].error.find("timed out"), std::string::npos);
  EXPECT_TRUE(r.checks["fast"].up);
}

TEST(MonitorTest, DownCheckCarriesItsError) {
  Monitor m(1s, 0ms);
  m.Register("nats", [](Clock::time_point) { return CheckResult{false, 0, "not connected (reconnecting)"}; });
  Report r = m.EvaluateBlocking();
  EXPECT_FALSE(r.all_up);
  EXPECT_EQ(r.checks["nats"].error, "not connected (reconnecting)");
}

}  // namespace
}  // namespace flovyn::health
