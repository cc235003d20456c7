#include "engine/grpc_services.h"

#include <spdlog/spdlog.h>

#include "engine/grpc_batches.h"
#include "engine/limits.h"
#include "engine/waiting_calls.h"
#include "engine/wire.h"
#include "flovyn/core/mutex.h"
#include "flovyn/grpc/serial_writer.h"
#include "flovyn/grpc/server.h"

namespace flovyn::engine {

using grpcsvc::ToGrpc;
using Clock = std::chrono::steady_clock;

namespace {

std::string Metadata(::grpc::ServerContextBase* ctx, const char* key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

::grpc::Status RequireWorker(const std::string& worker_id) {
  if (worker_id.empty()) return {::grpc::StatusCode::INVALID_ARGUMENT, "worker_id is required (from RegisterWorker)"};
  return ToGrpc(limits::Name(worker_id, "worker_id"));
}

::grpc::Status RequireQueue(const std::string& queue) { return ToGrpc(limits::Name(queue, "queue")); }

// PollWorkflowRequest and PollTaskRequest: a registered worker, a queue, and kinds.
template <typename PollRequest>
::grpc::Status RequirePoll(const PollRequest& req) {
  if (auto s = RequireWorker(req.worker_id()); !s.ok()) return s;
  if (auto s = RequireQueue(req.queue()); !s.ok()) return s;
  return RequireKinds(req.kinds());
}

void FillWorkflow(const WorkflowClaim& c, v1::PollWorkflowResponse* res) {
  res->set_has_work(true);
  ToProto(c.execution, res->mutable_execution());
  for (const auto& e : c.events) ToProto(e, res->add_events());
  for (const auto& [k, v] : c.state) (*res->mutable_state_json())[k] = v;
  res->set_history_after(c.history_after);
}

}  // namespace

Status TenantSlots::Acquire(const std::string& tenant) {
  MutexLock l(mu_);
  int& n = held_[tenant];
  if (n >= cap_) {
    if (n == 0) held_.erase(tenant);
    return ResourceExhausted("this tenant already holds " + std::to_string(cap_) + " " + what_ + " (the limit, " +
                             setting_ + "); close some or retry later");
  }
  ++n;
  return Status::Ok();
}

void TenantSlots::Release(const std::string& tenant) {
  MutexLock l(mu_);
  auto it = held_.find(tenant);
  if (it != held_.end() && --it->second <= 0) held_.erase(it);
}

StatusOr<std::string> CallContext::Tenant(::grpc::ServerContextBase* ctx, std::string_view service,
                                          std::string_view method) {
  grpcsvc::NoteHandledCall(ctx);
  auto p = auth_.Authenticate(Metadata(ctx, "authorization"), ctx->peer());
  if (!p.ok()) return p.status();
  auto action = ActionOfMethod(service, method);
  if (!action.ok()) return action.status();
  if (Status a = Authorize(*p, *action); !a.ok()) return a;
  return tenancy_.Resolve(*p, Metadata(ctx, "x-flovyn-tenant"));
}

::grpc::ServerUnaryReactor* CallContext::Unary(::grpc::CallbackServerContext* ctx, std::string_view service,
                                               const char* method,
                                               std::function<::grpc::Status(const TenantId& tenant)> fn) {
  return UnaryThen(ctx, service, method,
                   [fn = std::move(fn)](const TenantId& tenant, const Answer& answer) { answer(fn(tenant)); });
}

::grpc::ServerUnaryReactor* CallContext::UnaryThen(::grpc::CallbackServerContext* ctx, std::string_view service,
                                                   const char* method,
                                                   std::function<void(const TenantId&, Answer)> fn) {
  auto* reactor = ctx->DefaultReactor();
  bool queued = handlers_.TrySubmit([this, ctx, reactor, service, method, fn = std::move(fn)] {
    if (ctx->IsCancelled()) return reactor->Finish({::grpc::StatusCode::CANCELLED, "the caller went away"});
    // Ended by the answer, on whichever thread gives it; current on this one meanwhile.
    auto span =
        std::make_shared<trace::Span>(SpanName(method), trace::Kind::kServer, grpcsvc::CallerContext(ctx), false);
    trace::ScopedContext scope(span->context());
    auto tenant = Tenant(ctx, service, method);
    if (!tenant.ok()) return reactor->Finish(ToGrpc(tenant.status()));
    fn(TenantId(*tenant), [reactor, span](::grpc::Status s) {
      span->End();
      reactor->Finish(std::move(s));
    });
  });
  if (!queued) reactor->Finish(Busy(handlers_));
  return reactor;
}

// clang-format off
// NOLINTNEXTLINE(bugprone-macro-parentheses): `body` is a block.
#define FLOVYN_UNARY(body) return calls_.Unary(ctx, kService, __func__, [=, this](const TenantId& tenant) body)
// clang-format on

// ---------------------------------------------------------------- WorkerLifecycle

::grpc::ServerUnaryReactor* WorkerLifecycleService::RegisterWorker(::grpc::CallbackServerContext* ctx,
                                                                   const v1::RegisterWorkerRequest* req,
                                                                   v1::RegisterWorkerResponse* res) {
  FLOVYN_UNARY({
    auto id = store_.RegisterWorker(tenant, FromProto(*req));
    if (!id.ok()) return ToGrpc(id.status());
    res->set_worker_id(*id);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkerLifecycleService::Heartbeat(::grpc::CallbackServerContext* ctx,
                                                              const v1::WorkerHeartbeatRequest* req,
                                                              v1::WorkerHeartbeatResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.WorkerHeartbeat(tenant, WorkerId(req->worker_id()))); });
}

// ---------------------------------------------------------------- WorkflowDispatch

namespace {
// The work a poll selects: its kinds, in order, whatever order the worker sent them in, and for
// a workflow poll its worker (a workflow kept cached by a worker is that worker's for a while).
template <typename Kinds>
std::string PollScope(const Kinds& kinds_in, const std::string& worker = {}) {
  std::vector<std::string> kinds(kinds_in.begin(), kinds_in.end());
  std::sort(kinds.begin(), kinds.end());
  std::string scope = worker.empty() ? "kinds:" : "worker:" + worker + "\x1ekinds:";
  for (const auto& k : kinds) scope += k + '\x1f';
  return scope;
}
}  // namespace

::grpc::ServerUnaryReactor* WorkflowDispatchService::PollWorkflow(::grpc::CallbackServerContext* ctx,
                                                                  const v1::PollWorkflowRequest* req,
                                                                  v1::PollWorkflowResponse* res) {
  PollSpec spec{
      .service = kService,
      .method = __func__,
      .kind = WorkKind::kWorkflow,
      .queue = req->queue(),
      .timeout_ms = req->timeout_ms(),
      .validate = [req] { return RequirePoll(*req); },
      .claim = [this, req, res](const TenantId& tenant) -> StatusOr<Claimed> {
        std::vector<std::string> kinds(req->kinds().begin(), req->kinds().end());
        auto claim = store_.ClaimWorkflow(tenant, WorkerId(req->worker_id()), req->queue(), kinds);
        if (!claim.ok()) return claim.status();
        if (!claim->has_value()) return Claimed::kNothing;
        FillWorkflow(**claim, res);
        return (*claim)->more ? Claimed::kSomeAndMore : Claimed::kSome;  // a claim takes one
      },
      .empty_scope = PollScope(req->kinds(), req->worker_id()),
      .tag = req->worker_id(),
      .release =
          [this, req, res](const TenantId& tenant) {
            Status s =
                store_.ReleaseWorkflowClaim(tenant, WorkerId(req->worker_id()), ExecutionId(res->execution().id()));
            if (!s.ok()) spdlog::debug("release of an unanswered claim: {}", s.message());
            res->Clear();  // whatever reaches the caller now says "no work"
          },
      .handoff = waiting_.options.eager_dispatch ? &waiting_.workflow_handoff : nullptr,
      .worker = req->worker_id(),
      .kinds = {req->kinds().begin(), req->kinds().end()},
      .fill_workflow = [res](const WorkflowClaim& c) { FillWorkflow(c, res); },
  };
  return StartPoll(ctx, calls_, waiting_, std::move(spec));
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::SubmitWorkflowCommands(
    ::grpc::CallbackServerContext* ctx, const v1::SubmitWorkflowCommandsRequest* req,
    v1::SubmitWorkflowCommandsResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto commands = FromProto(req->commands());
    if (!commands.ok()) return ToGrpc(commands.status());
    TakenTasks taken;
    std::optional<TaskTaker> take;
    if (auto s = TaskTakerFor(*req, &taken, &take); !s.ok()) return s;
    auto r = store_.SubmitCommands(tenant, WorkerId(req->worker_id()), ExecutionId(req->execution_id()),
                                   req->expected_sequence(), std::move(*commands), req->keep_cached(), take,
                                   req->fires_timers());
    if (!r.ok()) return ToGrpc(r.status());
    FillSubmitted(store_, tenant, WorkerId(req->worker_id()), ctx->IsCancelled(), *r, taken, res);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::ReportWorkflowProblem(::grpc::CallbackServerContext* ctx,
                                                                           const v1::ReportWorkflowProblemRequest* req,
                                                                           v1::ReportWorkflowProblemResponse*) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    return ToGrpc(store_.ReportProblem(tenant, WorkerId(req->worker_id()), ExecutionId(req->execution_id()),
                                       req->expected_sequence(), req->message()));
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::StartWorkflow(::grpc::CallbackServerContext* ctx,
                                                                   const v1::StartWorkflowRequest* req,
                                                                   v1::StartWorkflowResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.StartWorkflow(tenant, FromProto(*req));
    if (!r.ok()) return ToGrpc(r.status());
    res->set_execution_id(r->execution_id);
    res->set_created(r->created);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::SignalWorkflow(::grpc::CallbackServerContext* ctx,
                                                                    const v1::SignalWorkflowRequest* req,
                                                                    v1::SignalWorkflowResponse*) {
  FLOVYN_UNARY(
      { return ToGrpc(store_.Signal(tenant, ExecutionId(req->execution_id()), req->name(), req->payload_json())); });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::SignalWithStart(::grpc::CallbackServerContext* ctx,
                                                                     const v1::SignalWithStartRequest* req,
                                                                     v1::SignalWithStartResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.SignalWithStart(tenant, FromProto(req->start()), req->signal_name(), req->payload_json());
    if (!r.ok()) return ToGrpc(r.status());
    res->set_execution_id(r->execution_id);
    res->set_created(r->created);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::ResolvePromise(::grpc::CallbackServerContext* ctx,
                                                                    const v1::ResolvePromiseRequest* req,
                                                                    v1::ResolvePromiseResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.ResolvePromise(tenant, PromiseId(req->promise_id()), req->value_json())); });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::RejectPromise(::grpc::CallbackServerContext* ctx,
                                                                   const v1::RejectPromiseRequest* req,
                                                                   v1::RejectPromiseResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.RejectPromise(tenant, PromiseId(req->promise_id()), req->error())); });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::GetEvents(::grpc::CallbackServerContext* ctx,
                                                               const v1::GetEventsRequest* req,
                                                               v1::GetEventsResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.Events(tenant, ExecutionId(req->execution_id()), req->after_sequence());
    if (!r.ok()) return ToGrpc(r.status());
    for (const auto& e : *r) ToProto(e, res->add_events());
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::GetState(::grpc::CallbackServerContext* ctx,
                                                              const v1::GetStateRequest* req,
                                                              v1::GetStateResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.State(tenant, ExecutionId(req->execution_id()));
    if (!r.ok()) return ToGrpc(r.status());
    for (const auto& [k, v] : *r) (*res->mutable_state_json())[k] = v;
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::FireTimer(::grpc::CallbackServerContext* ctx,
                                                               const v1::FireTimerRequest* req,
                                                               v1::FireTimerResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    if (Status s = limits::Name(req->name(), "name"); !s.ok()) return ToGrpc(s);
    TakenTasks taken;
    std::optional<Store::Continuation> continuation;
    if (auto s = ContinuationOf(*req, &taken, &continuation); !s.ok()) return s;
    std::optional<SubmitResult> continued;
    Status s = store_.FireTimer(tenant, WorkerId(req->worker_id()), ExecutionId(req->execution_id()), req->name(),
                                continuation ? &*continuation : nullptr, &continued);
    if (!s.ok()) return ToGrpc(s);
    if (continued) {
      res->set_continued(true);
      FillSubmitted(store_, tenant, WorkerId(req->worker_id()), ctx->IsCancelled(), *continued, taken,
                    res->mutable_submitted());
    }
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::SkipTime(::grpc::CallbackServerContext* ctx,
                                                              const v1::SkipTimeRequest* req,
                                                              v1::SkipTimeResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.SkipTime(tenant, ExecutionId(req->execution_id()));
    if (!r.ok()) return ToGrpc(r.status());
    res->set_timers(r->first);
    res->set_promises(r->second);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerWriteReactor<v1::WorkNotification>* WorkflowDispatchService::SubscribeToNotifications(
    ::grpc::CallbackServerContext* ctx, const v1::SubscribeToNotificationsRequest* req) {
  return StartStream(ctx, calls_, waiting_, kService, req->queue());
}

// ---------------------------------------------------------------- TaskExecution

::grpc::ServerUnaryReactor* TaskExecutionService::PollTask(::grpc::CallbackServerContext* ctx,
                                                           const v1::PollTaskRequest* req, v1::PollTaskResponse* res) {
  PollSpec spec{
      .service = kService,
      .method = __func__,
      .kind = WorkKind::kTask,
      .queue = req->queue(),
      .timeout_ms = req->timeout_ms(),
      .validate =
          [req] {
            if (auto s = RequirePoll(*req); !s.ok()) return s;
            if (req->max_tasks() < 0 || req->max_tasks() > limits::kTasksPerPoll.value) {
              return ToGrpc(limits::Exceeded("max_tasks", limits::kTasksPerPoll));
            }
            return ::grpc::Status::OK;
          },
      .claim = [this, req, res](const TenantId& tenant) -> StatusOr<Claimed> {
        std::vector<std::string> kinds(req->kinds().begin(), req->kinds().end());
        bool more = false;
        auto claims = store_.ClaimTasks(tenant, WorkerId(req->worker_id()), req->queue(), kinds,
                                        std::max(req->max_tasks(), 1), &more);
        if (!claims.ok()) return claims.status();
        if (claims->empty()) return Claimed::kNothing;
        res->set_has_work(true);
        for (size_t i = 0; i < claims->size(); ++i) {
          const TaskClaim& c = (*claims)[i];
          ToProto(c.task, c.lease_expires_at_ms, i == 0 ? res->mutable_task() : res->add_more_tasks());
        }
        return more ? Claimed::kSomeAndMore : Claimed::kSome;
      },
      .empty_scope = PollScope(req->kinds()),
      .release =
          [this, req, res](const TenantId& tenant) {
            std::vector<std::pair<std::string, int>> held{{res->task().id(), res->task().attempt()}};
            for (const auto& t : res->more_tasks()) held.emplace_back(t.id(), t.attempt());
            Status s = store_.ReleaseTaskClaims(tenant, WorkerId(req->worker_id()), held);
            if (!s.ok()) spdlog::debug("release of unanswered task claims: {}", s.message());
            res->Clear();
          },
      .handoff = waiting_.options.eager_dispatch ? &waiting_.handoff : nullptr,
      .worker = req->worker_id(),
      .kinds = {req->kinds().begin(), req->kinds().end()},
      .fill =
          [res](const TaskClaim& c) {
            res->set_has_work(true);
            ToProto(c.task, c.lease_expires_at_ms, res->mutable_task());
          },
  };
  return StartPoll(ctx, calls_, waiting_, std::move(spec));
}

namespace {
// What a CompleteTask call keeps until its group commits.
struct Completion {
  TakenTasks taken;
  std::optional<Store::Continuation> continuation;
  std::optional<WorkflowClaim> next;
  std::optional<SubmitResult> continued;
};
}  // namespace

// Answered once its group commits: the handler's thread does not wait for it.
::grpc::ServerUnaryReactor* TaskExecutionService::CompleteTask(::grpc::CallbackServerContext* ctx,
                                                               const v1::CompleteTaskRequest* req,
                                                               v1::CompleteTaskResponse* res) {
  return calls_.UnaryThen(ctx, kService, __func__, [=, this](const TenantId& tenant, CallContext::Answer answer) {
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return answer(s);
    auto c = std::make_shared<Completion>();
    if (auto s = ContinuationOf(*req, &c->taken, &c->continuation); !s.ok()) return answer(s);
    WorkerId worker(req->worker_id());
    store_.CompleteTaskThen(tenant, worker, TaskId(req->task_id()), req->attempt(), req->output_json(),
                            req->take_workflow() ? &c->next : nullptr, c->continuation ? &*c->continuation : nullptr,
                            &c->continued,
                            [this, ctx, res, tenant, worker, c, answer = std::move(answer)](const Status& s) {
                              if (s.ok() && c->continued) {
                                res->set_continued(true);
                                FillSubmitted(store_, tenant, worker, ctx->IsCancelled(), *c->continued, c->taken,
                                              res->mutable_submitted());
                              }
                              if (s.ok() && c->next) {
                                if (ctx->IsCancelled()) {
                                  // The caller left and will never run it: back to the queue rather than held for a
                                  // lease.
                                  (void)store_.ReleaseWorkflowClaim(tenant, worker, ExecutionId(c->next->execution.id));
                                } else {
                                  FillWorkflow(*c->next, res->mutable_workflow());
                                }
                              }
                              answer(ToGrpc(s));
                            });
  });
}

namespace {
std::vector<Store::TaskResult> ResultsOf(const v1::CompleteTasksRequest& req) {
  std::vector<Store::TaskResult> results;
  results.reserve(static_cast<size_t>(req.results_size()));
  for (const auto& r : req.results()) results.push_back({TaskId(r.task_id()), r.attempt(), r.output_json()});
  return results;
}
}  // namespace

::grpc::ServerUnaryReactor* TaskExecutionService::CompleteTasks(::grpc::CallbackServerContext* ctx,
                                                                const v1::CompleteTasksRequest* req,
                                                                v1::CompleteTasksResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto outcomes = store_.CompleteTasks(tenant, WorkerId(req->worker_id()), ResultsOf(*req));
    if (!outcomes.ok()) return ToGrpc(outcomes.status());
    for (const Status& o : *outcomes) {
      auto* out = res->add_outcomes();
      out->set_code(o.ok() ? 0 : GrpcCodeFor(o.code()));
      out->set_message(o.message());
    }
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::FailTask(::grpc::CallbackServerContext* ctx,
                                                           const v1::FailTaskRequest* req, v1::FailTaskResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto r = store_.FailTask(tenant, WorkerId(req->worker_id()), TaskId(req->task_id()), req->attempt(), req->error(),
                             req->non_retryable());
    if (!r.ok()) return ToGrpc(r.status());
    res->set_will_retry(r->will_retry);
    res->set_next_attempt_at_ms(r->next_attempt_at_ms);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::ReportProgress(::grpc::CallbackServerContext* ctx,
                                                                 const v1::ReportProgressRequest* req,
                                                                 v1::ReportProgressResponse*) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto r = store_.HeartbeatTask(tenant, WorkerId(req->worker_id()), TaskId(req->task_id()), req->attempt(),
                                  req->progress_json());
    return r.ok() ? ::grpc::Status::OK : ToGrpc(r.status());
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::Heartbeat(::grpc::CallbackServerContext* ctx,
                                                            const v1::TaskHeartbeatRequest* req,
                                                            v1::TaskHeartbeatResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto r =
        store_.HeartbeatTask(tenant, WorkerId(req->worker_id()), TaskId(req->task_id()), req->attempt(), std::nullopt);
    if (!r.ok()) return ToGrpc(r.status());
    res->set_lease_expires_at_ms(r->lease_expires_at_ms);
    res->set_cancel_requested(r->cancel_requested);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::CancelTask(::grpc::CallbackServerContext* ctx,
                                                             const v1::CancelTaskRequest* req,
                                                             v1::CancelTaskResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.CancelTask(tenant, TaskId(req->task_id()), req->reason())); });
}

// Answered once its group commits: the handler's thread does not wait for it.
::grpc::ServerUnaryReactor* TaskExecutionService::SubmitTask(::grpc::CallbackServerContext* ctx,
                                                             const v1::SubmitTaskRequest* req,
                                                             v1::SubmitTaskResponse* res) {
  return calls_.UnaryThen(ctx, kService, __func__, [=, this](const TenantId& tenant, CallContext::Answer answer) {
    SubmitTaskRequest s;
    s.kind = req->kind();
    s.queue = req->queue();
    s.input_json = req->input_json();
    s.max_attempts = req->max_attempts();
    s.initial_backoff_ms = req->initial_backoff_ms();
    s.max_backoff_ms = req->max_backoff_ms();
    s.traceparent = trace::CurrentTraceParent();
    store_.SubmitTaskThen(tenant, s, [res, answer = std::move(answer)](StatusOr<TaskId> id) {
      if (id.ok()) res->set_task_id(*id);
      answer(id.ok() ? ::grpc::Status::OK : ToGrpc(id.status()));
    });
  });
}

}  // namespace flovyn::engine
