#include "flovyn/runtime/process_settings.h"

namespace flovyn::runtime {

using config::Type;

void AddProcessSettings(config::Schema& s, const ProcessSettingDefaults& d) {
  s.Add({.key = "bind_address", .default_value = "0.0.0.0", .description = d.bind_address_description});
  s.Add({.key = "rust_log",
         .default_value = "warn",
         .description = "log level (trace, debug, info, warn, error), optionally `flovyn=debug` directives",
         .env_aliases = {"LOG_LEVEL"}});
  s.Add({.key = "log_format", .default_value = "text", .description = "log line format", .choices = {"text", "json"}});
  s.Add({.key = "shutdown.delay_secs",
         .type = Type::kInt,
         .default_value = "0",
         .description = "seconds to keep serving after SIGTERM while load balancers drop the pod",
         .min_value = 0,
         .max_value = 3600});
  s.Add({.key = "shutdown.timeout_secs",
         .type = Type::kInt,
         .default_value = "25",
         .description = "seconds in-flight requests get to finish before they are cancelled",
         .min_value = 0,
         .max_value = 3600});
  s.Add({.key = "database.pool_size",
         .type = Type::kInt,
         .default_value = std::to_string(d.db_pool_size),
         .description = "maximum PostgreSQL connections in the pool",
         .min_value = 1,
         .max_value = 1000});
  s.Add({.key = "database.connect_timeout_secs",
         .type = Type::kInt,
         .default_value = "5",
         .description = "PostgreSQL connect timeout",
         .min_value = 1,
         .max_value = 600});
  s.Add({.key = "database.statement_timeout_secs",
         .type = Type::kInt,
         .default_value = "30",
         .description = "PostgreSQL statement timeout",
         .min_value = 1,
         .max_value = 3600});
  s.Add({.key = "http.max_body_bytes",
         .type = Type::kInt,
         .default_value = std::to_string(d.http_max_body_bytes),
         .description = "largest accepted request body (larger: 413)",
         .min_value = 1024,
         .max_value = 1073741824});
  s.Add({.key = "http.max_connections",
         .type = Type::kInt,
         .default_value = "1000",
         .description = "open HTTP connections at most; beyond it a new connection is answered 503 and closed "
                        "(each holds a file descriptor and up to http.max_body_bytes)",
         .min_value = 1,
         .max_value = 1000000});
  s.Add({.key = "http.read_timeout_secs",
         .type = Type::kInt,
         .default_value = "30",
         .description = "time a client gets to send a request (and idle keep-alive time)",
         .min_value = 1,
         .max_value = 3600});
}

void ApplyProcessSettings(const config::Values& v, ProcessSpec& spec) {
  spec.bind_address = v.String("bind_address");
  spec.shutdown_delay = std::chrono::seconds(v.Int("shutdown.delay_secs"));
  spec.shutdown_timeout = std::chrono::seconds(v.Int("shutdown.timeout_secs"));
  spec.db_pool_size = static_cast<int>(v.Int("database.pool_size"));
  spec.db_connect_timeout = std::chrono::seconds(v.Int("database.connect_timeout_secs"));
  spec.db_statement_timeout = std::chrono::seconds(v.Int("database.statement_timeout_secs"));
  spec.http_max_body_bytes = static_cast<size_t>(v.Int("http.max_body_bytes"));
  spec.http_read_timeout = std::chrono::seconds(v.Int("http.read_timeout_secs"));
  spec.http_max_connections = static_cast<int>(v.Int("http.max_connections"));
}

void AddTracingSettings(config::Schema& s, const std::string& default_service_name) {
  s.Add({.key = "otel.enabled",
         .type = Type::kBool,
         .default_value = "false",
         .description = "export traces over OTLP/gRPC"});
  s.Add({.key = "otel.otlp_endpoint",
         .type = config::Type::kSecretUrl,
         .description = "OTLP gRPC endpoint (host:port or http://host:port)",
         .env_aliases = {"OTEL_EXPORTER_OTLP_ENDPOINT"},
         .required_when = "otel.enabled"});
  s.Add({.key = "otel.service_name",
         .default_value = default_service_name,
         .description = "service.name of exported spans",
         .env_aliases = {"OTEL_SERVICE_NAME"}});
  s.Add({.key = "otel.batch_interval_ms",
         .type = Type::kInt,
         .default_value = "1000",
         .description = "how often queued spans are exported",
         .min_value = 10,
         .max_value = 600000});
  s.Add({.key = "otel.max_queue",
         .type = Type::kInt,
         .default_value = "2048",
         .description = "spans queued for export at most; more are dropped and counted",
         .min_value = 1,
         .max_value = 1000000});
}

void ApplyTracingSettings(const config::Values& v, const std::string& version, ProcessSpec& spec) {
  if (!v.Bool("otel.enabled")) return;
  trace::TracerOptions t;
  t.endpoint = v.String("otel.otlp_endpoint");
  t.service_name = v.String("otel.service_name");
  t.service_version = version;
  t.interval = std::chrono::milliseconds(v.Int("otel.batch_interval_ms"));
  t.max_queue = static_cast<size_t>(v.Int("otel.max_queue"));
  spec.tracing = t;
}

void AddMetricsSettings(config::Schema& s, int default_port) {
  s.Add({.key = "metrics.enabled",
         .type = config::Type::kBool,
         .default_value = "false",
         .description = "serve Prometheus metrics"});
  s.Add({.key = "metrics.port",
         .type = config::Type::kInt,
         .default_value = std::to_string(default_port),
         .description = "metrics port",
         .min_value = 1,
         .max_value = 65535});
}

}  // namespace flovyn::runtime
