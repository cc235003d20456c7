#include "engine/grpc_batches.h"

#include "engine/limits.h"
#include "engine/wire.h"
#include "flovyn/grpc/server.h"

namespace flovyn::engine {

using grpcsvc::ToGrpc;

::grpc::Status RequireKinds(const ::google::protobuf::RepeatedPtrField<std::string>& kinds) {
  if (Status s = limits::Items(static_cast<size_t>(kinds.size()), "kinds"); !s.ok()) return ToGrpc(s);
  for (const auto& k : kinds) {
    if (Status s = limits::Name(k, "kinds"); !s.ok()) return ToGrpc(s);
  }
  return ::grpc::Status::OK;
}

// What a command batch's take_tasks asks for, checked against the limits.
::grpc::Status TaskTakerFor(const v1::SubmitWorkflowCommandsRequest& req, TakenTasks* taken,
                            std::optional<TaskTaker>* out) {
  if (req.take_tasks() == 0) return ::grpc::Status::OK;
  if (req.take_tasks() < 0 || req.take_tasks() > limits::kTasksPerPoll.value) {
    return ToGrpc(limits::Exceeded("take_tasks", limits::kTasksPerPoll));
  }
  if (auto s = RequireKinds(req.take_task_kinds()); !s.ok()) return s;
  if (Status s = limits::Name(req.take_task_queue(), "take_task_queue"); !s.ok()) return ToGrpc(s);
  *out = TaskTaker{req.worker_id(),
                   req.take_task_queue(),
                   {req.take_task_kinds().begin(), req.take_task_kinds().end()},
                   req.take_tasks(),
                   taken};
  return ::grpc::Status::OK;
}

// The answer to a command batch: the events it appended and the tasks claimed for its worker.
void FillSubmitted(Store& store, const TenantId& tenant, const WorkerId& worker, bool caller_left,
                   const SubmitResult& r, TakenTasks& taken, v1::SubmitWorkflowCommandsResponse* res) {
  if (caller_left && !taken.claims.empty()) {
    (void)store.ReleaseTaskClaims(tenant, worker, taken.Held());
    taken.claims.clear();
  }
  res->set_last_sequence(r.last_sequence);
  res->set_status(r.status);
  for (const auto& e : r.events) ToProto(e, res->add_events());
  for (const auto& c : taken.claims) ToProto(c.task, c.lease_expires_at_ms, res->add_tasks());
}

namespace {
// A worker's continuation (`c`, sent by `worker_id`), its event stamped `at_ms`.
::grpc::Status ContinuationFrom(const std::string& worker_id, v1::SubmitWorkflowCommandsRequest c, int64_t at_ms,
                                TakenTasks* taken, std::optional<Store::Continuation>* out) {
  c.set_worker_id(worker_id);
  auto commands = FromProto(c.commands());
  if (!commands.ok()) return ToGrpc(commands.status());
  Store::Continuation k;
  k.execution = ExecutionId(c.execution_id());
  k.expected_sequence = c.expected_sequence();
  k.at_ms = at_ms;
  k.commands = std::move(*commands);
  k.keep_cached = c.keep_cached();
  k.fires_timers = c.fires_timers();
  if (auto s = TaskTakerFor(c, taken, &k.take); !s.ok()) return s;
  *out = std::move(k);
  return ::grpc::Status::OK;
}
}  // namespace

// CompleteTaskRequest.continuation, checked as SubmitWorkflowCommands checks its request.
::grpc::Status ContinuationOf(const v1::CompleteTaskRequest& req, TakenTasks* taken,
                              std::optional<Store::Continuation>* out) {
  if (!req.has_continuation()) return ::grpc::Status::OK;
  return ContinuationFrom(req.worker_id(), req.continuation(), req.completed_at_ms(), taken, out);
}

::grpc::Status ContinuationOf(const v1::FireTimerRequest& req, TakenTasks* taken,
                              std::optional<Store::Continuation>* out) {
  if (!req.has_continuation()) return ::grpc::Status::OK;
  if (req.continuation().execution_id() != req.execution_id()) {
    return {::grpc::StatusCode::INVALID_ARGUMENT, "continuation.execution_id must be the timer's execution"};
  }
  return ContinuationFrom(req.worker_id(), req.continuation(), req.fired_at_ms(), taken, out);
}
}  // namespace flovyn::engine
