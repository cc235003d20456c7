// The seam through which a program's parts (the engine core, plugins, test fixtures) plug into
// the shared lifecycle: each contributes migrations, routes, gRPC services and health checks,
// starts after migrations, and stops in reverse order during the drain.
#pragma once

#include <string>
#include <vector>

#include "flovyn/core/status.h"
#include "flovyn/migrate/migration.h"

namespace flovyn::config {
class Values;
}
namespace flovyn::db {
class Pool;
}
namespace flovyn::nats {
class Connection;
}
namespace flovyn::metrics {
class Registry;
}
namespace flovyn::http {
class Router;
}
namespace flovyn::health {
class Monitor;
}
namespace flovyn::grpcsvc {
class Server;
}
namespace flovyn::lifecycle {
class StageCell;
}

namespace flovyn::runtime {

// What a module may use. Everything outlives every module.
struct Context {
  const config::Values& config;
  db::Pool& pool;
  nats::Connection* nats;  // null when NATS is disabled
  metrics::Registry& metrics;
  const lifecycle::StageCell& stage;
};

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string name() const = 0;
  // A plugin is listed by the legacy health endpoint; its migrations run after the core's.
  virtual bool is_plugin() const { return false; }
  virtual std::vector<migrate::Migration> migrations() const { return {}; }
  // Before migrations; API routes are only called once RUNNING, after Start.
  virtual void AddRoutes(http::Router&) {}
  // After Start (services may use what Start built).
  virtual void AddGrpcServices(grpcsvc::Server&) {}
  virtual void AddHealthChecks(health::Monitor&) {}
  // After migrations, before RUNNING.
  virtual Status Start(const Context&) { return Status::Ok(); }
  // Drain step 3: release waiting long-polls and streams at once.
  virtual void BeginDrain() {}
  // Drain step 5: stop background work.
  virtual void Stop() {}
};

}  // namespace flovyn::runtime
