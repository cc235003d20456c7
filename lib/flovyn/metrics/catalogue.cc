#include "flovyn/metrics/catalogue.h"

#include <sstream>
#include <string_view>

namespace flovyn::metrics {
namespace catalogue {

using T = MetricType;

const MetricSpec kHttpRequests{"flovyn_http_requests_total",
                               T::kCounter,
                               "HTTP requests served, by method, route and status.",
                               {"method", "route", "status"},
                               "HTTP and gRPC"};
const MetricSpec kHttpRequestDuration{"flovyn_http_request_duration_seconds",
                                      T::kHistogram,
                                      "HTTP request latency from request read to response written.",
                                      {"method", "route"},
                                      "HTTP and gRPC"};
const MetricSpec kGrpcRequests{"flovyn_grpc_requests_total",
                               T::kCounter,
                               "gRPC calls handled, by method and status code.",
                               {"method", "code"},
                               "HTTP and gRPC"};
const MetricSpec kGrpcRequestDuration{"flovyn_grpc_request_duration_seconds",
                                      T::kHistogram,
                                      "gRPC call latency, by method.",
                                      {"method"},
                                      "HTTP and gRPC"};
const MetricSpec kConnectionsOpen{"flovyn_connections_open",
                                  T::kGauge,
                                  "Client connections open, by listener (http, grpc).",
                                  {"listener"},
                                  "HTTP and gRPC"};
const MetricSpec kConnectionsRefused{"flovyn_connections_refused_total",
                                     T::kCounter,
                                     "Connections closed at once because the listener was at its connection limit.",
                                     {"listener"},
                                     "HTTP and gRPC"};
const MetricSpec kConnectionsShed{"flovyn_connections_shed_total",
                                  T::kCounter,
                                  "Connections closed because the process was over its memory threshold and they were "
                                  "sending the most.",
                                  {"listener"},
                                  "HTTP and gRPC"};
const MetricSpec kAcceptErrors{"flovyn_accept_errors_total",
                               T::kCounter,
                               "Failed accepts (descriptors or memory exhausted), by listener; the listener backs off.",
                               {"listener"},
                               "HTTP and gRPC"};
const MetricSpec kSeriesOverflow{"flovyn_metric_series_overflow_total",
                                 T::kCounter,
                                 "Samples recorded into a metric's `other` series because it reached its series limit.",
                                 {"metric"},
                                 "HTTP and gRPC"};

const MetricSpec kPoolConnections{"flovyn_db_pool_connections",
                                  T::kGauge,
                                  "Open PostgreSQL connections, by pool and state.",
                                  {"pool", "state"},
                                  "PostgreSQL"};
const MetricSpec kPoolMaxConnections{
    "flovyn_db_pool_max_connections", T::kGauge, "Configured maximum connections, by pool.", {"pool"}, "PostgreSQL"};
const MetricSpec kPoolWaiting{
    "flovyn_db_pool_waiting", T::kGauge, "Callers waiting for a connection, by pool.", {"pool"}, "PostgreSQL"};
const MetricSpec kPoolConnectFailures{"flovyn_db_pool_connect_failures_total",
                                      T::kCounter,
                                      "Failed connection attempts, by pool.",
                                      {"pool"},
                                      "PostgreSQL"};
const MetricSpec kPoolAcquireTimeouts{"flovyn_db_pool_acquire_timeouts_total",
                                      T::kCounter,
                                      "Acquisitions that timed out, by pool.",
                                      {"pool"},
                                      "PostgreSQL"};

const MetricSpec kHealthCheckUp{"flovyn_health_check_up",
                                T::kGauge,
                                "Last result of each dependency check (1 = UP).",
                                {"check"},
                                "Health and lifecycle"};
const MetricSpec kHealthCheckRuns{"flovyn_health_check_runs_total",
                                  T::kCounter,
                                  "Dependency check evaluations, by check and result.",
                                  {"check", "result"},
                                  "Health and lifecycle"};
const MetricSpec kLifecycleStage{
    "flovyn_lifecycle_stage", T::kGauge, "1 for the current lifecycle stage.", {"stage"}, "Health and lifecycle"};
const MetricSpec kBuildInfo{"flovyn_build_info",
                            T::kGauge,
                            "Build information; the value is always 1.",
                            {"program", "version"},
                            "Health and lifecycle"};
const MetricSpec kMigrationDuration{"flovyn_migration_duration_seconds",
                                    T::kGauge,
                                    "How long the startup migration run took (lock wait included).",
                                    {},
                                    "Health and lifecycle"};

const MetricSpec kNatsConnected{
    "flovyn_nats_connected", T::kGauge, "1 while the NATS connection is up.", {}, "NATS and tracing"};
const MetricSpec kNatsReconnects{
    "flovyn_nats_reconnects_total", T::kCounter, "NATS reconnections.", {}, "NATS and tracing"};
const MetricSpec kTraceSpansDropped{"flovyn_trace_spans_dropped_total",
                                    T::kCounter,
                                    "Spans dropped: queue full or export failed.",
                                    {},
                                    "NATS and tracing"};
const MetricSpec kTraceSpansExported{
    "flovyn_trace_spans_exported_total", T::kCounter, "Spans exported over OTLP.", {}, "NATS and tracing"};

const MetricSpec kProcessCpu{
    "process_cpu_seconds_total", T::kCounter, "Total user and system CPU time spent in seconds.", {}, "Process"};
const MetricSpec kProcessResident{
    "process_resident_memory_bytes", T::kGauge, "Resident memory size in bytes.", {}, "Process"};
const MetricSpec kProcessVirtual{
    "process_virtual_memory_bytes", T::kGauge, "Virtual memory size in bytes.", {}, "Process"};
const MetricSpec kProcessStart{
    "process_start_time_seconds", T::kGauge, "Start time of the process since unix epoch in seconds.", {}, "Process"};
const MetricSpec kProcessOpenFds{"process_open_fds", T::kGauge, "Number of open file descriptors.", {}, "Process"};
const MetricSpec kProcessMaxFds{
    "process_max_fds", T::kGauge, "Maximum number of open file descriptors.", {}, "Process"};

}  // namespace catalogue

const std::vector<const MetricSpec*>& Catalogue() {
  using namespace catalogue;
  static const std::vector<const MetricSpec*> all{
      &kHttpRequests,       &kHttpRequestDuration, &kGrpcRequests,        &kGrpcRequestDuration, &kConnectionsOpen,
      &kConnectionsRefused, &kConnectionsShed,     &kAcceptErrors,        &kSeriesOverflow,      &kPoolConnections,
      &kPoolMaxConnections, &kPoolWaiting,         &kPoolConnectFailures, &kPoolAcquireTimeouts, &kHealthCheckUp,
      &kHealthCheckRuns,    &kLifecycleStage,      &kBuildInfo,           &kMigrationDuration,   &kNatsConnected,
      &kNatsReconnects,     &kTraceSpansDropped,   &kTraceSpansExported,  &kProcessCpu,          &kProcessResident,
      &kProcessVirtual,     &kProcessStart,        &kProcessOpenFds,      &kProcessMaxFds};
  return all;
}

std::vector<const MetricSpec*> Catalogue(const std::vector<const MetricSpec*>& program) {
  // The shared series, then the program's, then the standard process ones.
  std::vector<const MetricSpec*> all;
  for (const auto* m : Catalogue())
    if (std::string_view(m->group) != "Process") all.push_back(m);
  all.insert(all.end(), program.begin(), program.end());
  for (const auto* m : Catalogue())
    if (std::string_view(m->group) == "Process") all.push_back(m);
  return all;
}

std::string CatalogueMarkdown(const std::vector<const MetricSpec*>& program) {
  std::ostringstream o;
  o << "# Metrics\n\nGenerated from `lib/flovyn/metrics/catalogue.cc` and the program's own series (the "
       "engine's in `server/src/engine/engine_metrics.cc`) by `flovyn-server --metrics-catalogue`; "
       "a test fails when this file drifts from the code.\n\nServed in the Prometheus text format on "
       "`METRICS__PORT` (`/metrics`) when `METRICS__ENABLED=true`. Durations are in seconds.\n";
  std::string group;
  for (const auto* m : Catalogue(program)) {
    if (group != m->group) {
      group = m->group;
      o << "\n## " << group << "\n\n| metric | type | labels | meaning |\n|---|---|---|---|\n";
    }
    const char* type = m->type == MetricType::kCounter ? "counter"
                       : m->type == MetricType::kGauge ? "gauge"
                                                       : "histogram";
    std::string labels;
    for (const auto& l : m->labels) labels += (labels.empty() ? "`" : ", `") + l + "`";
    o << "| `" << m->name << "` | " << type << " | " << (labels.empty() ? "–" : labels) << " | " << m->help << " |\n";
  }
  return o.str();
}

}  // namespace flovyn::metrics
