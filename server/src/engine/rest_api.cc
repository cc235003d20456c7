// The engine's REST API, one function per area; EngineModule::AddRoutes calls them. Every route
// admits the caller for its action (policy.h) before its handler runs; handlers reach the store
// through the module, which builds it at Start.
#include "engine/rest_api.h"

#include "flovyn/core/status_macros.h"
#include "flovyn/model/status.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

const std::vector<std::string> kWorkflowStatuses = model::WorkflowStatusNames();
const std::vector<std::string> kTaskStatuses = model::TaskStatusNames();

Response Err(const Status& s) { return http::ErrorResponse(s); }

}  // namespace

void RestApi::Add(const char* method, const char* path, Action action,
                  std::function<Response(const Request&, const Caller&)> f, http::RouteOptions o) {
  o.permission = std::string(ActionName(action));
  router.Add(method, path, http::Sync([&ctx = rest, action, f = std::move(f)](const Request& req) {
               auto caller = ctx->Admit(req, action);
               if (!caller.ok()) return Err(caller.status());
               return f(req, *caller);
             }),
             std::move(o));
}

// Tenants: created by a platform admin or by the console for its organisation.
void AddTenantRoutes(RestApi& api) {
  api.Add("POST", "/api/tenants", Action::kTenantsCreate,
          [&store = api.store](const Request& req, const Caller& c) {
            const Principal& p = c.principal;
            ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
            ASSIGN_OR_RETURN_WITH(auto slug, StringField(body, "slug"), Err);
            ASSIGN_OR_RETURN_WITH(auto name, StringField(body, "name"), Err);
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
            ASSIGN_OR_RETURN_WITH(
                auto t,
                store->CreateTenant(*slug, name.value_or(*slug), own_org ? p.org_id : kStaticOwner, claim_legacy), Err);
            return Json(t.existed ? 200 : 201, ToJson(t));
          },
          {.summary = "Create a tenant (platform admin)", .tag = "tenants", .has_body = true});

  api.Add("GET", "/api/tenants", Action::kTenantsRead,
          [&store = api.store](const Request&, const Caller& c) {
            const Principal& p = c.principal;
            json items = json::array();
            if (p.platform_admin) {
              ASSIGN_OR_RETURN_WITH(auto all, store->ListTenants(), Err);
              for (const auto& t : all) items.push_back(ToJson(t));
            } else {
              ASSIGN_OR_RETURN_WITH(auto t, store->TenantById(p.tenant_id), Err);
              items.push_back(ToJson(t));
            }
            return Json(200, {{"items", items}});
          },
          {.summary = "List the tenants the caller may see", .tag = "tenants"});

  api.Add("GET", "/api/tenants/{tenant}", Action::kTenantsRead,
          [&store = api.store](const Request&, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto t, store->TenantById(tenant), Err);
            return Json(200, ToJson(t));
          },
          {.summary = "Get a tenant", .tag = "tenants"});

  api.Add("GET", "/api/tenants/{tenant}/retention", Action::kTenantsRead,
          [&store = api.store](const Request&, const Caller& c) {
            ASSIGN_OR_RETURN_WITH(auto days, store->RetentionDays(c.tenant_id), Err);
            return Json(200, {{"retentionDays", days}});
          },
          {.summary = "How long finished executions are kept", .tag = "tenants"});

  api.Add(
      "PUT", "/api/tenants/{tenant}/retention", Action::kTenantsManage,
      [&store = api.store](const Request& req, const Caller& c) {
        ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
        ASSIGN_OR_RETURN_WITH(auto days, IntField(body, "retentionDays"), Err);
        if (!days || *days < 1 || *days > 36500) return Err(InvalidArgument("retentionDays must be 1 to 36500"));
        Status s = store->SetRetentionDays(c.tenant_id, static_cast<int>(*days));
        if (!s.ok()) return Err(s);
        return Json(200, {{"retentionDays", *days}});
      },
      {.summary = "Set how long finished executions are kept (1 to 36500 days)", .tag = "tenants", .has_body = true});
}

