// Schedules against a real flovyn-server and PostgreSQL: creation and validation, the next fire
// times, each overlap policy, catch-up after downtime, pause / resume / trigger-now, backfill,
// and two replicas with a restart starting each fire time exactly once.
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "engine_harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

json Create(EngineServer& s, json body, int expect = 201) {
  auto r = s.Rest("POST", "/api/tenants/acme/schedules", body.dump());
  EXPECT_EQ(r.status, expect) << r.body;
  return json::parse(r.body);
}

json Interval(const std::string& name, const std::string& overlap, int seconds = 1) {
  return {{"name", name},
          {"intervalSeconds", seconds},
          {"overlap", overlap},
          {"workflow", {{"kind", "tick"}, {"queue", "sched-" + name}, {"input", {{"from", name}}}}}};
}

// Workflows the schedule started (their idempotency keys name it).
int64_t Started(EngineServer& s, const std::string& id) {
  return SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE idempotency_key LIKE 'schedule:" + id + ":%'");
}

TEST(SchedulesTest, ACronScheduleInAZoneListsItsNextFiveFireTimesAndBadInputChangesNothing) {
  EngineServer s;
  json created = Create(s, {{"name", "nightly"},
                            {"cron", "30 2 * * *"},
                            {"timezone", "Europe/Berlin"},
                            {"workflow", {{"kind", "report"}, {"input", {{"x", 1}}}}}});
  ASSERT_TRUE(created.contains("id"));
  json got = s.RestJson("GET", "/api/tenants/acme/schedules/" + created["id"].get<std::string>());
  ASSERT_EQ(got["nextFireTimes"].size(), 5u) << got.dump();
  for (const auto& t : got["nextFireTimes"]) {
    std::string utc = t.get<std::string>();
    // 02:30 in Berlin is 00:30 or 01:30 UTC (summer or winter time).
    EXPECT_TRUE(utc.find("T00:30:00") != std::string::npos || utc.find("T01:30:00") != std::string::npos) << utc;
  }
  EXPECT_EQ(got["workflow"]["queue"], "default");
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/schedules")["items"].size(), 1u);

  const std::vector<std::pair<json, std::string>> bad = {
      {{{"name", "b"}, {"cron", "61 * * * *"}, {"workflow", {{"kind", "k"}}}}, "minute"},
      {{{"name", "b"}, {"cron", "* * * * *"}, {"timezone", "Mars/Base"}, {"workflow", {{"kind", "k"}}}}, "time zone"},
      {{{"name", "b"}, {"workflow", {{"kind", "k"}}}}, "exactly one of"},
      {{{"name", "b"}, {"intervalSeconds", 0}, {"workflow", {{"kind", "k"}}}}, "intervalSeconds"},
      {{{"name", "b"}, {"intervalSeconds", 5}, {"overlap", "sometimes"}, {"workflow", {{"kind", "k"}}}}, "overlap"},
      {{{"name", "b"}, {"intervalSeconds", 5}}, "workflow"},
      {{{"name", "nightly"}, {"intervalSeconds", 5}, {"workflow", {{"kind", "k"}}}}, "exists"},
  };
  for (const auto& [body, needle] : bad) {
    auto r = s.Rest("POST", "/api/tenants/acme/schedules", body.dump());
    EXPECT_TRUE(r.status == 400 || r.status == 409) << body.dump() << " -> " << r.status;
    EXPECT_NE(r.body.find(needle), std::string::npos) << r.body;
  }
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM schedules"), 1);
  // Another tenant's key cannot see it; a member can read but the worker role cannot.
  auto other = s.Rest("GET", "/api/tenants/acme/schedules/" + created["id"].get<std::string>(), "", TenantKey("zeta"));
  EXPECT_GE(other.status, 401);
}

