#include "engine/engine_metrics.h"

#include "engine/retention.h"

namespace flovyn::engine {

namespace metric {

using T = metrics::MetricType;
using metrics::MetricSpec;

const MetricSpec kWorkflowsStarted{
    "flovyn_workflows_started_total", T::kCounter, "Workflow executions started, by kind.", {"kind"}, "Engine"};
const MetricSpec kWorkflowsCompleted{
    "flovyn_workflows_completed_total", T::kCounter, "Workflow executions completed, by kind.", {"kind"}, "Engine"};
const MetricSpec kWorkflowsFailed{
    "flovyn_workflows_failed_total", T::kCounter, "Workflow executions failed, by kind.", {"kind"}, "Engine"};
const MetricSpec kWorkflowsCancelled{
    "flovyn_workflows_cancelled_total", T::kCounter, "Workflow executions cancelled, by kind.", {"kind"}, "Engine"};
const MetricSpec kTasks{"flovyn_tasks_total",
                        T::kCounter,
                        "Task attempts ended, by outcome (completed, retried, failed, cancelled).",
                        {"outcome"},
                        "Engine"};
const MetricSpec kDispatchLatency{"flovyn_dispatch_latency_seconds",
                                  T::kHistogram,
                                  "Time work waited between becoming available and being claimed, by kind.",
                                  {"kind"},
                                  "Engine"};
const MetricSpec kQueueDepth{"flovyn_queue_depth",
                             T::kGauge,
                             "Work available and not yet claimed, by kind and queue (refreshed every few seconds).",
                             {"kind", "queue"},
                             "Engine"};
const MetricSpec kLeaseExpiries{"flovyn_lease_expiries_total",
                                T::kCounter,
                                "Claims whose lease ran out and whose work went back to the queue, by kind.",
                                {"kind"},
                                "Engine"};
const MetricSpec kSweepErrors{"flovyn_sweep_errors_total",
                              T::kCounter,
                              "Rows a background sweep could not handle, by sweep (timers, promise-timeouts, "
                              "workflow-leases, task-leases); each was logged and skipped, the sweep went on.",
                              {"sweep"},
                              "Engine"};
const MetricSpec kTimerLag{
    "flovyn_timer_lag_seconds", T::kHistogram, "How late timers fired after their due time.", {}, "Engine"};
const MetricSpec kTimersFired{"flovyn_timers_fired_total", T::kCounter, "Timers fired.", {}, "Engine"};
const MetricSpec kWorkflowProblems{
    "flovyn_workflow_problems_total",
    T::kCounter,
    "Executions a worker could not replay (a determinism violation) and reported instead "
    "of submitting.",
    {},
    "Engine"};
const MetricSpec kGroupCommitUnits{"flovyn_group_commit_units",
                                   T::kHistogram,
                                   "Units of work (task submissions and results, workflow starts, command batches) per "
                                   "shared transaction of the group commit.",
                                   {},
                                   "Engine"};
const MetricSpec kLongPollsActive{
    "flovyn_long_polls_active", T::kGauge, "Long-polls waiting for work, by kind.", {"kind"}, "Engine"};
const MetricSpec kStreamsActive{
    "flovyn_notification_streams_active", T::kGauge, "Open notification streams.", {}, "Engine"};

}  // namespace metric

const std::vector<const metrics::MetricSpec*>& EngineMetricSpecs() {
  using namespace metric;
  static const std::vector<const metrics::MetricSpec*> all{
      &kWorkflowsStarted, &kWorkflowsCompleted, &kWorkflowsFailed,  &kWorkflowsCancelled, &kTasks,
      &kDispatchLatency,  &kQueueDepth,         &kLeaseExpiries,    &kSweepErrors,        &kTimerLag,
      &kTimersFired,      &kLongPollsActive,    &kStreamsActive,    &kRetentionDeleted,   &kRetentionExported,
      &kRetentionLag,     &kRetentionErrors,    &kWorkflowProblems, &kGroupCommitUnits};
  return all;
}

}  // namespace flovyn::engine
