// What each kind of caller may do, in one table. Every REST route and gRPC method names an
// Action; Authorize() is the only place that decides. docs/security.md is printed from the
// same table (`flovyn-server --security-matrix`). Thread-safe (constants and pure functions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/auth.h"
#include "flovyn/core/status.h"
#include "flovyn/http/router.h"

namespace flovyn::engine {

enum class Action {
  kTenantsCreate,       // create a tenant
  kTenantsRead,         // see the tenant(s) the caller belongs to
  kTenantsManage,       // change the tenant's settings (retention)
  kWorkflowsRead,       // list and read executions, events, state, counts
  kWorkflowsWrite,      // start, signal, cancel executions
  kTasksRead,           // list and read tasks
  kTasksWrite,          // submit and cancel standalone tasks
  kPromisesSettle,      // resolve or reject promises
  kWorkersRead,         // list registered workers
  kWorkerTokensRead,    // list worker tokens (never the tokens)
  kWorkerTokensManage,  // create and revoke worker tokens
  kWorkerProtocol,      // register, poll, claim, submit commands, complete and fail tasks
  kSchedulesRead,       // list schedules, their next fire times and runs
  kSchedulesManage,     // create, change, pause, resume, trigger, backfill and delete schedules
  kEventhooksRead,      // list event sources, routes and received events
  kEventhooksManage,    // create and change sources (their secrets) and routes; reprocess events
};

// The roles a principal can hold in its tenant. Console roles map onto them: owner and admin are
// admin, member is member. A platform admin (static key with org_id "*") is admin everywhere.
enum class Role { kAdmin, kMember, kWorker, kNone };
Role RoleOf(const Principal& p);
const char* RoleName(Role r);

struct Grant {
  Action action;
  std::string_view name;  // "workflows.write"
  std::string_view description;
  bool admin, member, worker;
};
const std::vector<Grant>& Grants();
std::string_view ActionName(Action a);

// OK, or PERMISSION_DENIED naming the action and the role.
Status Authorize(const Principal& p, Action a);

// The action of each gRPC method ("flovyn.v1.TaskExecution/PollTask"); a method missing here is
// refused for everyone (fail closed), and the roles test walks every method of the protocol.
struct GrpcGrant {
  std::string_view method;
  Action action;
};
const std::vector<GrpcGrant>& GrpcGrants();
// PERMISSION_DENIED for a method without a grant.
StatusOr<Action> ActionOfMethod(std::string_view service, std::string_view method);

// docs/security.md: the role matrix, and each REST route and gRPC method with its action.
std::string SecurityMarkdown(const http::Router& routes);

}  // namespace flovyn::engine
