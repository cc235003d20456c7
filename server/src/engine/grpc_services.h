// The worker protocol over gRPC (flovyn.v1): WorkerLifecycle, WorkflowDispatch, TaskExecution,
// on grpc++'s callback API. No call holds a thread while it waits: unary calls run on a bounded
// handler pool (full: RESOURCE_EXHAUSTED), a long-poll is a reactor parked in the WorkHub between
// claims, and a notification stream is a reactor the hub wakes with news. Long-polls and streams
// are capped per tenant; the server's drain releases every one of them at once.
#pragma once

#include <chrono>
#include <map>
#include <mutex>

#include "engine/auth.h"
#include "engine/engine_metrics.h"
#include "engine/policy.h"
#include "engine/store.h"
#include "engine/tenancy.h"
#include "engine/work_hub.h"
#include "flovyn/core/mutex.h"
#include "flovyn/core/work_pool.h"
#include "flovyn/v1/flovyn.grpc.pb.h"

namespace flovyn::engine {

struct DispatchOptions {
  std::chrono::milliseconds max_poll{60000};
  std::chrono::milliseconds sweep_interval{1000};  // re-check even without a notification
  int max_polls_per_tenant = 10000;                // waiting long-polls of one tenant at once
  int max_streams_per_tenant = 10000;              // notification streams of one tenant at once
  bool eager_dispatch = true;                      // work made while a poller for it waits here goes to it at once
};

// Counts what each tenant holds open (long-polls or streams) against a cap. Entries exist only
// while a tenant holds something, so the map is bounded by the holders. Thread-safe.
class TenantSlots {
 public:
  TenantSlots(int cap, std::string what, std::string setting)
      : cap_(cap), what_(std::move(what)), setting_(std::move(setting)) {}
  // RESOURCE_EXHAUSTED naming the limit and its setting when the tenant is at the cap.
  Status Acquire(const std::string& tenant);
  void Release(const std::string& tenant);

 private:
  const int cap_;
  const std::string what_, setting_;
  mutable Mutex mu_;
  std::map<std::string, int> held_ GUARDED_BY(mu_);
};

// Shared by the three services: the handler pool, and authentication and tenant resolution.
class CallContext {
 public:
  CallContext(AuthChain& auth, Tenancy& tenancy, WorkPool& handlers)
      : auth_(auth), tenancy_(tenancy), handlers_(handlers) {}
  // Authenticates, authorises the method's action (policy.h) and resolves the tenant. Blocks
  // (it may ask the console): call it on the handler pool.
  StatusOr<std::string> Tenant(::grpc::ServerContextBase* ctx, std::string_view service, std::string_view method);
  // Answers a unary call from the handler pool: the call's span, then `fn(tenant)` once the
  // caller is authenticated and authorised.
  ::grpc::ServerUnaryReactor* Unary(::grpc::CallbackServerContext* ctx, std::string_view service, const char* method,
                                    std::function<::grpc::Status(const TenantId& tenant)> fn);
  // As Unary, for a call answered later: `fn(tenant, answer)` must call `answer` once, from any
  // thread (a group commit's, once its transaction is over); the call's span lasts until then.
  using Answer = std::function<void(::grpc::Status)>;
  ::grpc::ServerUnaryReactor* UnaryThen(::grpc::CallbackServerContext* ctx, std::string_view service,
                                        const char* method, std::function<void(const TenantId&, Answer)> fn);
  WorkPool& handlers() { return handlers_; }

 private:
  AuthChain& auth_;
  Tenancy& tenancy_;
  WorkPool& handlers_;
};

class WorkerLifecycleService final : public v1::WorkerLifecycle::CallbackService {
 public:
  static constexpr std::string_view kService = "flovyn.v1.WorkerLifecycle";
  WorkerLifecycleService(Store& store, CallContext& calls) : store_(store), calls_(calls) {}
  ::grpc::ServerUnaryReactor* RegisterWorker(::grpc::CallbackServerContext*, const v1::RegisterWorkerRequest*,
                                             v1::RegisterWorkerResponse*) override;
  ::grpc::ServerUnaryReactor* Heartbeat(::grpc::CallbackServerContext*, const v1::WorkerHeartbeatRequest*,
                                        v1::WorkerHeartbeatResponse*) override;