TEST(SchedulesTest, AnIntervalScheduleStartsOneWorkflowPerFireTimeWithTheFireTimeAsKey) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  json sch = Create(s, Interval("every-second", "allow_all"));
  std::string id = sch["id"];
  ASSERT_TRUE(Eventually([&] { return Started(s, id) >= 3; }, 10s));
  auto got = s.RestJson("GET", "/api/tenants/acme/schedules/" + id);
  EXPECT_GE(got["fires"].get<int>(), 3);
  ASSERT_FALSE(got["recentRuns"].empty());
  const json& run = got["recentRuns"][0];
  EXPECT_EQ(run["trigger"], "schedule");
  EXPECT_EQ(run["outcome"], "started");
  auto wf = s.RestJson("GET", "/api/tenants/acme/workflows/" + run["executionId"].get<std::string>());
  EXPECT_EQ(wf["idempotencyKey"], "schedule:" + id + ":" + run["fireAt"].get<std::string>());
  EXPECT_EQ(wf["input"]["from"], "every-second");
  EXPECT_LT(run["latenessMs"].get<int>(), 1000);
  EXPECT_GE(ScrapeMetric(s.server().metrics_port(), "flovyn_schedule_fires_total", "trigger=\"schedule\""), 3);
}

TEST(SchedulesTest, OverlapSkipStartsNothingWhileThePreviousRunIsGoing) {
  EngineServer s;
  std::string id = Create(s, Interval("skip", "skip"))["id"];
  // No worker: the first run stays PENDING, so later fire times are skipped.
  ASSERT_TRUE(
      Eventually([&] { return s.RestJson("GET", "/api/tenants/acme/schedules/" + id)["skips"].get<int>() >= 2; }, 10s));
  EXPECT_EQ(Started(s, id), 1);
  auto got = s.RestJson("GET", "/api/tenants/acme/schedules/" + id);
  EXPECT_NE(got["recentRuns"][0]["outcome"].get<std::string>().find("skipped"), std::string::npos);
}

TEST(SchedulesTest, OverlapBufferOneStartsOneBufferedRunWhenThePreviousEnds) {
  EngineServer s;
  std::string id = Create(s, Interval("buffer", "buffer_one"))["id"];
  ASSERT_TRUE(Eventually(
      [&] {
        auto g = s.RestJson("GET", "/api/tenants/acme/schedules/" + id);
        return !g["bufferedFireAt"].is_null() && g["skips"].get<int>() >= 1;
      },
      10s))
      << "one fire time buffered, the next skipped";
  EXPECT_EQ(Started(s, id), 1);
  std::string first = s.RestJson("GET", "/api/tenants/acme/schedules/" + id)["lastExecutionId"];
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + first + "/cancel", "{}").status, 202);
  ASSERT_TRUE(Eventually([&] { return Started(s, id) == 2; }, 10s)) << "the buffered run starts";
  auto got = s.RestJson("GET", "/api/tenants/acme/schedules/" + id);
  EXPECT_NE(got["lastExecutionId"], first);
}

