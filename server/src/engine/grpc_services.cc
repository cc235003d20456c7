#include "engine/grpc_services.h"

#include "engine/limits.h"
#include "flovyn/grpc/server.h"

namespace flovyn::engine {

using grpcsvc::ToGrpc;
using Clock = std::chrono::steady_clock;

namespace {

std::string Metadata(::grpc::ServerContext* ctx, const char* key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

void ToProto(const Event& e, v1::WorkflowEvent* out) {
  out->set_sequence(e.sequence);
  out->set_type(e.type);
  out->set_payload_json(e.payload_json);
  out->set_created_at_ms(e.created_at_ms);
}

void ToProto(const WorkflowView& w, v1::WorkflowExecution* out) {
  out->set_id(w.id);
  out->set_kind(w.kind);
  out->set_queue(w.queue);
  out->set_input_json(w.input_json);
  out->set_status(w.status);
  out->set_parent_id(w.parent_id.value_or(""));
  out->set_traceparent(w.traceparent);
}

// Deadline of a long-poll: the requested timeout, capped, and never past the client's deadline.
Clock::time_point PollDeadline(::grpc::ServerContext* ctx, int64_t timeout_ms, std::chrono::milliseconds cap) {
  auto wanted = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms, 0, cap.count()));
  auto deadline = Clock::now() + wanted;
  auto client = ctx->deadline();
  if (client != std::chrono::system_clock::time_point::max()) {
    auto left = client - std::chrono::system_clock::now() - std::chrono::milliseconds(50);
    deadline = std::min(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(left));
  }
  return deadline;
}

constexpr auto kCancelCheck = std::chrono::milliseconds(250);

::grpc::Status RequireWorker(const std::string& worker_id) {
  if (worker_id.empty()) return {::grpc::StatusCode::INVALID_ARGUMENT, "worker_id is required (from RegisterWorker)"};
  return ToGrpc(limits::Name(worker_id, "worker_id"));
}

::grpc::Status RequireQueue(const std::string& queue) { return ToGrpc(limits::Name(queue, "queue")); }

::grpc::Status RequireKinds(const ::google::protobuf::RepeatedPtrField<std::string>& kinds) {
  if (Status s = limits::Items(static_cast<size_t>(kinds.size()), "kinds"); !s.ok()) return ToGrpc(s);
  for (const auto& k : kinds) {
    if (Status s = limits::Name(k, "kinds"); !s.ok()) return ToGrpc(s);
  }
  return ::grpc::Status::OK;
}

// Claims repeatedly until work arrives, the deadline passes, the client goes away or the
// server drains; between attempts it waits for a wake-up token (or the sweep interval).
template <typename Claim>
auto LongPoll(::grpc::ServerContext* ctx, WorkHub& hub, const std::string& key, Clock::time_point deadline,
              std::chrono::milliseconds sweep, Claim claim) -> decltype(claim()) {
  for (;;) {
    if (hub.draining()) return decltype(claim())(std::nullopt);
    auto r = claim();
    if (!r.ok()) return r;
    if (r->has_value()) {
      hub.Notify(key);  // there may be more: let the next waiting poller look
      return r;
    }
    // Wait for a wake-up, checking every so often whether the caller went away.
    auto until = std::min(deadline, Clock::now() + sweep);
    while (Clock::now() < until) {
      if (ctx->IsCancelled() || hub.draining()) return r;
      if (hub.Take(key, std::min(until, Clock::now() + kCancelCheck))) break;
    }
    if (Clock::now() >= deadline || ctx->IsCancelled()) return r;
  }
}

}  // namespace

StatusOr<std::string> CallContext::Tenant(::grpc::ServerContext* ctx, std::string_view service,
                                          std::string_view method) {
  auto p = auth_.Authenticate(Metadata(ctx, "authorization"), ctx->peer());
  if (!p.ok()) return p.status();
  auto action = ActionOfMethod(service, method);
  if (!action.ok()) return action.status();
  if (Status a = Authorize(*p, *action); !a.ok()) return a;
  return tenancy_.Resolve(*p, Metadata(ctx, "x-flovyn-tenant"));
}

