// The engine's own series: declared here (and listed in docs/metrics.md through
// EngineMetricSpecs), registered once and shared by the store, the scheduler and the gRPC
// services. Thread-safe (the metric types are).
#pragma once

#include <vector>

#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::engine {

namespace metric {
extern const metrics::MetricSpec kWorkflowsStarted, kWorkflowsCompleted, kWorkflowsFailed, kWorkflowsCancelled, kTasks,
    kDispatchLatency, kQueueDepth, kLeaseExpiries, kSweepErrors, kTimerLag, kTimersFired, kWorkflowProblems,
    kLongPollsActive, kStreamsActive, kGroupCommitUnits;
}  // namespace metric

// Every engine series, for the catalogue (runtime::ProgramHooks::metrics).
const std::vector<const metrics::MetricSpec*>& EngineMetricSpecs();

struct EngineMetrics {
  explicit EngineMetrics(metrics::Registry& r)
      : started(r.CounterOf(metric::kWorkflowsStarted)),
        completed(r.CounterOf(metric::kWorkflowsCompleted)),
        failed(r.CounterOf(metric::kWorkflowsFailed)),
        cancelled(r.CounterOf(metric::kWorkflowsCancelled)),
        tasks(r.CounterOf(metric::kTasks)),
        dispatch(r.HistogramOf(metric::kDispatchLatency)),
        depth(r.GaugeOf(metric::kQueueDepth)),
        lease_expiries(r.CounterOf(metric::kLeaseExpiries)),
        sweep_errors(r.CounterOf(metric::kSweepErrors)),
        timer_lag(*r.HistogramOf(metric::kTimerLag).With({})),
        timers_fired(*r.CounterOf(metric::kTimersFired).With({})),
        problems(r.CounterOf(metric::kWorkflowProblems).With({})),
        group_units(*r.HistogramOf(metric::kGroupCommitUnits, {1, 2, 4, 8, 16, 32, 64, 128}).With({})),
        long_polls(r.GaugeOf(metric::kLongPollsActive)),
        streams(*r.GaugeOf(metric::kStreamsActive).With({})) {}

  metrics::Family<metrics::Counter>& started;
  metrics::Family<metrics::Counter>& completed;
  metrics::Family<metrics::Counter>& failed;
  metrics::Family<metrics::Counter>& cancelled;
  metrics::Family<metrics::Counter>& tasks;
  metrics::HistogramFamily& dispatch;
  metrics::Family<metrics::Gauge>& depth;
  metrics::Family<metrics::Counter>& lease_expiries;
  metrics::Family<metrics::Counter>& sweep_errors;
  metrics::Histogram& timer_lag;
  metrics::Counter& timers_fired;
  metrics::Counter* problems;
  metrics::Histogram& group_units;
  metrics::Family<metrics::Gauge>& long_polls;
  metrics::Gauge& streams;
};

// Adds 1 to a gauge for its lifetime (active long-polls, streams).
class GaugeHold {
 public:
  explicit GaugeHold(metrics::Gauge* g) : g_(g) {
    if (g_) g_->Add(1);
  }
  ~GaugeHold() {
    if (g_) g_->Add(-1);
  }
  GaugeHold(const GaugeHold&) = delete;
  GaugeHold& operator=(const GaugeHold&) = delete;

 private:
  metrics::Gauge* g_;
};

}  // namespace flovyn::engine
