// Long-polls and notification streams: the calls that wait. Neither holds a thread while it
// waits: admission (authentication, arguments, the tenant's cap) and each claim run on the
// handler pool, and between claims or writes the reactor is parked in the WorkHub. Reactors
// delete themselves when grpc is done with them.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "engine/grpc_services.h"
#include "engine/task_handoff.h"

namespace flovyn::engine {

// What a poll's claim found: nothing, work, or work and more left behind (the next waiting
// poller is woken for it).
enum class Claimed { kNothing, kSome, kSomeAndMore };

struct PollSpec {
  std::string_view service;
  const char* method;
  WorkKind kind;
  std::string queue;
  int64_t timeout_ms;
  std::function<::grpc::Status()> validate;
  // Claims and fills the response.
  std::function<StatusOr<Claimed>(const TenantId& tenant)> claim;
  // Non-empty: what this poller's claim selects (its kinds). A claim that finds nothing is
  // remembered under it (WorkHub::FoundEmpty) so that later polls of the same scope park
  // without claiming until news or the sweep. Empty: every poll claims first.
  std::string empty_scope = {};
  // The poller's tag (its worker's id): news tagged for it (TaggedKey) wakes it first.
  std::string tag = {};
  // The caller went away while the claim ran (a worker stopping cancels its polls): hands the
  // claimed work back instead of leaving it to its lease.
  std::function<void(const TenantId& tenant)> release = {};
  // While parked, offered to whoever makes work for it on this replica (eager dispatch,
  // TaskHandoff) as `worker`, for `kinds` (empty: any); `fill` or `fill_workflow` puts a
  // handed-over claim in the response.
  TaskHandoff* handoff = nullptr;
  std::string worker = {};
  std::vector<std::string> kinds = {};
  std::function<void(const TaskClaim&)> fill = {};
  std::function<void(const WorkflowClaim&)> fill_workflow = {};
};

// One long-poll; it completes when a claim finds work, at its deadline, when the caller goes
// away, or at the drain ("no work" in the last three cases).
::grpc::ServerUnaryReactor* StartPoll(::grpc::CallbackServerContext* ctx, CallContext& calls, Waiting& waiting,
                                      PollSpec spec);
// One notification stream on `queue`: a message per kind of work each time it is notified.
::grpc::ServerWriteReactor<v1::WorkNotification>* StartStream(::grpc::CallbackServerContext* ctx, CallContext& calls,
                                                              Waiting& waiting, std::string_view service,
                                                              std::string queue);
// RESOURCE_EXHAUSTED naming the handler pool's settings.
::grpc::Status Busy(const WorkPool& pool);

}  // namespace flovyn::engine