// Authenticates and authorises the call by its service and method name (policy.cc) and resolves
// its tenant into `var`.
#define FLOVYN_TENANT(var)                   \
  grpcsvc::CallSpan call_span_(ctx, __func__); \
  auto var##_or = calls_.Tenant(ctx, kService, __func__); \
  if (!var##_or.ok()) return ToGrpc(var##_or.status()); \
  const std::string& var = *var##_or

// ---------------------------------------------------------------- WorkerLifecycle

::grpc::Status WorkerLifecycleService::RegisterWorker(::grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* req,
                                                      v1::RegisterWorkerResponse* res) {
  FLOVYN_TENANT(tenant);
  auto id = store_.RegisterWorker(tenant, *req);
  if (!id.ok()) return ToGrpc(id.status());
  res->set_worker_id(*id);
  return ::grpc::Status::OK;
}

::grpc::Status WorkerLifecycleService::Heartbeat(::grpc::ServerContext* ctx, const v1::WorkerHeartbeatRequest* req,
                                                 v1::WorkerHeartbeatResponse*) {
  FLOVYN_TENANT(tenant);
  return ToGrpc(store_.WorkerHeartbeat(tenant, req->worker_id()));
}

// ---------------------------------------------------------------- WorkflowDispatch

::grpc::Status WorkflowDispatchService::PollWorkflow(::grpc::ServerContext* ctx, const v1::PollWorkflowRequest* req,
                                                     v1::PollWorkflowResponse* res) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  if (auto s = RequireQueue(req->queue()); !s.ok()) return s;
  if (auto s = RequireKinds(req->kinds()); !s.ok()) return s;
  std::vector<std::string> kinds(req->kinds().begin(), req->kinds().end());
  GaugeHold active(metrics_ ? metrics_->long_polls.With({"workflow"}) : nullptr);
  auto claim = LongPoll(ctx, hub_, WorkKey(tenant, req->queue(), WorkKind::kWorkflow),
                        PollDeadline(ctx, req->timeout_ms(), options_.max_poll), options_.sweep_interval,
                        [&] { return store_.ClaimWorkflow(tenant, req->worker_id(), req->queue(), kinds); });
  if (!claim.ok()) return ToGrpc(claim.status());
  if (!claim->has_value()) {
    res->set_has_work(false);
    return ::grpc::Status::OK;
  }
  const WorkflowClaim& c = **claim;
  res->set_has_work(true);
  ToProto(c.execution, res->mutable_execution());
  for (const auto& e : c.events) ToProto(e, res->add_events());
  for (const auto& [k, v] : c.state) (*res->mutable_state_json())[k] = v;
  return ::grpc::Status::OK;
}

::grpc::Status WorkflowDispatchService::SubmitWorkflowCommands(::grpc::ServerContext* ctx,
                                                               const v1::SubmitWorkflowCommandsRequest* req,
                                                               v1::SubmitWorkflowCommandsResponse* res) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  std::vector<v1::WorkflowCommand> commands(req->commands().begin(), req->commands().end());
  auto r = store_.SubmitCommands(tenant, req->worker_id(), req->execution_id(), req->expected_sequence(), commands);
  if (!r.ok()) return ToGrpc(r.status());
  res->set_last_sequence(r->last_sequence);
  res->set_status(r->status);
  for (const auto& e : r->events) ToProto(e, res->add_events());
  return ::grpc::Status::OK;
}

static StartWorkflowRequest FromProto(const v1::StartWorkflowRequest& r) {
  StartWorkflowRequest s;
  s.kind = r.kind();
  s.queue = r.queue();
  s.input_json = r.input_json();
  if (!r.idempotency_key().empty()) s.idempotency_key = r.idempotency_key();
  s.traceparent = trace::Current() ? trace::Current()->TraceParent() : "";  // the call's span
  return s;
}

::grpc::Status WorkflowDispatchService::StartWorkflow(::grpc::ServerContext* ctx, const v1::StartWorkflowRequest* req,
                                                      v1::StartWorkflowResponse* res) {
  FLOVYN_TENANT(tenant);
  auto r = store_.StartWorkflow(tenant, FromProto(*req));
  if (!r.ok()) return ToGrpc(r.status());
  res->set_execution_id(r->execution_id);
  res->set_created(r->created);
  return ::grpc::Status::OK;
}

::grpc::Status WorkflowDispatchService::SignalWorkflow(::grpc::ServerContext* ctx, const v1::SignalWorkflowRequest* req,
                                                       v1::SignalWorkflowResponse*) {
  FLOVYN_TENANT(tenant);
  return ToGrpc(store_.Signal(tenant, req->execution_id(), req->name(), req->payload_json()));
}