// Starting, signalling and cancelling workflows.
void AddWorkflowWriteRoutes(RestApi& api) {
  api.Add("POST", "/api/tenants/{tenant}/workflows", Action::kWorkflowsWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto work, ParseWorkBody(req), Err);
            ASSIGN_OR_RETURN_WITH(auto key, StringField(work.body, "idempotencyKey"), Err);
            StartWorkflowRequest s{work.kind, work.queue, work.input_json, key, trace::CurrentTraceParent()};
            ASSIGN_OR_RETURN_WITH(auto started, store->StartWorkflow(tenant, s), Err);
            return Json(started.created ? 201 : 200, {{"id", started.execution_id}, {"created", started.created}});
          },
          {.summary = "Start a workflow (idempotencyKey returns the first execution)",
           .tag = "workflows",
           .has_body = true});

  api.Add("POST", "/api/tenants/{tenant}/workflows/{id}/cancel", Action::kWorkflowsWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            std::string reason;
            int64_t grace_ms = 0;
            if (!req.body.empty()) {  // optional body {"reason": "...", "graceMs": N}
              ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
              ASSIGN_OR_RETURN_WITH(auto given, StringField(body, "reason"), Err);
              reason = given.value_or("");
              ASSIGN_OR_RETURN_WITH(auto grace, IntField(body, "graceMs"), Err);
              grace_ms = grace.value_or(0);
            }
            Status s = store->Cancel(tenant, ExecutionId(req.path_params.at("id")), reason,
                                     std::chrono::milliseconds(grace_ms));
            if (!s.ok()) return Err(s);
            return Json(202, {{"cancelRequested", true}});
          },
          {.summary = "Cancel a workflow (graceMs: the code sees the request and may compensate first; "
                      "it is cancelled outright when that time has passed)",
           .tag = "workflows"});

  api.Add("POST", "/api/tenants/{tenant}/workflows/{id}/signals", Action::kWorkflowsWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
            ASSIGN_OR_RETURN_WITH(auto name, StringField(body, "name"), Err);
            if (!name) return Err(InvalidArgument("'name' is required"));
            Status s = store->Signal(tenant, ExecutionId(req.path_params.at("id")), *name, ValueField(body, "payload"));
            if (!s.ok()) return Err(s);
            return Json(202, {{"delivered", true}});
          },
          {.summary = "Send a signal to a workflow", .tag = "workflows", .has_body = true});

  api.Add("POST", "/api/tenants/{tenant}/workflows/{id}/search-attributes", Action::kWorkflowsWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            ExecutionId id(req.path_params.at("id"));
            ASSIGN_OR_RETURN_WITH(auto w, store->GetWorkflow(c.tenant_id, id), Err);  // 404 before 400
            ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
            auto attributes = body.find("attributes");
            if (attributes == body.end() || !attributes->is_object()) {
              return Err(InvalidArgument("'attributes' must be an object of strings, numbers, booleans or null"));
            }
            ASSIGN_OR_RETURN_WITH(auto all, store->SetSearchAttributes(c.tenant_id, id, attributes->dump()), Err);
            return Json(200, {{"searchAttributes", json::parse(all)}});
          },
          {.summary = "Set search attributes of a workflow (null removes one)", .tag = "workflows", .has_body = true});

  api.Add("POST", "/api/tenants/{tenant}/signal-with-start", Action::kWorkflowsWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
            ASSIGN_OR_RETURN_WITH(auto kind, StringField(body, "kind"), Err);
            ASSIGN_OR_RETURN_WITH(auto queue, StringField(body, "queue"), Err);
            ASSIGN_OR_RETURN_WITH(auto key, StringField(body, "idempotencyKey"), Err);
            ASSIGN_OR_RETURN_WITH(auto name, StringField(body, "signalName"), Err);
            if (!kind || !name) return Err(InvalidArgument("'kind' and 'signalName' are required"));
            StartWorkflowRequest s{*kind, queue.value_or("default"), ValueField(body, "input"), key,
                                   trace::CurrentTraceParent()};
            ASSIGN_OR_RETURN_WITH(auto started, store->SignalWithStart(tenant, s, *name, ValueField(body, "payload")),
                                  Err);
            return Json(started.created ? 201 : 200, {{"id", started.execution_id}, {"created", started.created}});
          },
          {.summary = "Signal a workflow, starting it first when needed", .tag = "workflows", .has_body = true});
}

