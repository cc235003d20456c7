#include "engine/grpc_services.h"

#include "engine/limits.h"
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
Clock::time_point PollDeadline(::grpc::ServerContextBase* ctx, int64_t timeout_ms, std::chrono::milliseconds cap) {
  auto wanted = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms, 0, cap.count()));
  auto deadline = Clock::now() + wanted;
  auto client = ctx->deadline();
  if (client != std::chrono::system_clock::time_point::max()) {
    auto left = client - std::chrono::system_clock::now() - std::chrono::milliseconds(50);
    deadline = std::min(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(left));
  }
  return deadline;
}

::grpc::Status Busy(const WorkPool& pool) {
  return {::grpc::StatusCode::RESOURCE_EXHAUSTED,
          "the server is busy: all " + std::to_string(pool.threads()) + " gRPC handler threads are in use and " +
              std::to_string(pool.max_queued()) + " calls are queued (GRPC__HANDLER_THREADS, GRPC__HANDLER_QUEUE); "
              "retry with backoff"};
}

const ::grpc::Status kShuttingDown{::grpc::StatusCode::UNAVAILABLE, "server is shutting down; reconnect"};

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

// PollWorkflowRequest and PollTaskRequest: a registered worker, a queue, and kinds.
template <typename PollRequest>
::grpc::Status RequirePoll(const PollRequest& req) {
  if (auto s = RequireWorker(req.worker_id()); !s.ok()) return s;
  if (auto s = RequireQueue(req.queue()); !s.ok()) return s;
  return RequireKinds(req.kinds());
}

// One long-poll. Admission (authentication, arguments, the tenant's cap) and each claim run on
// the handler pool; between claims the reactor is parked in the WorkHub and holds no thread.
// It completes when a claim finds work, at its deadline, when the caller goes away, or at the
// drain ("no work" in the last three cases).
class PollReactor final : public ::grpc::ServerUnaryReactor {
 public:
  struct Spec {
    std::string_view service;
    const char* method;
    WorkKind kind;
    std::string queue;
    int64_t timeout_ms;
    std::function<::grpc::Status()> validate;
    // Claims and fills the response; true when work was claimed.
    std::function<StatusOr<bool>(const std::string& tenant)> claim;
  };

  PollReactor(::grpc::CallbackServerContext* ctx, CallContext& calls, Waiting& waiting, Spec spec)
      : ctx_(ctx), calls_(calls), waiting_(waiting), spec_(std::move(spec)),
        span_(std::string("flovyn.v1/") + spec_.method, trace::Kind::kServer, grpcsvc::CallerContext(ctx), false) {
    if (!calls_.handlers().TrySubmit([this] { Admit(); })) Complete(Busy(calls_.handlers()));
  }

  void OnCancel() override {
    std::unique_lock<std::mutex> l(mu_);
    cancelled_ = true;
    if (ticket_ != 0 && waiting_.hub.Cancel(ticket_)) {
      ticket_ = 0;
      l.unlock();
      Complete(::grpc::Status::OK);
    }
  }

  void OnDone() override {
    if (holding_) {
      waiting_.polls.Release(tenant_);
      if (gauge_ != nullptr) gauge_->Add(-1);
    }
    { std::lock_guard<std::mutex> l(mu_); }  // whoever finished the call has let go of it
    delete this;
  }

 private:
  void Admit() {
    trace::ScopedContext scope(span_.context());
    auto tenant = calls_.Tenant(ctx_, spec_.service, spec_.method);
    if (!tenant.ok()) return Complete(ToGrpc(tenant.status()));
    tenant_ = *tenant;
    if (auto s = spec_.validate(); !s.ok()) return Complete(s);
    if (Status s = waiting_.polls.Acquire(tenant_); !s.ok()) return Complete(ToGrpc(s));
    holding_ = true;
    if (waiting_.metrics != nullptr) {
      gauge_ = waiting_.metrics->long_polls.With({spec_.kind == WorkKind::kWorkflow ? "workflow" : "task"});
      gauge_->Add(1);
    }
    key_ = WorkKey(tenant_, spec_.queue, spec_.kind);
    deadline_ = PollDeadline(ctx_, spec_.timeout_ms, waiting_.options.max_poll);
    Attempt();
  }