 private:
  Store& store_;
  CallContext& calls_;
};

// What the long-polls and streams of both dispatch services share.
struct Waiting {
  WorkHub& hub;
  DispatchOptions options;
  EngineMetrics* metrics;
  TenantSlots polls;
  TenantSlots streams;
  TaskHandoff handoff;           // parked task polls, offered to submitters when eager dispatch is on
  TaskHandoff workflow_handoff;  // parked workflow polls, offered to what makes a workflow runnable
  Waiting(WorkHub& h, DispatchOptions o, EngineMetrics* m)
      : hub(h),
        options(o),
        metrics(m),
        polls(o.max_polls_per_tenant, "long-polls", "ENGINE__MAX_POLLS_PER_TENANT"),
        streams(o.max_streams_per_tenant, "notification streams", "ENGINE__MAX_STREAMS_PER_TENANT"),
        handoff(h),
        workflow_handoff(h) {}
};

class WorkflowDispatchService final : public v1::WorkflowDispatch::CallbackService {
 public:
  static constexpr std::string_view kService = "flovyn.v1.WorkflowDispatch";
  WorkflowDispatchService(Store& store, CallContext& calls, Waiting& waiting)
      : store_(store), calls_(calls), waiting_(waiting) {}
  ::grpc::ServerUnaryReactor* PollWorkflow(::grpc::CallbackServerContext*, const v1::PollWorkflowRequest*,
                                           v1::PollWorkflowResponse*) override;
  ::grpc::ServerUnaryReactor* SubmitWorkflowCommands(::grpc::CallbackServerContext*,
                                                     const v1::SubmitWorkflowCommandsRequest*,
                                                     v1::SubmitWorkflowCommandsResponse*) override;
  ::grpc::ServerUnaryReactor* ReportWorkflowProblem(::grpc::CallbackServerContext*,
                                                    const v1::ReportWorkflowProblemRequest*,
                                                    v1::ReportWorkflowProblemResponse*) override;
  ::grpc::ServerUnaryReactor* StartWorkflow(::grpc::CallbackServerContext*, const v1::StartWorkflowRequest*,
                                            v1::StartWorkflowResponse*) override;
  ::grpc::ServerUnaryReactor* SignalWorkflow(::grpc::CallbackServerContext*, const v1::SignalWorkflowRequest*,
                                             v1::SignalWorkflowResponse*) override;
  ::grpc::ServerUnaryReactor* SignalWithStart(::grpc::CallbackServerContext*, const v1::SignalWithStartRequest*,
                                              v1::SignalWithStartResponse*) override;
  ::grpc::ServerUnaryReactor* ResolvePromise(::grpc::CallbackServerContext*, const v1::ResolvePromiseRequest*,
                                             v1::ResolvePromiseResponse*) override;
  ::grpc::ServerUnaryReactor* RejectPromise(::grpc::CallbackServerContext*, const v1::RejectPromiseRequest*,
                                            v1::RejectPromiseResponse*) override;
  ::grpc::ServerUnaryReactor* GetEvents(::grpc::CallbackServerContext*, const v1::GetEventsRequest*,
                                        v1::GetEventsResponse*) override;
  ::grpc::ServerUnaryReactor* GetState(::grpc::CallbackServerContext*, const v1::GetStateRequest*,
                                       v1::GetStateResponse*) override;
  ::grpc::ServerUnaryReactor* FireTimer(::grpc::CallbackServerContext*, const v1::FireTimerRequest*,
                                        v1::FireTimerResponse*) override;
  ::grpc::ServerUnaryReactor* SkipTime(::grpc::CallbackServerContext*, const v1::SkipTimeRequest*,
                                       v1::SkipTimeResponse*) override;
  ::grpc::ServerWriteReactor<v1::WorkNotification>* SubscribeToNotifications(
      ::grpc::CallbackServerContext*, const v1::SubscribeToNotificationsRequest*) override;

 private:
  Store& store_;
  CallContext& calls_;
  Waiting& waiting_;
};

class TaskExecutionService final : public v1::TaskExecution::CallbackService {
 public:
  static constexpr std::string_view kService = "flovyn.v1.TaskExecution";
  TaskExecutionService(Store& store, CallContext& calls, Waiting& waiting)
      : store_(store), calls_(calls), waiting_(waiting) {}
  ::grpc::ServerUnaryReactor* PollTask(::grpc::CallbackServerContext*, const v1::PollTaskRequest*,
                                       v1::PollTaskResponse*) override;
  ::grpc::ServerUnaryReactor* CompleteTask(::grpc::CallbackServerContext*, const v1::CompleteTaskRequest*,
                                           v1::CompleteTaskResponse*) override;
  ::grpc::ServerUnaryReactor* CompleteTasks(::grpc::CallbackServerContext*, const v1::CompleteTasksRequest*,
                                            v1::CompleteTasksResponse*) override;
  ::grpc::ServerUnaryReactor* FailTask(::grpc::CallbackServerContext*, const v1::FailTaskRequest*,
                                       v1::FailTaskResponse*) override;
  ::grpc::ServerUnaryReactor* ReportProgress(::grpc::CallbackServerContext*, const v1::ReportProgressRequest*,
                                             v1::ReportProgressResponse*) override;
  ::grpc::ServerUnaryReactor* Heartbeat(::grpc::CallbackServerContext*, const v1::TaskHeartbeatRequest*,
                                        v1::TaskHeartbeatResponse*) override;
  ::grpc::ServerUnaryReactor* CancelTask(::grpc::CallbackServerContext*, const v1::CancelTaskRequest*,
                                         v1::CancelTaskResponse*) override;
  ::grpc::ServerUnaryReactor* SubmitTask(::grpc::CallbackServerContext*, const v1::SubmitTaskRequest*,
                                         v1::SubmitTaskResponse*) override;

 private:
  Store& store_;
  CallContext& calls_;
  Waiting& waiting_;
};

}  // namespace flovyn::engine
