#include "engine/policy.h"

namespace flovyn::engine {

Role RoleOf(const Principal& p) {
  if (p.platform_admin) return Role::kAdmin;
  if (p.kind == Principal::Kind::kWorkerToken) return Role::kWorker;
  if (p.role == "owner" || p.role == "admin") return Role::kAdmin;
  if (p.role == "member") return Role::kMember;
  return Role::kNone;  // an unknown role grants nothing
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kMember:
      return "member";
    case Role::kWorker:
      return "worker";
    case Role::kNone:
      return "none";
  }
  return "none";
}

const std::vector<Grant>& Grants() {
  //                                   name                    description                                    admin
  //                                   member worker
  static const std::vector<Grant> grants = {
      {Action::kTenantsCreate, "tenants.create",
       "create a tenant (platform admins; a console owner or admin for its own organisation)", true, false, false},
      {Action::kTenantsRead, "tenants.read", "see the caller's tenant and its settings", true, true, false},
      {Action::kTenantsManage, "tenants.manage", "change the tenant's settings (retention)", true, false, false},
      {Action::kWorkflowsRead, "workflows.read", "list and read executions, their events, state and counts", true, true,
       true},
      {Action::kWorkflowsWrite, "workflows.write", "start, signal and cancel executions", true, true, true},
      {Action::kTasksRead, "tasks.read", "list and read tasks", true, true, false},
      {Action::kTasksWrite, "tasks.write", "submit and cancel standalone tasks", true, true, true},
      {Action::kPromisesSettle, "promises.settle", "resolve and reject promises", true, true, true},
      {Action::kWorkersRead, "workers.read", "list registered workers", true, true, false},
      {Action::kWorkerTokensRead, "worker-tokens.read", "list worker tokens (never the tokens themselves)", true, true,
       false},
      {Action::kWorkerTokensManage, "worker-tokens.manage", "create and revoke worker tokens", true, false, false},
      {Action::kWorkerProtocol, "worker.protocol",
       "register, heartbeat, poll and claim work, submit workflow commands, complete, fail and extend tasks", true,
       false, true},
      {Action::kSchedulesRead, "schedules.read", "list schedules, their next fire times and runs", true, true, false},
      {Action::kSchedulesManage, "schedules.manage",
       "create, change, pause, resume, trigger, backfill and delete schedules", true, true, false},
      {Action::kEventhooksRead, "eventhooks.read", "list event sources, routes and received events", true, true, false},
      {Action::kEventhooksManage, "eventhooks.manage",
       "create and change event sources (their secrets) and routes, reprocess events", true, false, false},
  };
  return grants;
}

std::string_view ActionName(Action a) {
  for (const auto& g : Grants()) {
    if (g.action == a) return g.name;
  }
  return "unknown";
}

Status Authorize(const Principal& p, Action a) {
  Role r = RoleOf(p);
  for (const auto& g : Grants()) {
    if (g.action != a) continue;
    bool allowed =
        (r == Role::kAdmin && g.admin) || (r == Role::kMember && g.member) || (r == Role::kWorker && g.worker);
    if (allowed) return Status::Ok();
    return Status(StatusCode::kPermissionDenied,
                  "the role '" + std::string(RoleName(r)) + "' may not " + std::string(g.name));
  }
  return Status(StatusCode::kPermissionDenied, "no grant for this action");
}

