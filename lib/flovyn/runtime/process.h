// The lifecycle both programs share (operations.md §1 and §4): bind the HTTP listener first,
// migrate under the lock, start components, serve, then drain on SIGTERM in the documented
// order. One StageCell drives every probe. `Serve` blocks until the process should exit and
// returns its exit code.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flovyn/grpc/server.h"
#include "flovyn/health/probes.h"
#include "flovyn/migrate/migration.h"
#include "flovyn/runtime/cli.h"
#include "flovyn/runtime/module.h"
#include "flovyn/trace/trace.h"

namespace flovyn::runtime {

struct ProcessSpec {
  std::string program;  // "flovyn-server"
  std::string version;
  health::ProbePaths probes;
  int64_t migration_lock_key = 0;
  std::vector<migrate::Migration> core_migrations;

  std::string bind_address = "0.0.0.0";
  int http_port = 0;
  std::optional<int> grpc_port;     // no gRPC listener when empty
  std::optional<int> metrics_port;  // no metrics listener when empty
  size_t http_max_body_bytes = size_t{1024} * 1024;
  std::chrono::seconds http_read_timeout{30};
  int http_max_connections = 1000;  // beyond it a new connection gets 503 and is closed
  grpcsvc::ServerLimits grpc_limits;

  std::string database_url;
  int db_pool_size = 16;
  std::chrono::seconds db_connect_timeout{5};
  std::chrono::seconds db_statement_timeout{30};

  bool nats_enabled = false;
  std::string nats_url;

  std::optional<trace::TracerOptions> tracing;  // OTLP export when set

  std::chrono::seconds shutdown_delay{0};
  std::chrono::seconds shutdown_timeout{25};
};

class Process {
 public:
  Process(ProcessSpec spec, const config::Values& config, std::vector<std::unique_ptr<Module>> modules);
  ~Process();

  int Serve();
  // Applies migrations (or prints their state) and returns the exit code.
  int Migrate(bool status_only);
  // `serve`, `migrate` or `migrate --status`, as the command line asked.
  int Run(const Command& cmd);

 private:
  std::vector<migrate::Migration> AllMigrations() const;

  ProcessSpec spec_;
  const config::Values& config_;
  std::vector<std::unique_ptr<Module>> modules_;
};

}  // namespace flovyn::runtime
