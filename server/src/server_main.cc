#include "server_main.h"

#include <absl/synchronization/mutex.h>
#include <spdlog/spdlog.h>

#include "engine/engine_metrics.h"
#include "engine/engine_module.h"
#include "engine/limits.h"
#include "engine/policy.h"
#include "eventhook_plugin.h"
#include "flovyn/http/router.h"
#include "flovyn/runtime/cli.h"
#include "flovyn/runtime/process.h"
#include "flovyn/runtime/process_settings.h"
#include "schedules_plugin.h"
#include "settings.h"
#include "worker_token_plugin.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> server_core_migrations();
}

namespace flovyn::server {
namespace {

constexpr int64_t kMigrationLockKey = 0x466c6f76796e0001;  // "Flovyn" + 1

constexpr const char* kUsage =
    "usage: flovyn-server [serve]           run the engine (default)\n"
    "       flovyn-server migrate [--status] apply migrations and exit, or print their state\n"
    "options: --config FILE (or CONFIG_FILE), --print-config, --version, --KEY=VALUE for any setting\n"
    "documents: --metrics-catalogue, --limits-catalogue, --security-matrix (Markdown on stdout)\n";

runtime::ProcessSpec SpecFrom(const Settings& s, const config::Values& values) {
  runtime::ProcessSpec spec;
  spec.program = "flovyn-server";
  spec.version = FLOVYN_VERSION;
  spec.probes = {"/_/health/live", "/_/health/ready", "/_/health/startup", "/_/health"};
  spec.migration_lock_key = kMigrationLockKey;
  spec.core_migrations = generated::server_core_migrations();
  spec.http_port = s.server_port;
  spec.grpc_port = s.grpc_server_port;
  if (s.metrics_enabled) spec.metrics_port = s.metrics_port;
  spec.database_url = s.database_url;
  runtime::ApplyProcessSettings(values, spec);
  spec.nats_enabled = s.nats_enabled;
  spec.nats_url = s.nats_url;
  runtime::ApplyTracingSettings(values, FLOVYN_VERSION, spec);
  spec.grpc_limits = s.grpc;
  return spec;
}

}  // namespace

std::string SecurityDocument() {
  // The route table as the server builds it: the engine's routes and the plugins'.
  engine::EngineModule engine({});
  plugins::WorkerTokenPlugin tokens("");
  plugins::EventhookPlugin eventhook;
  plugins::SchedulesPlugin schedules;
  http::Router router;
  engine.AddRoutes(router);
  tokens.AddRoutes(router);
  eventhook.AddRoutes(router);
  schedules.AddRoutes(router);
  return engine::SecurityMarkdown(router);
}

std::vector<const metrics::MetricSpec*> MetricSpecs() {
  std::vector<const metrics::MetricSpec*> all = engine::EngineMetricSpecs();
  for (const auto* m : plugins::EventhookMetricSpecs()) all.push_back(m);
  for (const auto* m : plugins::ScheduleMetricSpecs()) all.push_back(m);
  return all;
}

int Main(int argc, char** argv, const std::vector<ModuleFactory>& extra_modules) {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex inside gRPC keeps a lock graph for
  // deadlock detection: about 2% of the server's CPU under load, and nothing of ours (the
  // server's own locks are std::mutex, checked by Clang's thread-safety analysis).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  runtime::ProgramHooks hooks;
  hooks.usage = kUsage;
  hooks.version = FLOVYN_VERSION;
  hooks.documents["--limits-catalogue"] = [] { return engine::limits::Markdown(); };
  hooks.documents["--security-matrix"] = [] { return SecurityDocument(); };
  hooks.metrics = MetricSpecs();
  hooks.run = [&extra_modules](const runtime::Command& cmd, const config::Values& values) {
    Settings settings = Settings::From(values);
    if (!settings.security_enabled) {
      spdlog::warn("FLOVYN_SECURITY__ENABLED=false: requests are not authenticated");
    }
    std::vector<std::unique_ptr<runtime::Module>> modules;
    engine::EngineSettings es;
    es.security_enabled = settings.security_enabled;
    es.static_api_keys_json = settings.static_api_keys_json;
    es.jwt_jwks_uri = settings.jwt_jwks_uri;
    es.jwt_issuer = settings.jwt_issuer;
    es.jwt_audience = settings.jwt_audience;
    es.jwt_refetch_interval = std::chrono::milliseconds(settings.jwt_refetch_interval_ms);
    es.api_key_validate_url = settings.api_key_validate_url;
    es.api_key_cache = std::chrono::seconds(settings.api_key_cache_secs);
    es.api_key_validations_per_sec = static_cast<double>(settings.api_key_validations_per_sec);
    es.api_key_validation_burst = static_cast<double>(settings.api_key_validation_burst);
    es.api_key_max_validations_in_flight = static_cast<int>(settings.api_key_max_validations_in_flight);
    es.store.workflow_lease = std::chrono::milliseconds(settings.workflow_lease_ms);
    es.store.problem_retry = std::chrono::milliseconds(settings.problem_retry_ms);
    es.store.sticky = std::chrono::milliseconds(settings.sticky_ms);
    es.store.worker_timer_grace = std::chrono::milliseconds(settings.worker_timer_grace_ms);
    es.store.group_commit_max = settings.group_commit_max;
    es.store.group_commit_lanes = settings.group_commit_lanes;
    es.store.group_commit_queue_max = settings.group_commit_queue_max;
    es.store.group_commit_window = std::chrono::microseconds(settings.group_commit_window_us);
    es.store.allow_time_skipping = settings.allow_time_skipping;
    es.dispatch.sweep_interval = std::chrono::milliseconds(settings.poll_sweep_ms);
    es.dispatch.max_poll = std::chrono::milliseconds(settings.max_poll_ms);
    es.dispatch.eager_dispatch = settings.eager_dispatch;
    es.dispatch.max_polls_per_tenant = settings.max_polls_per_tenant;
    es.dispatch.max_streams_per_tenant = settings.max_streams_per_tenant;
    es.handler_threads = settings.grpc_handler_threads;
    es.handler_queue = static_cast<size_t>(settings.grpc_handler_queue);
    es.follow.max_streams = settings.max_event_streams;
    es.follow.poll = std::chrono::milliseconds(settings.event_stream_poll_ms);
    es.retention.enabled = settings.retention_enabled;
    es.retention.interval = std::chrono::milliseconds(settings.retention_interval_ms);
    es.retention.batch_size = settings.retention_batch_size;
    es.retention.batch_pause = std::chrono::milliseconds(settings.retention_batch_pause_ms);
    es.retention.export_dir = settings.retention_export_dir;
    auto engine = std::make_unique<engine::EngineModule>(es);
    auto tokens = std::make_unique<plugins::WorkerTokenPlugin>(settings.worker_token_secret);
    modules.push_back(std::move(engine));
    modules.push_back(std::move(tokens));
    modules.push_back(std::make_unique<plugins::EventhookPlugin>());
    modules.push_back(std::make_unique<plugins::SchedulesPlugin>());
    for (const auto& f : extra_modules) modules.push_back(f());
    runtime::Process process(SpecFrom(settings, values), values, std::move(modules));
    return process.Run(cmd);
  };
  return runtime::Main(argc, argv, Schema(), hooks);
}

}  // namespace flovyn::server
