#include "flovyn/http/router.h"

#include <gtest/gtest.h>

#include "flovyn/log/log.h"

namespace flovyn::http {
namespace {

TEST(RouterTest, MatchesPatternsAndExtractsParameters) {
  Router r;
  r.Add("GET", "/api/tenants/{tenant}/workflows/{id}", Sync([](const Request&) { return Response{}; }));
  r.Add("POST", "/api/tenants", Sync([](const Request&) { return Response{}; }));
  Match m = r.Find("GET", "/api/tenants/acme/workflows/42");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params["tenant"], "acme");
  EXPECT_EQ(m.params["id"], "42");
  EXPECT_EQ(r.Find("GET", "/api/tenants/acme").route, nullptr);
  Match wrong = r.Find("DELETE", "/api/tenants");
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_TRUE(wrong.path_known);
  EXPECT_NE(r.Find("HEAD", "/api/tenants/a/workflows/b").route, nullptr);
}

TEST(RouterTest, QueryStringsAreDecoded) {
  auto q = ParseQuery("a=1&b=hello+world&c=%2Fx%3D&d");
  EXPECT_EQ(q["a"], "1");
  EXPECT_EQ(q["b"], "hello world");
  EXPECT_EQ(q["c"], "/x=");
  EXPECT_EQ(q.count("d"), 1u);
  EXPECT_EQ(UrlDecode("%zz%4", false), "%zz%4");
}

TEST(RouterTest, ErrorBodiesAreJson) {
  Response r = ErrorResponse(Status(StatusCode::kNotFound, "no such \"thing\""));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":{"code":"NOT_FOUND","message":"no such \"thing\""}})");
}

TEST(LogTest, RustLogFiltersSelectOurLevel) {
  EXPECT_EQ(log::ParseLevel("info"), spdlog::level::info);
  EXPECT_EQ(log::ParseLevel("warn,flovyn=debug"), spdlog::level::debug);
  EXPECT_EQ(log::ParseLevel("flovyn_server=trace,info"), spdlog::level::trace);
  EXPECT_EQ(log::ParseLevel("tower=debug"), spdlog::level::warn);
  EXPECT_EQ(log::ParseLevel("nonsense"), spdlog::level::warn);
}

}  // namespace
}  // namespace flovyn::http
