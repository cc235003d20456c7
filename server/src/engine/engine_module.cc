#include "engine/engine_module.h"

#include "engine/console_auth.h"

#include <spdlog/spdlog.h>

#include "flovyn/grpc/server.h"
#include "flovyn/http/openapi.h"
#include "flovyn/http/router.h"
#include "flovyn/nats/connection.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

using nlohmann::json;
using http::Request;
using http::Respond;
using http::Response;

namespace {

const std::vector<std::string> kWorkflowStatuses{"PENDING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"};
const std::vector<std::string> kTaskStatuses{"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"};

Response Err(const Status& s) { return http::ErrorResponse(s); }


#define FLOVYN_TRY_ASSIGN(var, expr)        \
  auto var##_or = (expr);                   \
  if (!var##_or.ok()) return Err(var##_or.status()); \
  auto& var = *var##_or

}  // namespace

EngineModule::EngineModule(EngineSettings settings) : settings_(std::move(settings)) {}
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
  calls_ = std::make_unique<CallContext>(*auth_, *tenancy_, *handlers_);
  waiting_ = std::make_unique<Waiting>(*hub_, settings_.dispatch, metrics_.get());
  lifecycle_svc_ = std::make_unique<WorkerLifecycleService>(*store_, *calls_);
  dispatch_svc_ = std::make_unique<WorkflowDispatchService>(*store_, *calls_, *waiting_);
  task_svc_ = std::make_unique<TaskExecutionService>(*store_, *calls_, *waiting_);
  notifier_->Start();
  scheduler_ = std::make_unique<Scheduler>(*store_, settings_.scheduler_tick);
  scheduler_->Start();
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
  if (scheduler_) scheduler_->Stop();
  if (notifier_) notifier_->Stop();
  // After the gRPC server has shut down: no call can submit any more.
  if (handlers_) handlers_->Stop();
}