::grpc::Status WorkflowDispatchService::SignalWithStart(::grpc::ServerContext* ctx,
                                                        const v1::SignalWithStartRequest* req,
                                                        v1::SignalWithStartResponse* res) {
  FLOVYN_TENANT(tenant);
  auto r = store_.SignalWithStart(tenant, FromProto(req->start()), req->signal_name(), req->payload_json());
  if (!r.ok()) return ToGrpc(r.status());
  res->set_execution_id(r->execution_id);
  res->set_created(r->created);
  return ::grpc::Status::OK;
}

::grpc::Status WorkflowDispatchService::ResolvePromise(::grpc::ServerContext* ctx, const v1::ResolvePromiseRequest* req,
                                                       v1::ResolvePromiseResponse*) {
  FLOVYN_TENANT(tenant);
  return ToGrpc(store_.ResolvePromise(tenant, req->promise_id(), req->value_json()));
}

::grpc::Status WorkflowDispatchService::RejectPromise(::grpc::ServerContext* ctx, const v1::RejectPromiseRequest* req,
                                                      v1::RejectPromiseResponse*) {
  FLOVYN_TENANT(tenant);
  return ToGrpc(store_.RejectPromise(tenant, req->promise_id(), req->error()));
}

::grpc::Status WorkflowDispatchService::GetEvents(::grpc::ServerContext* ctx, const v1::GetEventsRequest* req,
                                                  v1::GetEventsResponse* res) {
  FLOVYN_TENANT(tenant);
  auto r = store_.Events(tenant, req->execution_id(), req->after_sequence());
  if (!r.ok()) return ToGrpc(r.status());
  for (const auto& e : *r) ToProto(e, res->add_events());
  return ::grpc::Status::OK;
}

::grpc::Status WorkflowDispatchService::GetState(::grpc::ServerContext* ctx, const v1::GetStateRequest* req,
                                                 v1::GetStateResponse* res) {
  FLOVYN_TENANT(tenant);
  auto r = store_.State(tenant, req->execution_id());
  if (!r.ok()) return ToGrpc(r.status());
  for (const auto& [k, v] : *r) (*res->mutable_state_json())[k] = v;
  return ::grpc::Status::OK;
}

::grpc::Status WorkflowDispatchService::SubscribeToNotifications(::grpc::ServerContext* ctx,
                                                                 const v1::SubscribeToNotificationsRequest* req,
                                                                 ::grpc::ServerWriter<v1::WorkNotification>* writer) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireQueue(req->queue()); !s.ok()) return s;
  std::string wkey = WorkKey(tenant, req->queue(), WorkKind::kWorkflow);
  std::string tkey = WorkKey(tenant, req->queue(), WorkKind::kTask);
  std::string any = AnyKindKey(tenant, req->queue());
  GaugeHold active(metrics_ ? &metrics_->streams : nullptr);
  uint64_t w = hub_.Version(wkey), t = hub_.Version(tkey);
  for (;;) {
    uint64_t seen = hub_.Version(any);
    if (hub_.draining()) return {::grpc::StatusCode::UNAVAILABLE, "server is shutting down; reconnect"};
    if (ctx->IsCancelled()) return ::grpc::Status::OK;
    uint64_t nw = hub_.Version(wkey), nt = hub_.Version(tkey);
    for (auto [changed, kind] : {std::pair{nw != w, "workflow"}, std::pair{nt != t, "task"}}) {
      if (!changed) continue;
      v1::WorkNotification n;
      n.set_queue(req->queue());
      n.set_kind(kind);
      if (!writer->Write(n)) return ::grpc::Status::OK;
    }
    w = nw;
    t = nt;
    hub_.Wait(any, seen, Clock::now() + kCancelCheck);
  }
}

// ---------------------------------------------------------------- TaskExecution

