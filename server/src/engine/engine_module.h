// The engine as a module of flovyn-server: builds the store, wake-ups, scheduler, gRPC
// services and REST API on the shared runtime, and releases waiting calls on drain.
#pragma once

#include <memory>

#include "engine/auth.h"
#include "engine/engine_metrics.h"
#include "engine/event_follow.h"
#include "engine/grpc_services.h"
#include "engine/notifier.h"
#include "engine/rest_support.h"
#include "engine/retention.h"
#include "engine/scheduler.h"
#include "engine/store.h"
#include "engine/tenancy.h"
#include "engine/work_hub.h"
#include "flovyn/runtime/module.h"

namespace flovyn::engine {

struct EngineSettings {
  bool security_enabled = true;
  std::string static_api_keys_json;  // [{key, org_id, principal_type, principal_id, role}]
  // The console's credentials (empty: not accepted).
  std::string jwt_jwks_uri, jwt_issuer, jwt_audience = "flovyn-server";
  std::chrono::milliseconds jwt_refetch_interval{10000};
  std::string api_key_validate_url;
  std::chrono::seconds api_key_cache{30};
  double api_key_validations_per_sec = 5, api_key_validation_burst = 20;
  int api_key_max_validations_in_flight = 4;
  DispatchOptions dispatch;
  int handler_threads = 16;      // the gRPC handler pool (unary calls and claims)
  size_t handler_queue = 10000;  // calls waiting for a handler thread; beyond it RESOURCE_EXHAUSTED
  StoreOptions store;
  // The scheduler's safety-net sweep (timers run at their deadlines; leases expire here).
  std::chrono::milliseconds scheduler_sweep{500};
  RetentionOptions retention;
  FollowOptions follow;
};

class EngineModule final : public runtime::Module {
 public:
  explicit EngineModule(EngineSettings settings);
  ~EngineModule() override;
  std::string name() const override { return "engine"; }
  void AddRoutes(http::Router& router) override;
  void AddGrpcServices(grpcsvc::Server& server) override;
  Status Start(const runtime::Context& ctx) override;
  void BeginDrain() override;
  void Stop() override;

 private:
  EngineSettings settings_;
  std::unique_ptr<WorkHub> hub_;
  std::unique_ptr<WorkPool> handlers_;
  std::unique_ptr<Waiting> waiting_;
  std::unique_ptr<EngineMetrics> metrics_;
  std::unique_ptr<WorkNotifier> notifier_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Tenancy> tenancy_;
  std::unique_ptr<AuthChain> auth_;
  std::unique_ptr<RestContext> rest_;
  std::unique_ptr<CallContext> calls_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Retention> retention_;
  std::unique_ptr<WorkerLifecycleService> lifecycle_svc_;
  std::unique_ptr<WorkflowDispatchService> dispatch_svc_;
  std::unique_ptr<TaskExecutionService> task_svc_;
  const http::Router* router_ = nullptr;
  FollowSlots follow_;
};

}  // namespace flovyn::engine
