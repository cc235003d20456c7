// Hot-path costs of the metrics registry: what every HTTP request pays to be counted.
#include <benchmark/benchmark.h>

#include "flovyn/metrics/registry.h"

namespace {

void BM_CounterIncCached(benchmark::State& state) {
  flovyn::metrics::Registry r;
  auto* c = r.AddCounter("flovyn_x_total", "x", {"route"}).With({"/a"});
  for (auto _ : state) c->Inc();
}
BENCHMARK(BM_CounterIncCached)->Threads(1)->Threads(2);

void BM_CounterWithLabelsLookup(benchmark::State& state) {
  flovyn::metrics::Registry r;
  auto& f = r.AddCounter("flovyn_x_total", "x", {"method", "route", "status"});
  for (auto _ : state) f.With({"GET", "/_/health/ready", "200"})->Inc();
}
BENCHMARK(BM_CounterWithLabelsLookup)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  flovyn::metrics::Registry r;
  auto* h = r.AddHistogram("flovyn_y_seconds", "y", {}, flovyn::metrics::LatencyBuckets()).With({});
  double v = 0.0001;
  for (auto _ : state) {
    h->Observe(v);
    v = v > 10 ? 0.0001 : v * 1.7;
  }
}
BENCHMARK(BM_HistogramObserve);

void BM_Expose(benchmark::State& state) {
  flovyn::metrics::Registry r;
  auto& f = r.AddCounter("flovyn_x_total", "x", {"route", "status"});
  auto& h = r.AddHistogram("flovyn_y_seconds", "y", {"route"}, flovyn::metrics::LatencyBuckets());
  for (int i = 0; i < 50; ++i) {
    f.With({"/r" + std::to_string(i), "200"})->Inc();
    h.With({"/r" + std::to_string(i)})->Observe(0.01);
  }
  for (auto _ : state) benchmark::DoNotOptimize(r.Expose());
}
BENCHMARK(BM_Expose);

}  // namespace