const std::vector<GrpcGrant>& GrpcGrants() {
  static const std::vector<GrpcGrant> grants = {
      {"flovyn.v1.WorkerLifecycle/RegisterWorker", Action::kWorkerProtocol},
      {"flovyn.v1.WorkerLifecycle/Heartbeat", Action::kWorkerProtocol},
      {"flovyn.v1.WorkflowDispatch/PollWorkflow", Action::kWorkerProtocol},
      {"flovyn.v1.WorkflowDispatch/SubmitWorkflowCommands", Action::kWorkerProtocol},
      {"flovyn.v1.WorkflowDispatch/FireTimer", Action::kWorkerProtocol},
      {"flovyn.v1.WorkflowDispatch/ReportWorkflowProblem", Action::kWorkerProtocol},
      {"flovyn.v1.WorkflowDispatch/SubscribeToNotifications", Action::kWorkerProtocol},
      {"flovyn.v1.WorkflowDispatch/StartWorkflow", Action::kWorkflowsWrite},
      {"flovyn.v1.WorkflowDispatch/SignalWorkflow", Action::kWorkflowsWrite},
      {"flovyn.v1.WorkflowDispatch/SignalWithStart", Action::kWorkflowsWrite},
      {"flovyn.v1.WorkflowDispatch/ResolvePromise", Action::kPromisesSettle},
      {"flovyn.v1.WorkflowDispatch/RejectPromise", Action::kPromisesSettle},
      {"flovyn.v1.WorkflowDispatch/GetEvents", Action::kWorkflowsRead},
      {"flovyn.v1.WorkflowDispatch/GetState", Action::kWorkflowsRead},
      {"flovyn.v1.WorkflowDispatch/SkipTime", Action::kWorkflowsWrite},
      {"flovyn.v1.TaskExecution/PollTask", Action::kWorkerProtocol},
      {"flovyn.v1.TaskExecution/CompleteTask", Action::kWorkerProtocol},
      {"flovyn.v1.TaskExecution/CompleteTasks", Action::kWorkerProtocol},
      {"flovyn.v1.TaskExecution/FailTask", Action::kWorkerProtocol},
      {"flovyn.v1.TaskExecution/ReportProgress", Action::kWorkerProtocol},
      {"flovyn.v1.TaskExecution/Heartbeat", Action::kWorkerProtocol},
      {"flovyn.v1.TaskExecution/CancelTask", Action::kTasksWrite},
      {"flovyn.v1.TaskExecution/SubmitTask", Action::kTasksWrite},
  };
  return grants;
}

StatusOr<Action> ActionOfMethod(std::string_view service, std::string_view method) {
  for (const auto& g : GrpcGrants()) {
    auto slash = g.method.find('/');
    if (g.method.substr(0, slash) == service && g.method.substr(slash + 1) == method) return g.action;
  }
  return Status(StatusCode::kPermissionDenied, "no grant for this method");
}

std::string SecurityMarkdown(const http::Router& routes) {
  auto mark = [](bool b) { return b ? "yes" : "–"; };
  std::string o =
      "# Security: who may do what\n\n"
      "Generated by `flovyn-server --security-matrix` from `server/src/engine/policy.cc`; do not edit.\n\n"
      "Every call is authenticated (unless `FLOVYN_SECURITY__ENABLED=false`), mapped to one tenant, and\n"
      "checked against this table in one place (`Authorize`). A caller never reaches another tenant's\n"
      "data: a credential names its tenant (static keys by `org_id`, console tokens and keys by the\n"
      "owning organisation's id, worker tokens by the tenant that made them).\n\n"
      "## Roles\n\n"
      "- **admin**: a static API key with `role = \"admin\"`, a console owner or admin (JWT or API key);\n"
      "  a static key with `org_id = \"*\"` is admin of every tenant (platform admin).\n"
      "- **member**: a static API key with `role = \"member\"`, a console member.\n"
      "- **worker**: a worker token (`fwt_...`), accepted by the gRPC worker protocol only; REST refuses it.\n"
      "- any other role grants nothing.\n\n"
      "## Actions\n\n| action | what | admin | member | worker |\n|---|---|---|---|---|\n";
  for (const auto& g : Grants()) {
    o += "| `" + std::string(g.name) + "` | " + std::string(g.description) + " | " + mark(g.admin) + " | " +
         mark(g.member) + " | " + mark(g.worker) + " |\n";
  }
  o += "\n## REST routes\n\n| method | path | action |\n|---|---|---|\n";
  for (const auto& r : routes.routes()) {
    o += "| " + r.method + " | `" + r.pattern + "` | " +
         (r.options.permission.empty() ? std::string("none (public)") : "`" + r.options.permission + "`") + " |\n";
  }
  o += "\n## gRPC methods\n\n| method | action |\n|---|---|\n";
  for (const auto& g : GrpcGrants()) {
    o += "| `" + std::string(g.method) + "` | `" + std::string(ActionName(g.action)) + "` |\n";
  }
  return o;
}

}  // namespace flovyn::engine
