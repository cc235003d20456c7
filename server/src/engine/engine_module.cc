#include "engine/engine_module.h"

#include <spdlog/spdlog.h>

#include "engine/console_auth.h"
#include "engine/rest_api.h"
#include "flovyn/grpc/server.h"
#include "flovyn/http/openapi.h"
#include "flovyn/http/router.h"
#include "flovyn/nats/connection.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

using http::Request;
using http::Respond;
using nlohmann::json;

EngineModule::EngineModule(EngineSettings settings) : settings_(std::move(settings)), follow_(settings_.follow) {}
EngineModule::~EngineModule() { Stop(); }

Status EngineModule::Start(const runtime::Context& ctx) {
  hub_ = std::make_unique<WorkHub>(settings_.dispatch.sweep_interval);
  handlers_ = std::make_unique<WorkPool>("flovyn-grpc", settings_.handler_threads, settings_.handler_queue);
  if (ctx.nats != nullptr) {
    notifier_ = std::make_unique<NatsNotifier>(*hub_, *ctx.nats);
  } else {
    notifier_ = std::make_unique<PostgresNotifier>(*hub_, ctx.pool);
  }
  metrics_ = std::make_unique<EngineMetrics>(ctx.metrics);
  store_ = std::make_unique<Store>(ctx.pool, *notifier_, settings_.store, metrics_.get());
  tenancy_ = std::make_unique<Tenancy>(*store_);
  auth_ = std::make_unique<AuthChain>(settings_.security_enabled);
  auto keys = ParseStaticApiKeys(settings_.static_api_keys_json);
  if (!keys.ok()) return keys.status();
  if (!keys->empty()) {
    auth_->Add(std::make_shared<StaticApiKeyAuthenticator>(
        *keys, [this](const std::string& org) { return tenancy_->IdForOrg(org); }));
  }
  auto by_owner = [this](const std::string& org_id) { return tenancy_->IdForOwner(org_id); };
  if (!settings_.jwt_jwks_uri.empty()) {
    JwtOptions o;
    o.jwks_uri = settings_.jwt_jwks_uri;
    o.issuer = settings_.jwt_issuer;
    o.audience = settings_.jwt_audience;
    o.min_refetch = settings_.jwt_refetch_interval;
    auth_->Add(std::make_shared<JwtAuthenticator>(o, by_owner));
  }
  if (!settings_.api_key_validate_url.empty()) {
    ConsoleApiKeyOptions o;
    o.validate_url = settings_.api_key_validate_url;
    o.valid_ttl = settings_.api_key_cache;
    o.invalid_ttl = std::min(settings_.api_key_cache, o.invalid_ttl);
    o.per_source_per_sec = settings_.api_key_validations_per_sec;
    o.per_source_burst = settings_.api_key_validation_burst;
    o.max_in_flight = settings_.api_key_max_validations_in_flight;
    auth_->Add(std::make_shared<ConsoleApiKeyAuthenticator>(o, by_owner));
  }
  rest_ = std::make_unique<RestContext>(*auth_, *tenancy_);
  // What plugins may use: they add authenticators to the chain and admit their REST calls.
  ctx.services.Provide(*auth_);
  ctx.services.Provide(*rest_);
  ctx.services.Provide(*store_);  // schedules and event hooks start work through it
  calls_ = std::make_unique<CallContext>(*auth_, *tenancy_, *handlers_);
  waiting_ = std::make_unique<Waiting>(*hub_, settings_.dispatch, metrics_.get());
  if (settings_.dispatch.eager_dispatch) store_->SetTaskHandoff(&waiting_->handoff, &waiting_->workflow_handoff);
  lifecycle_svc_ = std::make_unique<WorkerLifecycleService>(*store_, *calls_);
  dispatch_svc_ = std::make_unique<WorkflowDispatchService>(*store_, *calls_, *waiting_);
  task_svc_ = std::make_unique<TaskExecutionService>(*store_, *calls_, *waiting_);
  scheduler_ = std::make_unique<Scheduler>(*store_, settings_.scheduler_sweep);
  // Deadlines committed here or on another replica wake the scheduler when they fall due.
  notifier_->SetDeadlineSink([s = scheduler_.get()](int64_t unix_us) { s->Hint(unix_us); });
  notifier_->Start();
  scheduler_->Start();
  retention_ = std::make_unique<Retention>(*store_, settings_.retention, &ctx.metrics);
  retention_->Start();
  spdlog::info("engine started (wake-ups through {})", ctx.nats ? "NATS" : "PostgreSQL LISTEN/NOTIFY");
  return Status::Ok();
}

void EngineModule::AddGrpcServices(grpcsvc::Server& server) {
  server.AddService(lifecycle_svc_.get(), "flovyn.v1.WorkerLifecycle");
  server.AddService(dispatch_svc_.get(), "flovyn.v1.WorkflowDispatch");
  server.AddService(task_svc_.get(), "flovyn.v1.TaskExecution");
}

void EngineModule::BeginDrain() {
  if (hub_) hub_->Drain();
}

void EngineModule::Stop() {
  if (retention_) retention_->Stop();
  if (notifier_) notifier_->SetDeadlineSink(nullptr);  // no hint reaches a stopped scheduler
  if (scheduler_) scheduler_->Stop();
  if (notifier_) notifier_->Stop();
  // After the gRPC server has shut down: no call can submit any more.
  if (handlers_) handlers_->Stop();
}

void EngineModule::AddRoutes(http::Router& r) {
  router_ = &r;
  RestApi api{r, rest_, store_, follow_};
  AddRestRoutes(api);
  // The document describing all of the above, from this same table.
  r.Add("GET", "/api/docs/openapi.json", http::Sync([this](const Request&) {
          return http::JsonResponse(200, http::OpenApiDocument(*router_, "/api/", "Flovyn REST API", FLOVYN_VERSION));
        }),
        {.summary = "This OpenAPI document", .tag = "docs"});
}

}  // namespace flovyn::engine
