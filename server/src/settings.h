// Every setting of flovyn-server, declared once: loading, --print-config and
// docs/configuration.md are produced from this schema.
#pragma once

#include <string>

#include "flovyn/config/config.h"
#include "flovyn/grpc/server.h"

namespace flovyn::server {

const config::Schema& Schema();

// Typed view of the loaded values (the lifecycle's own settings: runtime/process_settings.h).
struct Settings {
  std::string database_url;
  int server_port = 8000;
  int grpc_server_port = 9090;
  bool nats_enabled = false;
  std::string nats_url;
  bool security_enabled = true;
  std::string worker_token_secret;
  bool metrics_enabled = false;
  int metrics_port = 9091;
  std::string static_api_keys_json;
  std::string jwt_jwks_uri, jwt_issuer, jwt_audience, api_key_validate_url;
  long api_key_cache_secs = 30;
  int64_t api_key_validations_per_sec = 5, api_key_validation_burst = 20, api_key_max_validations_in_flight = 4;
  long jwt_refetch_interval_ms = 10000;
  long workflow_lease_ms = 60000;
  long problem_retry_ms = 10000;
  long sticky_ms = 5000;
  long worker_timer_grace_ms = 1000;
  int group_commit_max = 64, group_commit_lanes = 2, group_commit_queue_max = 1024;
  long group_commit_window_us = 0;
  bool eager_dispatch = true;
  bool allow_time_skipping = false;
  long poll_sweep_ms = 1000;
  long max_poll_ms = 60000;
  int max_polls_per_tenant = 5000, max_streams_per_tenant = 5000;
  int grpc_handler_threads = 16, grpc_handler_queue = 10000;
  int max_event_streams = 1000;
  long event_stream_poll_ms = 500;
  bool retention_enabled = true;
  long retention_interval_ms = 60000;
  int retention_batch_size = 100;
  long retention_batch_pause_ms = 100;
  std::string retention_export_dir;
  grpcsvc::ServerLimits grpc;

  static Settings From(const config::Values& v);
};

}  // namespace flovyn::server