void EngineModule::AddRoutes(http::Router& r) {
  router_ = &r;
  auto route = [&r](const char* method, const char* path, std::function<Response(const Request&)> f,
                    http::RouteOptions o) { r.Add(method, path, http::Sync(std::move(f)), std::move(o)); };
  // A route that needs `action`: the caller is authenticated, authorised and mapped to the
  // {tenant} of the path (when it has one) before the handler runs.
  auto rest = [&r, this](const char* method, const char* path, Action action,
                         std::function<Response(const Request&, const Caller&)> f, http::RouteOptions o) {
    o.permission = std::string(ActionName(action));
    r.Add(method, path, http::Sync([this, action, f = std::move(f)](const Request& req) {
            auto caller = rest_->Admit(req, action);
            if (!caller.ok()) return Err(caller.status());
            return f(req, *caller);
          }), std::move(o));
  };

  // ---- tenants
  rest("POST", "/api/tenants", Action::kTenantsCreate, [this](const Request& req, const Caller& c) {
    const Principal& p = c.principal;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    FLOVYN_TRY_ASSIGN(slug, StringField(body, "slug"));
    FLOVYN_TRY_ASSIGN(name, StringField(body, "name"));
    if (!slug) return Err(InvalidArgument("'slug' is required"));
    // The console creates the tenant of an organisation it signed a token for (its owner or
    // admin); that organisation becomes the tenant's owner. A slug taken by anyone else is 409.
    bool own_org = p.kind == Principal::Kind::kJwt && !p.org_id.empty() && p.org_slug == *slug &&
                   RoleOf(p) == Role::kAdmin;
    if (!p.platform_admin && !own_org) {
      return Err({StatusCode::kPermissionDenied, "creating tenants needs a platform admin key"});
    }
    // An organisation that predates tenant owners claims the tenant of its slug once; the console
    // asks for that only for organisations made before the upgrade, never at sign-up.
    auto claim = body.find("claimLegacy");
    bool claim_legacy = own_org && claim != body.end() && claim->is_boolean() && claim->get<bool>();
    FLOVYN_TRY_ASSIGN(t, store_->CreateTenant(*slug, name.value_or(*slug), own_org ? p.org_id : kStaticOwner,
                                              claim_legacy));
    return Json(t.existed ? 200 : 201, ToJson(t));
  }, {.summary = "Create a tenant (platform admin)", .tag = "tenants", .has_body = true});

  rest("GET", "/api/tenants", Action::kTenantsRead, [this](const Request&, const Caller& c) {
    const Principal& p = c.principal;
    json items = json::array();
    if (p.platform_admin) {
      FLOVYN_TRY_ASSIGN(all, store_->ListTenants());
      for (const auto& t : all) items.push_back(ToJson(t));
    } else {
      FLOVYN_TRY_ASSIGN(t, store_->TenantById(p.tenant_id));
      items.push_back(ToJson(t));
    }
    return Json(200, {{"items", items}});
  }, {.summary = "List the tenants the caller may see", .tag = "tenants"});

  rest("GET", "/api/tenants/{tenant}", Action::kTenantsRead, [this](const Request&, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(t, store_->TenantById(tenant));
    return Json(200, ToJson(t));
  }, {.summary = "Get a tenant", .tag = "tenants"});

  // ---- workflows
  rest("POST", "/api/tenants/{tenant}/workflows", Action::kWorkflowsWrite, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    FLOVYN_TRY_ASSIGN(kind, StringField(body, "kind"));
    FLOVYN_TRY_ASSIGN(queue, StringField(body, "queue"));
    FLOVYN_TRY_ASSIGN(key, StringField(body, "idempotencyKey"));
    if (!kind) return Err(InvalidArgument("'kind' is required"));
    StartWorkflowRequest s{*kind, queue.value_or("default"), ValueField(body, "input"), key,
                           trace::CurrentTraceParent()};
    FLOVYN_TRY_ASSIGN(started, store_->StartWorkflow(tenant, s));
    return Json(started.created ? 201 : 200, {{"id", started.execution_id}, {"created", started.created}});
  }, {.summary = "Start a workflow (idempotencyKey returns the first execution)", .tag = "workflows", .has_body = true});

  rest("GET", "/api/tenants/{tenant}/workflows", Action::kWorkflowsRead, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(filter, ListFilterFrom(req, kWorkflowStatuses));
    FLOVYN_TRY_ASSIGN(page, store_->ListWorkflows(tenant, filter));
    json items = json::array();
    for (const auto& w : page.items) items.push_back(ToJson(w));
    return Json(200, {{"items", items}, {"nextCursor", page.next_cursor ? json(*page.next_cursor) : json(nullptr)}});
  }, {.summary = "List workflows, newest first", .tag = "workflows", .query = {"status", "kind", "limit", "cursor"}});

  rest("GET", "/api/tenants/{tenant}/workflow-counts", Action::kWorkflowsRead, [this](const Request&, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(counts, store_->CountWorkflows(tenant));
    json out = json::object();
    for (const auto& s : kWorkflowStatuses) out[s] = 0;
    for (const auto& [status, n] : counts) out[status] = n;
    return Json(200, {{"counts", out}});
  }, {.summary = "Workflow executions by status", .tag = "workflows"});

  rest("GET", "/api/tenants/{tenant}/workflows/{id}", Action::kWorkflowsRead, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(w, store_->GetWorkflow(tenant, req.path_params.at("id")));
    return Json(200, ToJson(w));
  }, {.summary = "Get a workflow execution", .tag = "workflows"});

  rest("GET", "/api/tenants/{tenant}/workflows/{id}/events", Action::kWorkflowsRead, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(events, store_->Events(tenant, req.path_params.at("id")));
    json items = json::array();
    for (const auto& e : events) items.push_back(ToJson(e));
    return Json(200, {{"items", items}});
  }, {.summary = "A workflow's event history", .tag = "workflows"});

  rest("GET", "/api/tenants/{tenant}/workflows/{id}/state", Action::kWorkflowsRead, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(state, store_->State(tenant, req.path_params.at("id")));
    json out = json::object();
    for (const auto& [k, v] : state) out[k] = json::parse(v);
    return Json(200, {{"state", out}});
  }, {.summary = "A workflow's state map", .tag = "workflows"});

  rest("POST", "/api/tenants/{tenant}/workflows/{id}/cancel", Action::kWorkflowsWrite, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    std::string reason;
    if (!req.body.empty()) {  // optional body {"reason": "..."}
      FLOVYN_TRY_ASSIGN(body, JsonBody(req));
      FLOVYN_TRY_ASSIGN(given, StringField(body, "reason"));
      reason = given.value_or("");
    }
    Status s = store_->Cancel(tenant, req.path_params.at("id"), reason);
    if (!s.ok()) return Err(s);
    return Json(202, {{"cancelRequested", true}});
  }, {.summary = "Cancel a workflow", .tag = "workflows"});

  rest("POST", "/api/tenants/{tenant}/workflows/{id}/signals", Action::kWorkflowsWrite, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    FLOVYN_TRY_ASSIGN(name, StringField(body, "name"));
    if (!name) return Err(InvalidArgument("'name' is required"));
    Status s = store_->Signal(tenant, req.path_params.at("id"), *name, ValueField(body, "payload"));
    if (!s.ok()) return Err(s);
    return Json(202, {{"delivered", true}});
  }, {.summary = "Send a signal to a workflow", .tag = "workflows", .has_body = true});

  rest("POST", "/api/tenants/{tenant}/signal-with-start", Action::kWorkflowsWrite, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    FLOVYN_TRY_ASSIGN(kind, StringField(body, "kind"));
    FLOVYN_TRY_ASSIGN(queue, StringField(body, "queue"));
    FLOVYN_TRY_ASSIGN(key, StringField(body, "idempotencyKey"));
    FLOVYN_TRY_ASSIGN(name, StringField(body, "signalName"));
    if (!kind || !name) return Err(InvalidArgument("'kind' and 'signalName' are required"));
    StartWorkflowRequest s{*kind, queue.value_or("default"), ValueField(body, "input"), key,
                           trace::CurrentTraceParent()};
    FLOVYN_TRY_ASSIGN(started, store_->SignalWithStart(tenant, s, *name, ValueField(body, "payload")));
    return Json(started.created ? 201 : 200, {{"id", started.execution_id}, {"created", started.created}});
  }, {.summary = "Signal a workflow, starting it first when needed", .tag = "workflows", .has_body = true});

  // ---- tasks
  rest("POST", "/api/tenants/{tenant}/tasks", Action::kTasksWrite, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    FLOVYN_TRY_ASSIGN(kind, StringField(body, "kind"));
    FLOVYN_TRY_ASSIGN(queue, StringField(body, "queue"));
    FLOVYN_TRY_ASSIGN(attempts, IntField(body, "maxAttempts"));
    if (!kind) return Err(InvalidArgument("'kind' is required"));
    SubmitTaskRequest s;
    s.kind = *kind;
    s.queue = queue.value_or("default");
    s.input_json = ValueField(body, "input");
    if (attempts) {
      if (*attempts < 1 || *attempts > 1000) return Err(InvalidArgument("maxAttempts must be 1 to 1000"));
      s.max_attempts = static_cast<int>(*attempts);
    }
    s.traceparent = trace::CurrentTraceParent();
    FLOVYN_TRY_ASSIGN(id, store_->SubmitTask(tenant, s));
    return Json(201, {{"id", id}});
  }, {.summary = "Submit a standalone task", .tag = "tasks", .has_body = true});

  rest("GET", "/api/tenants/{tenant}/tasks", Action::kTasksRead, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(filter, ListFilterFrom(req, kTaskStatuses));
    FLOVYN_TRY_ASSIGN(page, store_->ListTasks(tenant, filter));
    json items = json::array();
    for (const auto& t : page.items) items.push_back(ToJson(t));
    return Json(200, {{"items", items}, {"nextCursor", page.next_cursor ? json(*page.next_cursor) : json(nullptr)}});
  }, {.summary = "List tasks, newest first", .tag = "tasks", .query = {"status", "kind", "limit", "cursor"}});

  rest("GET", "/api/tenants/{tenant}/tasks/{id}", Action::kTasksRead, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(t, store_->GetTask(tenant, req.path_params.at("id")));
    return Json(200, ToJson(t));
  }, {.summary = "Get a task", .tag = "tasks"});

  // ---- promises
  rest("POST", "/api/tenants/{tenant}/promises/{id}/resolve", Action::kPromisesSettle, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    Status s = store_->ResolvePromise(tenant, req.path_params.at("id"), ValueField(body, "value"));
    if (!s.ok()) return Err(s);
    return Json(200, {{"status", "RESOLVED"}});
  }, {.summary = "Resolve a waiting promise", .tag = "promises", .has_body = true});

  rest("POST", "/api/tenants/{tenant}/promises/{id}/reject", Action::kPromisesSettle, [this](const Request& req, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(body, JsonBody(req));
    FLOVYN_TRY_ASSIGN(error, StringField(body, "error"));
    Status s = store_->RejectPromise(tenant, req.path_params.at("id"), error.value_or("rejected"));
    if (!s.ok()) return Err(s);
    return Json(200, {{"status", "REJECTED"}});
  }, {.summary = "Reject a waiting promise", .tag = "promises", .has_body = true});

  // ---- workers
  rest("GET", "/api/tenants/{tenant}/workers", Action::kWorkersRead, [this](const Request&, const Caller& c) {
    const std::string& tenant = c.tenant_id;
    FLOVYN_TRY_ASSIGN(workers, store_->ListWorkers(tenant));
    json items = json::array();
    for (const auto& w : workers) items.push_back(ToJson(w));
    return Json(200, {{"items", items}});
  }, {.summary = "Registered workers with their heartbeat age", .tag = "workers"});

  // ---- the document describing all of the above, from this same table
  route("GET", "/api/docs/openapi.json", [this](const Request&) {
    return http::JsonResponse(200, http::OpenApiDocument(*router_, "/api/", "Flovyn REST API", FLOVYN_VERSION));
  }, {.summary = "This OpenAPI document", .tag = "docs"});
}

}  // namespace flovyn::engine
