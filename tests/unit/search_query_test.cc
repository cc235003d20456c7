// The search language's parser: the WHERE it builds holds only fixed fragments and
// placeholders (every value a parameter, numbered from where the caller says), operators and
// precedence as documented, and times normalised to one unambiguous form.
#include <gtest/gtest.h>

#include "engine/search.h"

namespace flovyn::engine {
namespace {

TEST(SearchQueryTest, ValuesBecomeParametersNumberedFromTheCallersStart) {
  auto w = ParseSearch(R"(kind = "order" AND customer = "x'; DROP TABLE tenants; --")", 3);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->sql,
            "(e.kind = $3 AND EXISTS (SELECT 1 FROM workflow_search_attributes a WHERE a.execution_id = e.id AND "
            "a.key = $4 AND a.text_value = $5))");
  ASSERT_EQ(w->params.size(), 3u);
  EXPECT_EQ(*w->params[0], "order");
  EXPECT_EQ(*w->params[1], "customer");
  EXPECT_EQ(*w->params[2], "x'; DROP TABLE tenants; --");
  EXPECT_EQ(w->sql.find("DROP"), std::string::npos);
}

TEST(SearchQueryTest, AndBindsTighterThanOrAndNotAppliesToWhatFollows) {
  auto w = ParseSearch(R"(kind = "a" OR kind = "b" AND NOT queue = "q")", 1);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->sql, "(e.kind = $1 OR (e.kind = $2 AND NOT e.queue = $3))");
  auto in = ParseSearch(R"(status IN ("FAILED", "CANCELLED"))", 1);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->sql, "(e.status = $1 OR e.status = $2)");
  auto ne = ParseSearch(R"(kind <> "a" and kind != "b")", 1);
  ASSERT_TRUE(ne.ok());
  EXPECT_EQ(ne->sql, "(e.kind <> $1 AND e.kind <> $2)");
}

TEST(SearchQueryTest, TheValueChoosesTheTypedColumnOfAnAttribute) {
  auto w = ParseSearch(R"(n >= 2.5 AND b = false AND t < "2026-11-01" AND s = "2026-x")", 1);
  ASSERT_TRUE(w.ok());
  EXPECT_NE(w->sql.find("a.num_value >= $2::float8"), std::string::npos) << w->sql;
  EXPECT_NE(w->sql.find("a.bool_value = $4::boolean"), std::string::npos) << w->sql;
  EXPECT_NE(w->sql.find("a.time_value < $6::timestamptz"), std::string::npos) << w->sql;
  EXPECT_NE(w->sql.find("a.text_value = $8"), std::string::npos) << w->sql;
  EXPECT_EQ(*w->params[5], "2026-11-01T00:00:00+00:00");
}

TEST(SearchQueryTest, TimesAreNormalisedOrRefused) {
  EXPECT_EQ(NormaliseTime("2026-11-01"), "2026-11-01T00:00:00+00:00");
  EXPECT_EQ(NormaliseTime("2026-11-01T10:05"), "2026-11-01T10:05:00+00:00");
  EXPECT_EQ(NormaliseTime("2026-11-01 10:05:07.25Z"), "2026-11-01T10:05:07.25+00:00");
  EXPECT_EQ(NormaliseTime("2026-11-01T10:05:07-0330"), "2026-11-01T10:05:07-03:30");
  EXPECT_EQ(NormaliseTime("2024-02-29T00:00:00+02"), "2024-02-29T00:00:00+02:00");
  for (const char* bad : {"2026-02-29", "2026-13-01", "2026-11-31", "2026-11-01T24:00", "2026-11-01T10:60",
                          "2026-11-01T10:00+25:00", "2026-11-01T10:00:00.", "26-11-01", "yesterday", "2026-11-01x"}) {
    EXPECT_FALSE(NormaliseTime(bad).has_value()) << bad;
  }
}

TEST(SearchQueryTest, ErrorsNameTheProblemAndItsPosition) {
  auto e = ParseSearch(R"(kind = "a" AND status =)", 1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "query: expected a value after '=' at 24");
  EXPECT_FALSE(ParseSearch("", 1).ok());
  EXPECT_FALSE(ParseSearch("   ", 1).ok());
  EXPECT_FALSE(ParseSearch(R"(kind = "a" kind = "b")", 1).ok());
  std::string deep(20, '(');
  deep += R"(kind = "a")" + std::string(20, ')');
  auto d = ParseSearch(deep, 1);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nested too deeply"), std::string::npos);
}

TEST(SearchQueryTest, AttributeMapsAreCheckedAgainstTheLimits) {
  EXPECT_TRUE(ValidateSearchAttributes({{"customer", "c"}, {"n", 1.5}, {"vip", true}, {"gone", nullptr}}).ok());
  EXPECT_FALSE(ValidateSearchAttributes({{"status", "x"}}).ok());
  EXPECT_FALSE(ValidateSearchAttributes({{"1st", "x"}}).ok());
  EXPECT_FALSE(ValidateSearchAttributes({{"a", {1, 2}}}).ok());
  EXPECT_FALSE(ValidateSearchAttributes(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace flovyn::engine
