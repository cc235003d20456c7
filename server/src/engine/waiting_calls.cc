#include "engine/waiting_calls.h"

#include "engine/limits.h"
#include "engine/wire.h"
#include "flovyn/core/mutex.h"
#include "flovyn/grpc/serial_writer.h"
#include "flovyn/grpc/server.h"

namespace flovyn::engine {

using grpcsvc::ToGrpc;
using Clock = std::chrono::steady_clock;

::grpc::Status Busy(const WorkPool& pool) {
  return {::grpc::StatusCode::RESOURCE_EXHAUSTED, "the server is busy: all " + std::to_string(pool.threads()) +
                                                      " gRPC handler threads are in use and " +
                                                      std::to_string(pool.max_queued()) +
                                                      " calls are queued (GRPC__HANDLER_THREADS, GRPC__HANDLER_QUEUE); "
                                                      "retry with backoff"};
}

namespace {

// Deadline of a long-poll on the hub's clock (`now`): the requested timeout, capped, and never
// past the client's deadline.
Clock::time_point PollDeadline(::grpc::ServerContextBase* ctx, int64_t timeout_ms, std::chrono::milliseconds cap,
                               Clock::time_point now) {
  auto wanted = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms, 0, cap.count()));
  auto deadline = now + wanted;
  auto client = ctx->deadline();
  if (client != std::chrono::system_clock::time_point::max()) {
    auto left = client - std::chrono::system_clock::now() - std::chrono::milliseconds(50);
    deadline = std::min(deadline, now + std::chrono::duration_cast<Clock::duration>(left));
  }
  return deadline;
}

const ::grpc::Status kShuttingDown{::grpc::StatusCode::UNAVAILABLE, "server is shutting down; reconnect"};

// One long-poll. Admission (authentication, arguments, the tenant's cap) and each claim run on
// the handler pool; between claims the reactor is parked in the WorkHub and holds no thread.
// It completes when a claim finds work, at its deadline, when the caller goes away, or at the
// drain ("no work" in the last three cases).
class PollReactor final : public ::grpc::ServerUnaryReactor, public TaskHandoff::Poller {
 public:
  using Spec = PollSpec;

  PollReactor(::grpc::CallbackServerContext* ctx, CallContext& calls, Waiting& waiting, Spec spec)
      : ctx_(ctx),
        calls_(calls),
        waiting_(waiting),
        spec_(std::move(spec)),
        span_(std::string("flovyn.v1/") + spec_.method, trace::Kind::kServer, grpcsvc::CallerContext(ctx), false) {
    if (!calls_.handlers().TrySubmit([this] { Admit(); })) Complete(Busy(calls_.handlers()));
  }

  void OnCancel() override {
    UniqueLock l(mu_);
    cancelled_ = true;
    // When a submitter took this poller (TaskHandoff) the hub's cancel fails: its Deliver or
    // Resume finishes the call.
    if (ticket_ != 0 && waiting_.hub.Cancel(ticket_)) {
      if (spec_.handoff != nullptr) spec_.handoff->Remove(key_, ticket_);
      ticket_ = 0;
      l.Unlock();
      Complete(::grpc::Status::OK);
    }
  }

  // Work claimed for this poller committed (on the committing thread).
  void Deliver(const TaskClaim& claim) override {
    spec_.fill(claim);
    Delivered();
  }
  void Deliver(const WorkflowClaim& claim) override {
    spec_.fill_workflow(claim);
    Delivered();
  }

  void Delivered() {
    {
      MutexLock l(mu_);
      ticket_ = 0;
    }
    if (!ctx_->IsCancelled() || !spec_.release) return Complete(::grpc::Status::OK);
    auto give_back = [this] {  // nobody will read the answer
      spec_.release(tenant_);
      Complete(::grpc::Status::OK);
    };
    if (!calls_.handlers().TrySubmit(give_back)) give_back();
  }

  // The claim for this poller rolled back: poll on.
  void Resume() override { OnWake(WorkHub::Wake::kNews); }

  void OnDone() override {
    if (holding_) {
      waiting_.polls.Release(tenant_);
      if (gauge_ != nullptr) gauge_->Add(-1);
    }
    { MutexLock l(mu_); }  // whoever finished the call has let go of it
    delete this;
  }

 private:
  void Admit() {
    trace::ScopedContext scope(span_.context());
    auto tenant = calls_.Tenant(ctx_, spec_.service, spec_.method);
    if (!tenant.ok()) return Complete(ToGrpc(tenant.status()));
    tenant_ = TenantId(std::move(*tenant));
    if (auto s = spec_.validate(); !s.ok()) return Complete(s);
    if (Status s = waiting_.polls.Acquire(tenant_); !s.ok()) return Complete(ToGrpc(s));
    holding_ = true;
    if (waiting_.metrics != nullptr) {
      gauge_ = waiting_.metrics->long_polls.With({spec_.kind == WorkKind::kWorkflow ? "workflow" : "task"});
      gauge_->Add(1);
    }
    key_ = WorkKey(tenant_, spec_.queue, spec_.kind);
    deadline_ = PollDeadline(ctx_, spec_.timeout_ms, waiting_.options.max_poll, waiting_.hub.Now());
    Attempt();
  }

