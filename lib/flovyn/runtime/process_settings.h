// The settings every Flovyn program has because it runs on the shared lifecycle (listener,
// logging, drain, database pool, HTTP limits), declared once for all programs, and their
// translation into the ProcessSpec.
#pragma once

#include "flovyn/config/config.h"
#include "flovyn/runtime/process.h"

namespace flovyn::runtime {

struct ProcessSettingDefaults {
  int db_pool_size = 16;
  long http_max_body_bytes = 1024L * 1024;
  const char* bind_address_description = "address the listeners bind to";
};

// Adds bind_address, rust_log (LOG_LEVEL), log_format, shutdown.*, database.* and http.*.
void AddProcessSettings(config::Schema& schema, const ProcessSettingDefaults& defaults = {});

// Fills the spec's fields that those settings govern.
void ApplyProcessSettings(const config::Values& values, ProcessSpec& spec);

// otel.* (OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME honoured too): OTLP/gRPC trace export.
void AddTracingSettings(config::Schema& schema, const std::string& default_service_name);
// metrics.enabled and metrics.port (the program's own default port).
void AddMetricsSettings(config::Schema& schema, int default_port);
// Sets spec.tracing when otel.enabled.
void ApplyTracingSettings(const config::Values& values, const std::string& version, ProcessSpec& spec);

}  // namespace flovyn::runtime
