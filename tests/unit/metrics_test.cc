#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "flovyn/metrics/registry.h"
#include "harness.h"
#include "server_main.h"

namespace flovyn::metrics {
namespace {

TEST(MetricsTest, CountersAndGaugesAreExposedWithHelpTypeAndLabels) {
  Registry r;
  auto& c = r.AddCounter("flovyn_things_total", "Things done.", {"kind"});
  c.With({"a"})->Inc();
  c.With({"a"})->Inc(2);
  c.With({"b"})->Inc();
  r.AddGauge("flovyn_level", "A level.").With({})->Set(2.5);
  std::string out = r.Expose();
  EXPECT_NE(out.find("# HELP flovyn_things_total Things done.\n# TYPE flovyn_things_total counter\n"),
            std::string::npos);
  EXPECT_NE(out.find("flovyn_things_total{kind=\"a\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flovyn_things_total{kind=\"b\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flovyn_level 2.5\n"), std::string::npos) << out;
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Registry r;
  r.AddCounter("flovyn_x_total", "X.", {"v"}).With({"a\"b\\c\nd"})->Inc();
  EXPECT_NE(r.Expose().find("flovyn_x_total{v=\"a\\\"b\\\\c\\nd\"} 1"), std::string::npos) << r.Expose();
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  auto& h = r.AddHistogram("flovyn_latency_seconds", "Latency.", {"route"}, {0.1, 1});
  auto* child = h.With({"/a"});
  child->Observe(0.05);
  child->Observe(0.5);
  child->Observe(5);
  std::string out = r.Expose();
  EXPECT_NE(out.find("flovyn_latency_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flovyn_latency_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flovyn_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flovyn_latency_seconds_sum{route=\"/a\"} 5.55\n"), std::string::npos) << out;
  EXPECT_NE(out.find("flovyn_latency_seconds_count{route=\"/a\"} 3\n"), std::string::npos) << out;
}

TEST(MetricsTest, ValuesUseTheShortestExactText) {
  EXPECT_EQ(FormatValue(0.0005), "0.0005");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(1.0 / 3), "0.3333333333333333");
}

TEST(MetricsTest, ProcessCollectorReportsResidentMemoryAndFds) {
  Registry r;
  AddProcessCollector(r);
  std::string out = r.Expose();
  for (const char* m : {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
                        "process_max_fds ", "process_start_time_seconds ", "process_virtual_memory_bytes "}) {
    EXPECT_NE(out.find(std::string("\n") + m), std::string::npos) << m << "\n" << out;
  }
}

TEST(MetricsTest, PromtoolAcceptsTheOutput) {
  Registry r;
  AddProcessCollector(r);
  r.AddCounter("flovyn_requests_total", "Requests.", {"route", "status"}).With({"/x", "200"})->Inc();
  r.AddHistogram("flovyn_request_duration_seconds", "Latency.", {"route"}, LatencyBuckets())
      .With({"/x"})
      ->Observe(0.003);
  r.AddGauge("flovyn_build_info", "Build.", {"version"}).With({"1.0"})->Set(1);
  std::string dir = testing::MakeTempDir("flovyn-metrics");
  std::ofstream(dir + "/m.txt") << r.Expose();
  std::string out;
  int rc = testing::RunCommand("promtool check metrics < " + dir + "/m.txt", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
}

}  // namespace
}  // namespace flovyn::metrics

#include "engine/engine_metrics.h"
#include "flovyn/metrics/catalogue.h"

namespace flovyn::metrics {
namespace {

TEST(MetricsCatalogueTest, DocsMetricsMdIsGeneratedFromTheCatalogue) {
  std::ifstream in(std::string(FLOVYN_SOURCE_DIR) + "/docs/metrics.md");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), CatalogueMarkdown(server::MetricSpecs()))
      << "docs/metrics.md drifted: regenerate it with `flovyn-server --metrics-catalogue > docs/metrics.md`";
}

TEST(MetricsCatalogueTest, NamesFollowPrometheusConventions) {
  std::set<std::string> names;
  for (const auto* m : Catalogue(server::MetricSpecs())) {
    std::string n = m->name;
    EXPECT_TRUE(names.insert(n).second) << "declared twice: " << n;
    EXPECT_TRUE(n.rfind("flovyn_", 0) == 0 || n.rfind("process_", 0) == 0) << n;
    bool total = n.size() > 6 && n.substr(n.size() - 6) == "_total";
    EXPECT_EQ(total, m->type == MetricType::kCounter) << n << ": counters, and only counters, end in _total";
  }
}

}  // namespace
}  // namespace flovyn::metrics