TEST(SchedulesTest, OverlapCancelPreviousCancelsTheRunningOneAndStartsTheNext) {
  EngineServer s;
  std::string id = Create(s, Interval("cancel", "cancel_previous"))["id"];
  ASSERT_TRUE(Eventually([&] { return Started(s, id) >= 3; }, 10s));
  std::string keys = "idempotency_key LIKE 'schedule:" + id + ":%'";
  ASSERT_TRUE(Eventually(
      [&] {
        return SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE " + keys + " AND status <> 'CANCELLED'") == 1;
      },
      5s))
      << Sql(s, "SELECT status FROM workflow_executions WHERE " + keys);
  EXPECT_GE(SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE " + keys + " AND status = 'CANCELLED'"), 2);
}

TEST(SchedulesTest, AfterDowntimeOnlyMissedTimesWithinTheCatchUpWindowRunAtMostN) {
  EngineServer s;
  json body = Interval("catchup", "allow_all");
  body["catchupWindowSeconds"] = 3;
  body["catchupMaxRuns"] = 2;
  std::string id = Create(s, body)["id"];
  ASSERT_TRUE(Eventually([&] { return Started(s, id) >= 1; }, 10s));
  s.Stop();
  int64_t before = Started(s, id);
  int64_t skips_before = SqlInt(s, "SELECT skips FROM schedules WHERE id = '" + id + "'");
  std::this_thread::sleep_for(6s);  // about six fire times missed
  std::string restart_at = Sql(s, "SELECT now()");
  s.Restart();
  ASSERT_TRUE(
      Eventually([&] { return SqlInt(s, "SELECT skips FROM schedules WHERE id = '" + id + "'") > skips_before; }, 10s));
  // Missed times run after the restart: the two most recent within the window, no more.
  int64_t caught_up = SqlInt(s, "SELECT count(*) FROM schedule_runs WHERE schedule_id = '" + id + "' AND fire_at < '" +
                                    restart_at + "' AND recorded_at > '" + restart_at + "'");
  EXPECT_EQ(caught_up, 2);
  int64_t skipped = SqlInt(s, "SELECT skips FROM schedules WHERE id = '" + id + "'") - skips_before;
  EXPECT_GE(skipped, 3) << "missed times older than the window were skipped and counted";
  EXPECT_LE(Started(s, id) - before, 2 + 3) << "at most two catch-up runs, then the regular ones";
}

TEST(SchedulesTest, PauseStopsFiresTriggerNowStartsOneAndResumeGoesOn) {
  EngineServer s;
  std::string id = Create(s, Interval("pausable", "allow_all"))["id"];
  std::string base = "/api/tenants/acme/schedules/" + id;
  ASSERT_EQ(s.Rest("POST", base + "/pause", "{}").status, 200);
  int64_t at_pause = Started(s, id);
  std::this_thread::sleep_for(2500ms);
  EXPECT_LE(Started(s, id), at_pause + 1) << "a paused schedule does not fire (one pass may have been under way)";
  int64_t paused_count = Started(s, id);
  auto trig = s.Rest("POST", base + "/trigger", "{}");
  ASSERT_EQ(trig.status, 200) << trig.body;
  EXPECT_EQ(json::parse(trig.body)["trigger"], "manual");
  EXPECT_EQ(Started(s, id), paused_count + 1);
  ASSERT_EQ(s.Rest("POST", base + "/resume", "{}").status, 200);
  ASSERT_TRUE(Eventually([&] { return Started(s, id) >= paused_count + 3; }, 10s));
}

TEST(SchedulesTest, BackfillStartsEachFireTimeInTheRangeOnce) {
  EngineServer s;
  std::string id = Create(s, {{"name", "hourly"}, {"cron", "@hourly"}, {"workflow", {{"kind", "report"}}}})["id"];
  std::string base = "/api/tenants/acme/schedules/" + id;
  json range = {{"from", "2026-01-01T00:00:00Z"}, {"to", "2026-01-01T04:00:00Z"}};
  auto first = s.Rest("POST", base + "/backfill", range.dump());
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(json::parse(first.body)["runs"].size(), 5u);
  EXPECT_EQ(Started(s, id), 5);
  auto again = json::parse(s.Rest("POST", base + "/backfill", range.dump()).body);
  EXPECT_EQ(Started(s, id), 5) << "a fire time that already ran starts nothing new";
  EXPECT_EQ(again["runs"][0]["outcome"], "already started for this fire time");
  auto huge =
      s.Rest("POST", base + "/backfill", json{{"from", "2020-01-01T00:00:00Z"}, {"to", "2026-01-01T00:00:00Z"}}.dump());
  EXPECT_EQ(huge.status, 400);
  EXPECT_NE(huge.body.find("1000"), std::string::npos) << huge.body;
}

TEST(SchedulesTest, TwoReplicasAndARestartStartEachFireTimeExactlyOnce) {
  EngineServer a;
  EngineServer b({.database_url = a.database_url(), .create_tenants = false});
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(Create(a, Interval("r" + std::to_string(i), "allow_all"))["id"]);
  std::this_thread::sleep_for(3s);
  a.Restart();  // a replica goes away mid-run and comes back
  std::this_thread::sleep_for(3s);
  b.Stop();  // counted at rest
  a.Stop();
  for (const auto& id : ids) {
    std::string where = " FROM schedule_runs WHERE schedule_id = '" + id + "' AND trigger = 'schedule'";
    int64_t runs = SqlInt(a, "SELECT count(*)" + where);
    int64_t distinct = SqlInt(a, "SELECT count(DISTINCT execution_id)" + where);
    int64_t started = Started(a, id);
    EXPECT_GE(runs, 4) << id;
    EXPECT_EQ(runs, distinct) << "one execution per fire time";
    EXPECT_EQ(runs, started) << "every started workflow is one recorded fire time";
    // No fire time lost: consecutive fire times are one interval apart, start to end.
    int64_t gaps = SqlInt(a, "SELECT count(*) FROM (SELECT fire_at - lag(fire_at) OVER (ORDER BY fire_at) AS d" +
                                 where + ") x WHERE d <> interval '1 second'");
    EXPECT_EQ(gaps, 0) << Sql(a, "SELECT fire_at, outcome" + where + " ORDER BY fire_at");
  }
}

}  // namespace
}  // namespace flovyn::testing
