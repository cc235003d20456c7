#include "settings.h"

#include "eventhook_plugin.h"
#include "flovyn/runtime/process_settings.h"
#include "schedules_plugin.h"

namespace flovyn::server {

using config::Type;

namespace {

void AddCoreSettings(config::Schema& s) {
  s.Add({.key = "database_url",
         .type = Type::kSecretUrl,
         .required = true,
         .description = "PostgreSQL connection string"});
  s.Add({.key = "server_port",
         .type = Type::kInt,
         .default_value = "8000",
         .description = "HTTP port (API and probes)",
         .min_value = 1,
         .max_value = 65535});
  s.Add({.key = "grpc_server_port",
         .type = Type::kInt,
         .default_value = "9090",
         .description = "gRPC port",
         .min_value = 1,
         .max_value = 65535});
  s.Add({.key = "nats.enabled",
         .type = Type::kBool,
         .default_value = "false",
         .description = "enable NATS notifications"});
  s.Add({.key = "nats.url",
         .type = Type::kSecretUrl,
         .default_value = "nats://localhost:4222",
         .description = "NATS server",
         .required_when = "nats.enabled"});
  s.Add({.key = "flovyn_security.enabled",
         .type = Type::kBool,
         .default_value = "true",
         .description = "require authentication"});
  s.Add({.key = "worker_token_secret",
         .type = Type::kSecret,
         .description = "HMAC key for worker tokens",
         .required_when = "flovyn_security.enabled",
         .min_length = 32});
  runtime::AddTracingSettings(s, "flovyn-server");
  runtime::AddMetricsSettings(s, 9091);
  runtime::AddProcessSettings(s);
}

void AddAuthSettings(config::Schema& s) {
  s.Add({.key = "auth.static_api_key.keys",
         .type = Type::kSecretJson,
         .description = "static API keys: an array of tables { key, org_id, principal_type, principal_id, role }; "
                        "org_id is a tenant slug or id, or `*` for a platform admin"});
  s.Add({.key = "auth.jwt.jwks_uri",
         .description = "the console's JWKS (http://console:3000/.well-known/jwks.json); console JWTs are "
                        "accepted when set"});
  s.Add(
      {.key = "auth.jwt.issuer", .description = "required `iss` of console JWTs (the console's NEXT_PUBLIC_APP_URL)"});
  s.Add(
      {.key = "auth.jwt.audience", .default_value = "flovyn-server", .description = "required `aud` of console JWTs"});
  s.Add({.key = "auth.jwt.refetch_interval_ms",
         .type = Type::kInt,
         .default_value = "10000",
         .description = "a token naming an unknown key id fetches the JWKS again at most this often",
         .min_value = 100,
         .max_value = 3600000});
  s.Add({.key = "auth.api_key.validate_url",
         .description = "the console's API-key validation endpoint (http://console:3000/api/auth/validate-key); "
                        "console API keys (flk_...) are accepted when set"});
  s.Add({.key = "auth.api_key.cache_secs",
         .type = Type::kInt,
         .default_value = "30",
         .description = "how long a console API key's validation is reused (a revocation takes effect within it)",
         .min_value = 0,
         .max_value = 3600});
  s.Add({.key = "auth.api_key.validations_per_sec",
         .type = Type::kInt,
         .default_value = "5",
         .description = "console API keys not in the cache are checked with the console at most this often per "
                        "client address (bursts of auth.api_key.validation_burst); beyond it 429",
         .min_value = 1,
         .max_value = 10000});
  s.Add({.key = "auth.api_key.validation_burst",
         .type = Type::kInt,
         .default_value = "20",
         .description = "console API-key checks a client address may make at once before the rate applies",
         .min_value = 1,
         .max_value = 10000});
  s.Add({.key = "auth.api_key.max_validations_in_flight",
         .type = Type::kInt,
         .default_value = "4",
         .description = "console API-key checks waiting on the console at once, for all clients; beyond it 429",
         .min_value = 1,
         .max_value = 1000});
}

void AddEngineSettings(config::Schema& s) {
  s.Add({.key = "engine.workflow_lease_ms",
         .type = Type::kInt,
         .default_value = "60000",
         .description = "how long a worker holds a claimed workflow execution without submitting",
         .min_value = 100,
         .max_value = 3600000});
  s.Add({.key = "engine.problem_retry_ms",
         .type = Type::kInt,
         .default_value = "10000",
         .description = "how long an execution whose worker reported a problem (code that does not match its "
                        "history) waits before it is handed out again",
         .min_value = 100,
         .max_value = 3600000});
  s.Add({.key = "engine.sticky_ms",
         .type = Type::kInt,
         .default_value = "5000",
         .description = "how long an execution that became pending stays with the worker that keeps it cached "
                        "(that worker gets only the new events; others take it, with the whole history, after "
                        "this); 0 turns caching off",
         .min_value = 0,
         .max_value = 600000});
  s.Add({.key = "engine.worker_timer_grace_ms",
         .type = Type::kInt,
         .default_value = "1000",
         .description = "how long after its deadline the server fires a timer that the worker keeping its execution "
                        "cached fires itself, when that worker has not (it stopped or lost the execution)",
         .min_value = 0,
         .max_value = 600000});
  s.Add({.key = "engine.allow_time_skipping",
         .type = Type::kBool,
         .default_value = "false",
         .description = "tests only: the SkipTime call makes an execution's pending timers fire and its promises time "
                        "out now (never in production)"});
  s.Add({.key = "engine.poll_sweep_ms",
         .type = Type::kInt,
         .default_value = "1000",
         .description = "waiting long-polls re-check for work at least this often, notification or not",
         .min_value = 10,
         .max_value = 60000});
  s.Add({.key = "engine.max_polls_per_tenant",
         .type = Type::kInt,
         .default_value = "5000",
         .description = "long-polls one tenant may hold waiting at once; beyond it RESOURCE_EXHAUSTED",
         .min_value = 1,
         .max_value = 1000000});
  s.Add({.key = "engine.max_event_streams",
         .type = Type::kInt,
         .default_value = "1000",
         .description = "live history streams (GET .../events?follow=true) open at once; beyond it 503",
         .min_value = 0,
         .max_value = 100000});
  s.Add({.key = "engine.event_stream_poll_ms",
         .type = Type::kInt,
         .default_value = "500",
         .description = "how often a live history stream looks for new events",
         .min_value = 10,
         .max_value = 60000});
  s.Add({.key = "engine.max_streams_per_tenant",
         .type = Type::kInt,
         .default_value = "5000",
         .description = "notification streams one tenant may hold open at once; beyond it RESOURCE_EXHAUSTED",
         .min_value = 1,
         .max_value = 1000000});
}

// How the engine trades commits for latency: group commit and eager dispatch.
void AddThroughputSettings(config::Schema& s) {
  s.Add({.key = "engine.group_commit_max",
         .type = Type::kInt,
         .default_value = "64",
         .description = "group commit: at most this many concurrent task submissions, task results, workflow starts "
                        "and command batches share one transaction, each answered after its commit; 1 commits "
                        "each alone",
         .min_value = 1,
         .max_value = 1000});
  s.Add({.key = "engine.group_commit_lanes",
         .type = Type::kInt,
         .default_value = "2",
         .description = "group commit: how many shared transactions may commit at once (callers arriving "
                        "meanwhile form the next group)",
         .min_value = 1,
         .max_value = 64});
  s.Add({.key = "engine.group_commit_queue_max",
         .type = Type::kInt,
         .default_value = "1024",
         .description = "group commit: task submissions and results queued for a shared transaction without "
                        "holding a handler thread, at most; beyond it a call holds its handler thread until its "
                        "commit (so grpc.handler_threads and grpc.handler_queue bound the rest)",
         .min_value = 1,
         .max_value = 1000000});
  s.Add({.key = "engine.group_commit_window_us",
         .type = Type::kInt,
         .default_value = "0",
         .description = "group commit: microseconds a group waits for more callers before it begins; 0 groups "
                        "only the callers that arrive while earlier groups commit (no added latency when idle)",
         .min_value = 0,
         .max_value = 100000});
  s.Add({.key = "engine.eager_dispatch",
         .type = Type::kBool,
         .default_value = "true",
         .description = "eager dispatch: a task submitted or scheduled while a poller of its queue and kind waits on "
                        "this replica, and a workflow made runnable while a poller of its queue (its caching "
                        "worker's, while sticky) waits here, is claimed for that poller in the same transaction and "
                        "handed over after the commit (no claim transaction); false: all work goes through the "
                        "queue"});
}

void AddRetentionSettings(config::Schema& s) {
  s.Add({.key = "retention.enabled",
         .type = Type::kBool,
         .default_value = "true",
         .description = "delete finished executions past their tenant's retention period (retentionDays, default 30)"});
  s.Add({.key = "retention.interval_ms",
         .type = Type::kInt,
         .default_value = "60000",
         .description = "how often the retention sweep looks for expired executions",
         .min_value = 10,
         .max_value = 86400000});
  s.Add({.key = "retention.batch_size",
         .type = Type::kInt,
         .default_value = "100",
         .description = "executions deleted per transaction (bounds how long a purge holds row locks and the WAL "
                        "each commit flushes)",
         .min_value = 1,
         .max_value = 100000});
  s.Add({.key = "retention.batch_pause_ms",
         .type = Type::kInt,
         .default_value = "100",
         .description = "pause between two batches of one sweep; the pause is also at least as long as the batch "
                        "took, so a purge leaves the database at least half its time",
         .min_value = 0,
         .max_value = 3600000});
  s.Add({.key = "retention.export_dir",
         .type = Type::kString,
         .default_value = "",
         .description = "when set, each execution is appended as one JSON line to <dir>/executions-<date>.jsonl "
                        "(and synced) before it is deleted"});
}

void AddGrpcSettings(config::Schema& s) {
  s.Add({.key = "grpc.handler_threads",
         .type = Type::kInt,
         .default_value = "16",
         .description = "threads running gRPC calls (unary calls and long-poll claims; waiting holds none)",
         .min_value = 1,
         .max_value = 1024});
  s.Add({.key = "grpc.handler_queue",
         .type = Type::kInt,
         .default_value = "10000",
         .description = "gRPC calls waiting for a handler thread at most; beyond it RESOURCE_EXHAUSTED",
         .min_value = 0,
         .max_value = 1000000});
  s.Add({.key = "grpc.max_connections",
         .type = Type::kInt,
         .default_value = "300",
         .description = "open gRPC connections at most; beyond it a new connection is closed at once (each "
                        "may hold grpc.max_concurrent_streams calls of about 12 KiB: docs/deployment.md)",
         .min_value = 1,
         .max_value = 1000000});
  s.Add({.key = "grpc.max_concurrent_streams",
         .type = Type::kInt,
         .default_value = "64",
         .description = "calls in flight on one gRPC connection at most (HTTP/2 MAX_CONCURRENT_STREAMS)",
         .min_value = 1,
         .max_value = 100000});
  s.Add({.key = "grpc.max_connection_idle_ms",
         .type = Type::kInt,
         .default_value = "300000",
         .description = "a gRPC connection with no call in flight this long is closed (GOAWAY)",
         .min_value = 100,
         .max_value = 86400000});
  s.Add({.key = "grpc.max_connection_age_ms",
         .type = Type::kInt,
         .default_value = "1800000",
         .description = "a gRPC connection this old is asked to reconnect (GOAWAY); its calls get the grace",
         .min_value = 1000,
         .max_value = 604800000});
  s.Add({.key = "grpc.max_connection_age_grace_ms",
         .type = Type::kInt,
         .default_value = "90000",
         .description = "time calls on an aged-out gRPC connection get to finish before it is closed",
         .min_value = 0,
         .max_value = 86400000});
  s.Add({.key = "grpc.handshake_timeout_ms",
         .type = Type::kInt,
         .default_value = "10000",
         .description = "time a new gRPC connection gets to send the HTTP/2 preface and settings",
         .min_value = 100,
         .max_value = 600000});
  s.Add({.key = "grpc.memory_quota_mb",
         .type = Type::kInt,
         .default_value = "128",
         .description = "memory gRPC may use for connection buffers (a ResourceQuota); under pressure it "
                        "shrinks buffers and refuses work",
         .min_value = 8,
         .max_value = 65536});
  s.Add({.key = "grpc.shed_above_mb",
         .type = Type::kInt,
         .default_value = "128",
         .description = "when the process's resident memory is above this, the gRPC connection that sent the "
                        "most in the last 25 ms is closed (floods the HTTP/2 transport cannot refuse, such as "
                        "rapid reset); 0: never",
         .min_value = 0,
         .max_value = 1048576});
}

}  // namespace

const config::Schema& Schema() {
  static const config::Schema schema = [] {
    config::Schema s("flovyn-server");
    AddCoreSettings(s);
    AddAuthSettings(s);
    AddEngineSettings(s);
    AddThroughputSettings(s);
    AddGrpcSettings(s);
    AddRetentionSettings(s);
    plugins::AddEventhookSettings(s);
    plugins::AddScheduleSettings(s);
    s.Add({.key = "engine.max_poll_ms",
           .type = Type::kInt,
           .default_value = "60000",
           .description = "longest a long-poll may wait",
           .min_value = 0,
           .max_value = 600000});
    return s;
  }();
  return schema;
}

Settings Settings::From(const config::Values& v) {
  Settings s;
  s.database_url = v.String("database_url");
  s.server_port = static_cast<int>(v.Int("server_port"));
  s.grpc_server_port = static_cast<int>(v.Int("grpc_server_port"));
  s.nats_enabled = v.Bool("nats.enabled");
  s.nats_url = v.String("nats.url");
  s.security_enabled = v.Bool("flovyn_security.enabled");
  s.worker_token_secret = v.String("worker_token_secret");
  s.metrics_enabled = v.Bool("metrics.enabled");
  s.metrics_port = static_cast<int>(v.Int("metrics.port"));
  s.static_api_keys_json = v.String("auth.static_api_key.keys");
  s.jwt_jwks_uri = v.String("auth.jwt.jwks_uri");
  s.jwt_issuer = v.String("auth.jwt.issuer");
  s.jwt_audience = v.String("auth.jwt.audience");
  s.jwt_refetch_interval_ms = v.Int("auth.jwt.refetch_interval_ms");
  s.api_key_validate_url = v.String("auth.api_key.validate_url");
  s.api_key_cache_secs = v.Int("auth.api_key.cache_secs");
  s.api_key_validations_per_sec = v.Int("auth.api_key.validations_per_sec");
  s.api_key_validation_burst = v.Int("auth.api_key.validation_burst");
  s.api_key_max_validations_in_flight = v.Int("auth.api_key.max_validations_in_flight");
  s.workflow_lease_ms = v.Int("engine.workflow_lease_ms");
  s.problem_retry_ms = v.Int("engine.problem_retry_ms");
  s.sticky_ms = v.Int("engine.sticky_ms");
  s.worker_timer_grace_ms = v.Int("engine.worker_timer_grace_ms");
  s.group_commit_max = static_cast<int>(v.Int("engine.group_commit_max"));
  s.group_commit_lanes = static_cast<int>(v.Int("engine.group_commit_lanes"));
  s.group_commit_queue_max = static_cast<int>(v.Int("engine.group_commit_queue_max"));
  s.group_commit_window_us = v.Int("engine.group_commit_window_us");
  s.eager_dispatch = v.Bool("engine.eager_dispatch");
  s.allow_time_skipping = v.Bool("engine.allow_time_skipping");
  s.poll_sweep_ms = v.Int("engine.poll_sweep_ms");
  s.max_poll_ms = v.Int("engine.max_poll_ms");
  s.max_polls_per_tenant = static_cast<int>(v.Int("engine.max_polls_per_tenant"));
  s.max_streams_per_tenant = static_cast<int>(v.Int("engine.max_streams_per_tenant"));
  s.max_event_streams = static_cast<int>(v.Int("engine.max_event_streams"));
  s.event_stream_poll_ms = v.Int("engine.event_stream_poll_ms");
  s.retention_enabled = v.Bool("retention.enabled");
  s.retention_interval_ms = v.Int("retention.interval_ms");
  s.retention_batch_size = static_cast<int>(v.Int("retention.batch_size"));
  s.retention_batch_pause_ms = v.Int("retention.batch_pause_ms");
  s.retention_export_dir = v.String("retention.export_dir");
  s.grpc_handler_threads = static_cast<int>(v.Int("grpc.handler_threads"));
  s.grpc_handler_queue = static_cast<int>(v.Int("grpc.handler_queue"));
  s.grpc.max_connections = static_cast<int>(v.Int("grpc.max_connections"));
  s.grpc.max_concurrent_streams = static_cast<int>(v.Int("grpc.max_concurrent_streams"));
  s.grpc.max_connection_idle = std::chrono::milliseconds(v.Int("grpc.max_connection_idle_ms"));
  s.grpc.max_connection_age = std::chrono::milliseconds(v.Int("grpc.max_connection_age_ms"));
  s.grpc.max_connection_age_grace = std::chrono::milliseconds(v.Int("grpc.max_connection_age_grace_ms"));
  s.grpc.handshake_timeout = std::chrono::milliseconds(v.Int("grpc.handshake_timeout_ms"));
  s.grpc.memory_quota_bytes = static_cast<size_t>(v.Int("grpc.memory_quota_mb")) * 1024 * 1024;
  s.grpc.shed_above_bytes = static_cast<size_t>(v.Int("grpc.shed_above_mb")) * 1024 * 1024;
  return s;
}

}  // namespace flovyn::server