::grpc::Status TaskExecutionService::PollTask(::grpc::ServerContext* ctx, const v1::PollTaskRequest* req,
                                              v1::PollTaskResponse* res) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  if (auto s = RequireQueue(req->queue()); !s.ok()) return s;
  if (auto s = RequireKinds(req->kinds()); !s.ok()) return s;
  std::vector<std::string> kinds(req->kinds().begin(), req->kinds().end());
  GaugeHold active(metrics_ ? metrics_->long_polls.With({"task"}) : nullptr);
  auto claim = LongPoll(ctx, hub_, WorkKey(tenant, req->queue(), WorkKind::kTask),
                        PollDeadline(ctx, req->timeout_ms(), options_.max_poll), options_.sweep_interval,
                        [&] { return store_.ClaimTask(tenant, req->worker_id(), req->queue(), kinds); });
  if (!claim.ok()) return ToGrpc(claim.status());
  if (!claim->has_value()) {
    res->set_has_work(false);
    return ::grpc::Status::OK;
  }
  const TaskClaim& c = **claim;
  res->set_has_work(true);
  auto* t = res->mutable_task();
  t->set_id(c.task.id);
  t->set_kind(c.task.kind);
  t->set_queue(c.task.queue);
  t->set_input_json(c.task.input_json);
  t->set_attempt(c.task.attempt);
  t->set_max_attempts(c.task.max_attempts);
  t->set_workflow_id(c.task.workflow_id.value_or(""));
  t->set_workflow_sequence(c.task.workflow_sequence.value_or(0));
  t->set_lease_expires_at_ms(c.lease_expires_at_ms);
  t->set_traceparent(c.task.traceparent);
  return ::grpc::Status::OK;
}

::grpc::Status TaskExecutionService::CompleteTask(::grpc::ServerContext* ctx, const v1::CompleteTaskRequest* req,
                                                  v1::CompleteTaskResponse*) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  return ToGrpc(store_.CompleteTask(tenant, req->worker_id(), req->task_id(), req->attempt(), req->output_json()));
}

::grpc::Status TaskExecutionService::FailTask(::grpc::ServerContext* ctx, const v1::FailTaskRequest* req,
                                              v1::FailTaskResponse* res) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  auto r = store_.FailTask(tenant, req->worker_id(), req->task_id(), req->attempt(), req->error(), req->non_retryable());
  if (!r.ok()) return ToGrpc(r.status());
  res->set_will_retry(r->will_retry);
  res->set_next_attempt_at_ms(r->next_attempt_at_ms);
  return ::grpc::Status::OK;
}

::grpc::Status TaskExecutionService::ReportProgress(::grpc::ServerContext* ctx, const v1::ReportProgressRequest* req,
                                                    v1::ReportProgressResponse* res) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  auto r = store_.HeartbeatTask(tenant, req->worker_id(), req->task_id(), req->attempt(), req->progress_json());
  if (!r.ok()) return ToGrpc(r.status());
  (void)res;
  return ::grpc::Status::OK;
}

::grpc::Status TaskExecutionService::Heartbeat(::grpc::ServerContext* ctx, const v1::TaskHeartbeatRequest* req,
                                               v1::TaskHeartbeatResponse* res) {
  FLOVYN_TENANT(tenant);
  if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
  auto r = store_.HeartbeatTask(tenant, req->worker_id(), req->task_id(), req->attempt(), std::nullopt);
  if (!r.ok()) return ToGrpc(r.status());
  res->set_lease_expires_at_ms(*r);
  return ::grpc::Status::OK;
}

::grpc::Status TaskExecutionService::CancelTask(::grpc::ServerContext* ctx, const v1::CancelTaskRequest* req,
                                                v1::CancelTaskResponse*) {
  FLOVYN_TENANT(tenant);
  return ToGrpc(store_.CancelTask(tenant, req->task_id(), req->reason()));
}

::grpc::Status TaskExecutionService::SubmitTask(::grpc::ServerContext* ctx, const v1::SubmitTaskRequest* req,
                                                v1::SubmitTaskResponse* res) {
  FLOVYN_TENANT(tenant);
  SubmitTaskRequest s;
  s.kind = req->kind();
  s.queue = req->queue();
  s.input_json = req->input_json();
  s.max_attempts = req->max_attempts();
  s.initial_backoff_ms = req->initial_backoff_ms();
  s.max_backoff_ms = req->max_backoff_ms();
  s.traceparent = trace::Current() ? trace::Current()->TraceParent() : "";
  auto id = store_.SubmitTask(tenant, s);
  if (!id.ok()) return ToGrpc(id.status());
  res->set_task_id(*id);
  return ::grpc::Status::OK;
}

}  // namespace flovyn::engine
