// The seam through which a program's parts (the engine core, plugins, test fixtures) plug into
// the shared lifecycle: each contributes migrations, routes, gRPC services and health checks,
// starts after migrations, and stops in reverse order during the drain.
#pragma once

#include <map>
#include <string>
#include <typeindex>
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

// What modules offer each other. A module provides a collaborator from its Start; a module
// started after it finds it there by type, so no module reaches into another's insides. Written
// and read only while modules start (one thread); what is provided lives until Stop.
class Services {
 public:
  template <typename T>
  void Provide(T& service) {
    by_type_[std::type_index(typeid(T))] = &service;
  }
  // Null when no module started so far provides a T.
  template <typename T>
  T* Find() const {
    auto it = by_type_.find(std::type_index(typeid(T)));
    return it == by_type_.end() ? nullptr : static_cast<T*>(it->second);
  }

 private:
  std::map<std::type_index, void*> by_type_;
};

// What a module may use. Everything outlives every module.
struct Context {
  const config::Values& config;
  db::Pool& pool;
  nats::Connection* nats;  // null when NATS is disabled
  metrics::Registry& metrics;
  const lifecycle::StageCell& stage;
  Services& services;
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