// Workflows and their histories and state, as the console and clients read them.
void AddWorkflowReadRoutes(RestApi& api) {
  api.Add("GET", "/api/tenants/{tenant}/workflows", Action::kWorkflowsRead,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto filter, ListFilterFrom(req, kWorkflowStatuses), Err);
            ASSIGN_OR_RETURN_WITH(auto page, store->ListWorkflows(tenant, filter), Err);
            json items = json::array();
            for (const auto& w : page.items) items.push_back(ToJson(w));
            return Json(200,
                        {{"items", items}, {"nextCursor", page.next_cursor ? json(*page.next_cursor) : json(nullptr)}});
          },
          {.summary = "List or search workflows, newest first (q: the search language, docs/search.md)",
           .tag = "workflows",
           .query = {"status", "kind", "queue", "parent", "q", "limit", "cursor"}});

  api.Add("GET", "/api/tenants/{tenant}/workflow-counts", Action::kWorkflowsRead,
          [&store = api.store](const Request&, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto counts, store->CountWorkflows(tenant), Err);
            json out = json::object();
            for (const auto& s : kWorkflowStatuses) out[s] = 0;
            for (const auto& [status, n] : counts) out[status] = n;
            return Json(200, {{"counts", out}});
          },
          {.summary = "Workflow executions by status", .tag = "workflows"});

  api.Add("GET", "/api/tenants/{tenant}/workflows/{id}", Action::kWorkflowsRead,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ExecutionId id(req.path_params.at("id"));
            ASSIGN_OR_RETURN_WITH(auto w, store->GetWorkflow(tenant, id), Err);
            ASSIGN_OR_RETURN_WITH(w.search_attributes_json, store->SearchAttributesOf(id), Err);
            return Json(200, ToJson(w));
          },
          {.summary = "Get a workflow execution", .tag = "workflows"});

  api.Add("GET", "/api/tenants/{tenant}/workflows/{id}/events", Action::kWorkflowsRead,
          [&store = api.store, &follow = api.follow](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            auto f = req.query.find("follow");
            if ((f != req.query.end() && f->second == "true") ||
                req.Header("accept").find("text/event-stream") != std::string_view::npos) {
              return FollowEvents(*store, follow, tenant, ExecutionId(req.path_params.at("id")), req);
            }
            int64_t after = 0;
            if (auto a = req.query.find("after"); a != req.query.end()) {
              ASSIGN_OR_RETURN_WITH(after, SequenceParam(a->second), Err);
            }
            ASSIGN_OR_RETURN_WITH(auto events, store->Events(tenant, ExecutionId(req.path_params.at("id")), after),
                                  Err);
            json items = json::array();
            for (const auto& e : events) items.push_back(ToJson(e));
            return Json(200, {{"items", items}});
          },
          {.summary = "A workflow's event history; follow=true (or Accept: text/event-stream) streams it as "
                      "Server-Sent Events, resumable with Last-Event-ID",
           .tag = "workflows",
           .query = {"follow", "after"}});

  api.Add("GET", "/api/tenants/{tenant}/workflows/{id}/state", Action::kWorkflowsRead,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto state, store->State(tenant, ExecutionId(req.path_params.at("id"))), Err);
            json out = json::object();
            for (const auto& [k, v] : state) out[k] = json::parse(v);
            return Json(200, {{"state", out}});
          },
          {.summary = "A workflow's state map", .tag = "workflows"});
}