  // On the handler pool: claim once; park when there is nothing.
  void Attempt() {
    if (waiting_.hub.draining() || ctx_->IsCancelled()) return Complete(::grpc::Status::OK);
    trace::ScopedContext scope(span_.context());
    uint64_t seen = waiting_.hub.Observe(key_);
    bool scoped = !spec_.empty_scope.empty();
    if (!scoped || !waiting_.hub.KnownEmpty(key_, seen, spec_.empty_scope)) {
      auto claimed = spec_.claim(tenant_);
      if (!claimed.ok()) return Complete(ToGrpc(claimed.status()));
      if (*claimed != Claimed::kNothing && ctx_->IsCancelled() && spec_.release) {
        spec_.release(tenant_);  // nobody will read the answer
        return Complete(::grpc::Status::OK);
      }
      if (*claimed == Claimed::kSomeAndMore) waiting_.hub.Notify(key_);  // let the next waiting poller look
      if (*claimed != Claimed::kNothing) return Complete(::grpc::Status::OK);
      if (scoped) waiting_.hub.FoundEmpty(key_, seen, spec_.empty_scope);
    }
    UniqueLock l(mu_);  // a wake-up waits for this to finish
    if (cancelled_) {
      l.Unlock();
      return Complete(::grpc::Status::OK);
    }
    auto parked = waiting_.hub.Park(
        key_, seen, deadline_, [this](WorkHub::Wake why) { OnWake(why); }, spec_.tag);
    if (parked.ticket != 0) {
      ticket_ = parked.ticket;
      // Under mu_: a wake-up (which removes the offer) waits until it is made.
      if (spec_.handoff != nullptr) spec_.handoff->Add(key_, ticket_, spec_.worker, spec_.kinds, this);
      return;  // from here the hub (or a submitter that takes the offer) owns the next step
    }
    l.Unlock();
    OnWake(parked.immediate);
  }

  void OnWake(WorkHub::Wake why) {
    uint64_t ticket = 0;
    {
      MutexLock l(mu_);
      std::swap(ticket, ticket_);
    }
    if (ticket != 0 && spec_.handoff != nullptr) spec_.handoff->Remove(key_, ticket);
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
  TenantId tenant_;
  std::string key_;
  Clock::time_point deadline_;
  bool holding_ = false;
  metrics::Gauge* gauge_ = nullptr;
  std::atomic<bool> finished_{false};
  Mutex mu_;
  bool cancelled_ GUARDED_BY(mu_) = false;
  uint64_t ticket_ GUARDED_BY(mu_) = 0;
};

// One notification stream: a message per kind of work each time the queue is notified. It
// parks on the queue's any-kind key between writes and holds no thread.
class StreamReactor final : public grpcsvc::SerialWriter<v1::WorkNotification> {
 public:
  StreamReactor(::grpc::CallbackServerContext* ctx, CallContext& calls, Waiting& waiting, std::string_view service,
                std::string queue)
      : ctx_(ctx), calls_(calls), waiting_(waiting), service_(service), queue_(std::move(queue)) {
    if (!calls_.handlers().TrySubmit([this] { Admit(); })) {
      RecursiveMutexLock l(mu_);
      FinishLocked(Busy(calls_.handlers()));
    }
  }

  void OnWriteDone(bool ok) override {
    RecursiveMutexLock l(mu_);
    if (WriteDoneLocked(ok)) Step();
  }

  void OnCancel() override {
    RecursiveMutexLock l(mu_);
    cancelled_ = true;
    if (ticket_ != 0 && waiting_.hub.Cancel(ticket_)) {
      ticket_ = 0;
      FinishLocked(::grpc::Status::OK);
    }
  }

  void OnDone() override {
    {
      RecursiveMutexLock l(mu_);  // whoever finished the call has let go of it
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
      grpcsvc::CallSpan span(ctx_, SpanName("SubscribeToNotifications"));
      auto tenant = calls_.Tenant(ctx_, service_, "SubscribeToNotifications");
      RecursiveMutexLock l(mu_);
      if (!tenant.ok()) return FinishLocked(ToGrpc(tenant.status()));
      tenant_ = *tenant;
      if (auto s = ToGrpc(limits::Name(queue_, "queue")); !s.ok()) return FinishLocked(s);
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

  // Writes what changed, or parks until something does.
  void Step() REQUIRES(mu_) {
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
    RecursiveMutexLock l(mu_);
    ticket_ = 0;
    if (why == WorkHub::Wake::kDrain) return FinishLocked(kShuttingDown);
    Step();
  }

  ::grpc::CallbackServerContext* ctx_;
  CallContext& calls_;
  Waiting& waiting_;
  const std::string_view service_;
  const std::string queue_;
  std::string tenant_, wkey_, tkey_, any_;  // set once by Admit, under mu_
  bool holding_ GUARDED_BY(mu_) = false;
  uint64_t seen_w_ GUARDED_BY(mu_) = 0;
  uint64_t seen_t_ GUARDED_BY(mu_) = 0;
  uint64_t ticket_ GUARDED_BY(mu_) = 0;
  std::vector<const char*> kinds_ GUARDED_BY(mu_);
  bool cancelled_ GUARDED_BY(mu_) = false;
};

}  // namespace

::grpc::ServerUnaryReactor* StartPoll(::grpc::CallbackServerContext* ctx, CallContext& calls, Waiting& waiting,
                                      PollSpec spec) {
  return new PollReactor(ctx, calls, waiting, std::move(spec));
}

::grpc::ServerWriteReactor<v1::WorkNotification>* StartStream(::grpc::CallbackServerContext* ctx, CallContext& calls,
                                                              Waiting& waiting, std::string_view service,
                                                              std::string queue) {
  return new StreamReactor(ctx, calls, waiting, service, std::move(queue));
}

}  // namespace flovyn::engine
