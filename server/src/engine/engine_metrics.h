// The engine's series from the metrics catalogue, registered once and shared by the store,
// the scheduler and the gRPC services. Thread-safe (the metric types are).
#pragma once

#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::engine {

struct EngineMetrics {
  explicit EngineMetrics(metrics::Registry& r)
      : started(r.CounterOf(metrics::catalogue::kWorkflowsStarted)),
        completed(r.CounterOf(metrics::catalogue::kWorkflowsCompleted)),
        failed(r.CounterOf(metrics::catalogue::kWorkflowsFailed)),
        cancelled(r.CounterOf(metrics::catalogue::kWorkflowsCancelled)),
        tasks(r.CounterOf(metrics::catalogue::kTasks)),
        dispatch(r.HistogramOf(metrics::catalogue::kDispatchLatency)),
        depth(r.GaugeOf(metrics::catalogue::kQueueDepth)),
        lease_expiries(r.CounterOf(metrics::catalogue::kLeaseExpiries)),
        sweep_errors(r.CounterOf(metrics::catalogue::kSweepErrors)),
        timer_lag(*r.HistogramOf(metrics::catalogue::kTimerLag).With({})),
        timers_fired(*r.CounterOf(metrics::catalogue::kTimersFired).With({})),
        long_polls(r.GaugeOf(metrics::catalogue::kLongPollsActive)),
        streams(*r.GaugeOf(metrics::catalogue::kStreamsActive).With({})) {}

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
