// Fire times from a table: cron fields, names, and the daylight-saving transitions of
// Europe/Berlin (2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00) and America/New_York
// (2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00).
#include "cron.h"

#include <gtest/gtest.h>

namespace flovyn::plugins {
namespace {

Instant At(const std::string& text) {
  auto t = ParseInstant(text);
  EXPECT_TRUE(t.ok()) << text;
  return t.ok() ? *t : Instant{};
}

std::vector<std::string> NextN(const std::string& cron, const std::string& zone, const std::string& after, int n) {
  auto c = CronExpression::Parse(cron);
  EXPECT_TRUE(c.ok()) << c.status().message();
  auto z = LoadZone(zone);
  EXPECT_TRUE(z.ok()) << z.status().message();
  std::vector<std::string> out;
  Instant t = At(after);
  for (int i = 0; i < n; ++i) {
    auto next = c->Next(t, *z);
    if (!next) break;
    out.push_back(FormatInstant(*next));
    t = *next;
  }
  return out;
}

struct Case {
  const char* cron;
  const char* zone;
  const char* after;
  std::vector<std::string> expected;
};

TEST(CronTest, FireTimesFromTheTable) {
  const std::vector<Case> cases = {
      // Plain fields in UTC.
      {"*/15 * * * *",
       "UTC",
       "2026-11-28T10:07:00Z",
       {"2026-11-28T10:15:00.000Z", "2026-11-28T10:30:00.000Z", "2026-11-28T10:45:00.000Z"}},
      {"0 9 * * MON-FRI",
       "UTC",
       "2026-11-27T10:00:00Z",  // a Friday
       {"2026-11-30T09:00:00.000Z", "2026-12-01T09:00:00.000Z"}},
      {"30 4 1,15 * *", "UTC", "2026-11-02T00:00:00Z", {"2026-11-15T04:30:00.000Z", "2026-12-01T04:30:00.000Z"}},
      {"0 0 1 1 *", "UTC", "2026-06-01T00:00:00Z", {"2027-01-01T00:00:00.000Z"}},
      {"@hourly", "UTC", "2026-11-28T10:00:00Z", {"2026-11-28T11:00:00.000Z", "2026-11-28T12:00:00.000Z"}},
      {"@weekly", "UTC", "2026-11-28T10:00:00Z", {"2026-11-29T00:00:00.000Z"}},     // Sunday
      {"0 12 * * 7", "UTC", "2026-11-28T10:00:00Z", {"2026-11-29T12:00:00.000Z"}},  // 7 is Sunday too
      // Day of month and day of week both restricted: either matches (the 13th, or a Friday).
      {"0 0 13 * FRI",
       "UTC",
       "2026-11-01T00:00:00Z",
       {"2026-11-06T00:00:00.000Z", "2026-11-13T00:00:00.000Z", "2026-11-20T00:00:00.000Z"}},
      {"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", {"2028-02-29T00:00:00.000Z"}},
      // Berlin, spring forward: 02:30 does not exist on 2026-03-29; it fires once at 03:00 local
      // (01:00 UTC), and the next day at 02:30 CEST (00:30 UTC).
      {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", {"2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"}},
      // Every 15 minutes across the gap: 01:45 CET, then one fire for the skipped hour at 03:00 CEST.
      {"*/15 * * * *",
       "Europe/Berlin",
       "2026-03-29T00:40:00Z",
       {"2026-03-29T00:45:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-29T01:15:00.000Z"}},
      // Berlin, fall back: 02:30 happens twice on 2026-10-25 and fires once, at the first (CEST).
      {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", {"2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"}},
      // Hourly through the repeated hour: 02:00 CEST, then 03:00 CET; the second 02:00 does not fire.
      {"0 * * * *",
       "Europe/Berlin",
       "2026-10-24T23:30:00Z",
       {"2026-10-25T00:00:00.000Z", "2026-10-25T02:00:00.000Z", "2026-10-25T03:00:00.000Z"}},
      // New York, spring forward on 2026-03-08: 02:15 is skipped and fires at 03:00 EDT (07:00 UTC).
      {"15 2 * * *",
       "America/New_York",
       "2026-03-07T12:00:00Z",
       {"2026-03-08T07:00:00.000Z", "2026-03-09T06:15:00.000Z"}},
      // New York, fall back on 2026-11-01: 01:30 happens twice and fires once, at 01:30 EDT (05:30 UTC).
      {"30 1 * * *",
       "America/New_York",
       "2026-10-31T12:00:00Z",
       {"2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"}},
      // A daily 09:00 keeps its local time across the change (13:00 UTC in EDT, 14:00 in EST).
      {"0 9 * * *",
       "America/New_York",
       "2026-10-31T12:00:00Z",
       {"2026-10-31T13:00:00.000Z", "2026-11-01T14:00:00.000Z"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(NextN(c.cron, c.zone, c.after, static_cast<int>(c.expected.size())), c.expected)
        << c.cron << " in " << c.zone << " after " << c.after;
  }
}

TEST(CronTest, AnExpressionThatNeverMatchesHasNoNextTime) {
  auto c = CronExpression::Parse("0 0 30 2 *");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->Next(At("2026-01-01T00:00:00Z"), absl::UTCTimeZone()));
}

TEST(CronTest, BadExpressionsAreRefusedNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"* * * *", "expected 5 fields"}, {"60 * * * *", "minute"},   {"* 24 * * *", "hour"},
      {"* * 0 * *", "day of month"},    {"* * * 13 *", "month"},    {"* * * * 8", "day of week"},
      {"5-1 * * * *", "minute"},        {"*/0 * * * *", "minute"},  {"@often", "unknown name"},
      {"* * * FOO *", "month"},         {"1,,2 * * * *", "minute"},
  };
  for (const auto& [text, needle] : bad) {
    auto c = CronExpression::Parse(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << text << ": " << c.status().message();
  }
}

TEST(CronTest, ZonesAreIanaNamesTheSystemHolds) {
  EXPECT_TRUE(LoadZone("Europe/Berlin").ok());
  EXPECT_TRUE(LoadZone("UTC").ok());
  EXPECT_FALSE(LoadZone("Mars/Olympus").ok());
  EXPECT_FALSE(LoadZone("../../etc/passwd").ok());
  EXPECT_FALSE(LoadZone("/etc/localtime").ok());
  EXPECT_FALSE(LoadZone("").ok());
}

TEST(CronTest, IntervalsCountFromTheirAnchor) {
  FireRule r;
  r.interval = std::chrono::minutes(10);
  r.anchor = At("2026-11-28T10:03:00Z");
  EXPECT_EQ(FormatInstant(*r.Next(At("2026-11-28T09:00:00Z"))), "2026-11-28T10:03:00.000Z");
  EXPECT_EQ(FormatInstant(*r.Next(At("2026-11-28T10:03:00Z"))), "2026-11-28T10:13:00.000Z");
  EXPECT_EQ(FormatInstant(*r.Next(At("2026-11-28T10:14:59Z"))), "2026-11-28T10:23:00.000Z");
}

}  // namespace
}  // namespace flovyn::plugins