  // On the handler pool: claim once; park when there is nothing.
  void Attempt() {
    if (waiting_.hub.draining() || ctx_->IsCancelled()) return Complete(::grpc::Status::OK);
    trace::ScopedContext scope(span_.context());
    uint64_t seen = waiting_.hub.Observe(key_);
    auto claimed = spec_.claim(tenant_);
    if (!claimed.ok()) return Complete(ToGrpc(claimed.status()));
    if (*claimed) {
      waiting_.hub.Notify(key_);  // there may be more: let the next waiting poller look
      return Complete(::grpc::Status::OK);
    }
    std::unique_lock<std::mutex> l(mu_);  // a wake-up waits for this to finish
    if (cancelled_) {
      l.unlock();
      return Complete(::grpc::Status::OK);
    }
    auto parked = waiting_.hub.Park(key_, seen, deadline_, [this](WorkHub::Wake why) { OnWake(why); });
    if (parked.ticket != 0) {
      ticket_ = parked.ticket;
      return;  // from here the hub owns the next step
    }
    l.unlock();
    OnWake(parked.immediate);
  }

  void OnWake(WorkHub::Wake why) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ticket_ = 0;
    }
    if (why == WorkHub::Wake::kDeadline || why == WorkHub::Wake::kDrain) return Complete(::grpc::Status::OK);
    // Busy: answer "no work" now rather than queue; the worker polls again.
    if (!calls_.handlers().TrySubmit([this] { Attempt(); })) Complete(::grpc::Status::OK);
  }

  void Complete(const ::grpc::Status& s) {
    if (!finished_.exchange(true)) Finish(s);
  }

  ::grpc::CallbackServerContext* ctx_;
  CallContext& calls_;
  Waiting& waiting_;
  const Spec spec_;
  trace::Span span_;
  std::string tenant_, key_;
  Clock::time_point deadline_;
  bool holding_ = false;
  metrics::Gauge* gauge_ = nullptr;
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  bool cancelled_ = false;  // guarded by mu_
  uint64_t ticket_ = 0;     // guarded by mu_
};