// Standalone tasks and the tasks workflows scheduled.
void AddTaskRoutes(RestApi& api) {
  api.Add("POST", "/api/tenants/{tenant}/tasks", Action::kTasksWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto work, ParseWorkBody(req), Err);
            ASSIGN_OR_RETURN_WITH(auto attempts, IntField(work.body, "maxAttempts"), Err);
            SubmitTaskRequest s;
            s.kind = work.kind;
            s.queue = work.queue;
            s.input_json = work.input_json;
            if (attempts) {
              if (*attempts < 1 || *attempts > 1000) return Err(InvalidArgument("maxAttempts must be 1 to 1000"));
              s.max_attempts = static_cast<int>(*attempts);
            }
            s.traceparent = trace::CurrentTraceParent();
            ASSIGN_OR_RETURN_WITH(auto id, store->SubmitTask(tenant, s), Err);
            return Json(201, {{"id", id.str()}});
          },
          {.summary = "Submit a standalone task", .tag = "tasks", .has_body = true});

  api.Add("GET", "/api/tenants/{tenant}/tasks", Action::kTasksRead,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto filter, ListFilterFrom(req, kTaskStatuses), Err);
            ASSIGN_OR_RETURN_WITH(auto page, store->ListTasks(tenant, filter), Err);
            json items = json::array();
            for (const auto& t : page.items) items.push_back(ToJson(t));
            return Json(200,
                        {{"items", items}, {"nextCursor", page.next_cursor ? json(*page.next_cursor) : json(nullptr)}});
          },
          {.summary = "List tasks, newest first", .tag = "tasks", .query = {"status", "kind", "limit", "cursor"}});

  api.Add("GET", "/api/tenants/{tenant}/tasks/{id}", Action::kTasksRead,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto t, store->GetTask(tenant, TaskId(req.path_params.at("id"))), Err);
            return Json(200, ToJson(t));
          },
          {.summary = "Get a task", .tag = "tasks"});

  api.Add("POST", "/api/tenants/{tenant}/tasks/{id}/cancel", Action::kTasksWrite,
          [&store = api.store](const Request& req, const Caller& c) {
            std::string reason;
            if (!req.body.empty()) {  // optional body {"reason": "..."}
              ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
              ASSIGN_OR_RETURN_WITH(auto given, StringField(body, "reason"), Err);
              reason = given.value_or("");
            }
            Status s = store->CancelTask(c.tenant_id, TaskId(req.path_params.at("id")), reason);
            if (!s.ok()) return Err(s);
            return Json(202, {{"cancelRequested", true}});
          },
          {.summary = "Cancel a task (a running attempt learns it at its next heartbeat)", .tag = "tasks"});
}

// Settling promises from outside; the registered workers.
void AddPromiseAndWorkerRoutes(RestApi& api) {
  api.Add("POST", "/api/tenants/{tenant}/promises/{id}/resolve", Action::kPromisesSettle,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
            Status s = store->ResolvePromise(tenant, PromiseId(req.path_params.at("id")), ValueField(body, "value"));
            if (!s.ok()) return Err(s);
            return Json(200, {{"status", "RESOLVED"}});
          },
          {.summary = "Resolve a waiting promise", .tag = "promises", .has_body = true});

  api.Add("POST", "/api/tenants/{tenant}/promises/{id}/reject", Action::kPromisesSettle,
          [&store = api.store](const Request& req, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto body, JsonBody(req), Err);
            ASSIGN_OR_RETURN_WITH(auto error, StringField(body, "error"), Err);
            Status s = store->RejectPromise(tenant, PromiseId(req.path_params.at("id")), error.value_or("rejected"));
            if (!s.ok()) return Err(s);
            return Json(200, {{"status", "REJECTED"}});
          },
          {.summary = "Reject a waiting promise", .tag = "promises", .has_body = true});

  api.Add("GET", "/api/tenants/{tenant}/workers", Action::kWorkersRead,
          [&store = api.store](const Request&, const Caller& c) {
            const TenantId& tenant = c.tenant_id;
            ASSIGN_OR_RETURN_WITH(auto workers, store->ListWorkers(tenant), Err);
            json items = json::array();
            for (const auto& w : workers) items.push_back(ToJson(w));
            return Json(200, {{"items", items}});
          },
          {.summary = "Registered workers with their heartbeat age", .tag = "workers"});
}

void AddRestRoutes(RestApi& api) {
  AddTenantRoutes(api);
  AddWorkflowWriteRoutes(api);
  AddWorkflowReadRoutes(api);
  AddTaskRoutes(api);
  AddPromiseAndWorkerRoutes(api);
}

}  // namespace flovyn::engine