// One notification stream: a message per kind of work each time the queue is notified. It
// parks on the queue's any-kind key between writes and holds no thread.
class StreamReactor final : public grpcsvc::SerialWriter<v1::WorkNotification> {
 public:
  StreamReactor(::grpc::CallbackServerContext* ctx, CallContext& calls, Waiting& waiting, std::string_view service,
                std::string queue)
      : ctx_(ctx), calls_(calls), waiting_(waiting), service_(service), queue_(std::move(queue)) {
    if (!calls_.handlers().TrySubmit([this] { Admit(); })) {
      std::lock_guard<std::recursive_mutex> l(mu_);
      FinishLocked(Busy(calls_.handlers()));
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> l(mu_);
    if (WriteDoneLocked(ok)) Step();
  }

  void OnCancel() override {
    std::lock_guard<std::recursive_mutex> l(mu_);
    cancelled_ = true;
    if (ticket_ != 0 && waiting_.hub.Cancel(ticket_)) {
      ticket_ = 0;
      FinishLocked(::grpc::Status::OK);
    }
  }

  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> l(mu_);  // whoever finished the call has let go of it
      if (holding_) {
        waiting_.streams.Release(tenant_);
        if (waiting_.metrics != nullptr) waiting_.metrics->streams.Add(-1);
      }
    }
    delete this;
  }

 private:
  void Admit() {
    {
      grpcsvc::CallSpan span(ctx_, "SubscribeToNotifications");
      auto tenant = calls_.Tenant(ctx_, service_, "SubscribeToNotifications");
      std::lock_guard<std::recursive_mutex> l(mu_);
      if (!tenant.ok()) return FinishLocked(ToGrpc(tenant.status()));
      tenant_ = *tenant;
      if (auto s = RequireQueue(queue_); !s.ok()) return FinishLocked(s);
      if (Status s = waiting_.streams.Acquire(tenant_); !s.ok()) return FinishLocked(ToGrpc(s));
      holding_ = true;
      if (waiting_.metrics != nullptr) waiting_.metrics->streams.Add(1);
      wkey_ = WorkKey(tenant_, queue_, WorkKind::kWorkflow);
      tkey_ = WorkKey(tenant_, queue_, WorkKind::kTask);
      any_ = AnyKindKey(tenant_, queue_);
      seen_w_ = waiting_.hub.Observe(wkey_);
      seen_t_ = waiting_.hub.Observe(tkey_);
      Step();
    }
  }

  // Writes what changed, or parks until something does. Requires mu_.
  void Step() {
    for (;;) {
      if (finished() || writing()) return;
      if (cancelled_ || ctx_->IsCancelled()) return FinishLocked(::grpc::Status::OK);
      uint64_t seen = waiting_.hub.Observe(any_);
      uint64_t w = waiting_.hub.Observe(wkey_), t = waiting_.hub.Observe(tkey_);
      if (w != seen_w_) kinds_.push_back("workflow");
      if (t != seen_t_) kinds_.push_back("task");
      seen_w_ = w;
      seen_t_ = t;
      if (!kinds_.empty()) {
        v1::WorkNotification n;
        n.set_queue(queue_);
        n.set_kind(kinds_.front());
        kinds_.erase(kinds_.begin());
        WriteLocked(std::move(n));
        return;  // OnWriteDone continues
      }
      auto parked = waiting_.hub.Park(any_, seen, Clock::time_point::max(), [this](WorkHub::Wake why) { OnWake(why); });
      if (parked.ticket != 0) {
        ticket_ = parked.ticket;
        return;
      }
      if (parked.immediate == WorkHub::Wake::kDrain) return FinishLocked(kShuttingDown);
    }
  }

  void OnWake(WorkHub::Wake why) {
    std::lock_guard<std::recursive_mutex> l(mu_);
    ticket_ = 0;
    if (why == WorkHub::Wake::kDrain) return FinishLocked(kShuttingDown);
    Step();
  }

  ::grpc::CallbackServerContext* ctx_;
  CallContext& calls_;
  Waiting& waiting_;
  const std::string_view service_;
  const std::string queue_;
  std::string tenant_, wkey_, tkey_, any_;               // set once by Admit, under mu_
  bool holding_ = false;                                 // guarded by mu_
  uint64_t seen_w_ = 0, seen_t_ = 0, ticket_ = 0;        // guarded by mu_
  std::vector<const char*> kinds_;                       // guarded by mu_
  bool cancelled_ = false;                               // guarded by mu_
};

}  // namespace

Status TenantSlots::Acquire(const std::string& tenant) {
  std::lock_guard<std::mutex> l(mu_);
  int& n = held_[tenant];
  if (n >= cap_) {
    if (n == 0) held_.erase(tenant);
    return ResourceExhausted("this tenant already holds " + std::to_string(cap_) + " " + what_ +
                             " (the limit, " + setting_ + "); close some or retry later");
  }
  ++n;
  return Status::Ok();
}

void TenantSlots::Release(const std::string& tenant) {
  std::lock_guard<std::mutex> l(mu_);
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
                                               std::function<::grpc::Status(const std::string& tenant)> fn) {
  auto* reactor = ctx->DefaultReactor();
  bool queued = handlers_.TrySubmit([this, ctx, reactor, service, method, fn = std::move(fn)] {
    if (ctx->IsCancelled()) return reactor->Finish({::grpc::StatusCode::CANCELLED, "the caller went away"});
    grpcsvc::CallSpan span(ctx, method);
    auto tenant = Tenant(ctx, service, method);
    reactor->Finish(tenant.ok() ? fn(*tenant) : ToGrpc(tenant.status()));
  });
  if (!queued) reactor->Finish(Busy(handlers_));
  return reactor;
}

#define FLOVYN_UNARY(body) return calls_.Unary(ctx, kService, __func__, [=, this](const std::string& tenant) body)

// ---------------------------------------------------------------- WorkerLifecycle

::grpc::ServerUnaryReactor* WorkerLifecycleService::RegisterWorker(::grpc::CallbackServerContext* ctx,
                                                                   const v1::RegisterWorkerRequest* req,
                                                                   v1::RegisterWorkerResponse* res) {
  FLOVYN_UNARY({
    auto id = store_.RegisterWorker(tenant, *req);
    if (!id.ok()) return ToGrpc(id.status());
    res->set_worker_id(*id);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkerLifecycleService::Heartbeat(::grpc::CallbackServerContext* ctx,
                                                              const v1::WorkerHeartbeatRequest* req,
                                                              v1::WorkerHeartbeatResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.WorkerHeartbeat(tenant, req->worker_id())); });
}

// ---------------------------------------------------------------- WorkflowDispatch

::grpc::ServerUnaryReactor* WorkflowDispatchService::PollWorkflow(::grpc::CallbackServerContext* ctx,
                                                                  const v1::PollWorkflowRequest* req,
                                                                  v1::PollWorkflowResponse* res) {
  PollReactor::Spec spec{
      .service = kService,
      .method = __func__,
      .kind = WorkKind::kWorkflow,
      .queue = req->queue(),
      .timeout_ms = req->timeout_ms(),
      .validate = [req] { return RequirePoll(*req); },
      .claim = [this, req, res](const std::string& tenant) -> StatusOr<bool> {
        std::vector<std::string> kinds(req->kinds().begin(), req->kinds().end());
        auto claim = store_.ClaimWorkflow(tenant, req->worker_id(), req->queue(), kinds);
        if (!claim.ok()) return claim.status();
        if (!claim->has_value()) return false;
        const WorkflowClaim& c = **claim;
        res->set_has_work(true);
        ToProto(c.execution, res->mutable_execution());
        for (const auto& e : c.events) ToProto(e, res->add_events());
        for (const auto& [k, v] : c.state) (*res->mutable_state_json())[k] = v;
        return true;
      },
  };
  return new PollReactor(ctx, calls_, waiting_, std::move(spec));
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::SubmitWorkflowCommands(
    ::grpc::CallbackServerContext* ctx, const v1::SubmitWorkflowCommandsRequest* req,
    v1::SubmitWorkflowCommandsResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    std::vector<v1::WorkflowCommand> commands(req->commands().begin(), req->commands().end());
    auto r = store_.SubmitCommands(tenant, req->worker_id(), req->execution_id(), req->expected_sequence(), commands);
    if (!r.ok()) return ToGrpc(r.status());
    res->set_last_sequence(r->last_sequence);
    res->set_status(r->status);
    for (const auto& e : r->events) ToProto(e, res->add_events());
    return ::grpc::Status::OK;
  });
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
  FLOVYN_UNARY({ return ToGrpc(store_.Signal(tenant, req->execution_id(), req->name(), req->payload_json())); });
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
  FLOVYN_UNARY({ return ToGrpc(store_.ResolvePromise(tenant, req->promise_id(), req->value_json())); });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::RejectPromise(::grpc::CallbackServerContext* ctx,
                                                                   const v1::RejectPromiseRequest* req,
                                                                   v1::RejectPromiseResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.RejectPromise(tenant, req->promise_id(), req->error())); });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::GetEvents(::grpc::CallbackServerContext* ctx,
                                                               const v1::GetEventsRequest* req,
                                                               v1::GetEventsResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.Events(tenant, req->execution_id(), req->after_sequence());
    if (!r.ok()) return ToGrpc(r.status());
    for (const auto& e : *r) ToProto(e, res->add_events());
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* WorkflowDispatchService::GetState(::grpc::CallbackServerContext* ctx,
                                                              const v1::GetStateRequest* req,
                                                              v1::GetStateResponse* res) {
  FLOVYN_UNARY({
    auto r = store_.State(tenant, req->execution_id());
    if (!r.ok()) return ToGrpc(r.status());
    for (const auto& [k, v] : *r) (*res->mutable_state_json())[k] = v;
    return ::grpc::Status::OK;
  });
}

::grpc::ServerWriteReactor<v1::WorkNotification>* WorkflowDispatchService::SubscribeToNotifications(
    ::grpc::CallbackServerContext* ctx, const v1::SubscribeToNotificationsRequest* req) {
  return new StreamReactor(ctx, calls_, waiting_, kService, req->queue());
}

// ---------------------------------------------------------------- TaskExecution

::grpc::ServerUnaryReactor* TaskExecutionService::PollTask(::grpc::CallbackServerContext* ctx,
                                                          const v1::PollTaskRequest* req, v1::PollTaskResponse* res) {
  PollReactor::Spec spec{
      .service = kService,
      .method = __func__,
      .kind = WorkKind::kTask,
      .queue = req->queue(),
      .timeout_ms = req->timeout_ms(),
      .validate = [req] { return RequirePoll(*req); },
      .claim = [this, req, res](const std::string& tenant) -> StatusOr<bool> {
        std::vector<std::string> kinds(req->kinds().begin(), req->kinds().end());
        auto claim = store_.ClaimTask(tenant, req->worker_id(), req->queue(), kinds);
        if (!claim.ok()) return claim.status();
        if (!claim->has_value()) return false;
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
        return true;
      },
  };
  return new PollReactor(ctx, calls_, waiting_, std::move(spec));
}

::grpc::ServerUnaryReactor* TaskExecutionService::CompleteTask(::grpc::CallbackServerContext* ctx,
                                                              const v1::CompleteTaskRequest* req,
                                                              v1::CompleteTaskResponse*) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    return ToGrpc(store_.CompleteTask(tenant, req->worker_id(), req->task_id(), req->attempt(), req->output_json()));
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::FailTask(::grpc::CallbackServerContext* ctx,
                                                          const v1::FailTaskRequest* req, v1::FailTaskResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto r = store_.FailTask(tenant, req->worker_id(), req->task_id(), req->attempt(), req->error(),
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
    auto r = store_.HeartbeatTask(tenant, req->worker_id(), req->task_id(), req->attempt(), req->progress_json());
    return r.ok() ? ::grpc::Status::OK : ToGrpc(r.status());
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::Heartbeat(::grpc::CallbackServerContext* ctx,
                                                           const v1::TaskHeartbeatRequest* req,
                                                           v1::TaskHeartbeatResponse* res) {
  FLOVYN_UNARY({
    if (auto s = RequireWorker(req->worker_id()); !s.ok()) return s;
    auto r = store_.HeartbeatTask(tenant, req->worker_id(), req->task_id(), req->attempt(), std::nullopt);
    if (!r.ok()) return ToGrpc(r.status());
    res->set_lease_expires_at_ms(*r);
    return ::grpc::Status::OK;
  });
}

::grpc::ServerUnaryReactor* TaskExecutionService::CancelTask(::grpc::CallbackServerContext* ctx,
                                                            const v1::CancelTaskRequest* req,
                                                            v1::CancelTaskResponse*) {
  FLOVYN_UNARY({ return ToGrpc(store_.CancelTask(tenant, req->task_id(), req->reason())); });
}

::grpc::ServerUnaryReactor* TaskExecutionService::SubmitTask(::grpc::CallbackServerContext* ctx,
                                                            const v1::SubmitTaskRequest* req,
                                                            v1::SubmitTaskResponse* res) {
  FLOVYN_UNARY({
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
  });
}

}  // namespace flovyn::engine
