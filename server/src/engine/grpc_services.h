// The worker protocol over gRPC (flovyn.v1): WorkerLifecycle, WorkflowDispatch, TaskExecution.
// Long-polls wait on the WorkHub and return "no work" at once when the server drains.
// Synchronous grpc++ services; each call runs on a gRPC thread.
#pragma once

#include <chrono>

#include "engine/auth.h"
#include "engine/engine_metrics.h"
#include "engine/policy.h"
#include "engine/store.h"
#include "engine/tenancy.h"
#include "engine/work_hub.h"
#include "flovyn/v1/flovyn.grpc.pb.h"

namespace flovyn::engine {

struct DispatchOptions {
  std::chrono::milliseconds max_poll{60000};
  std::chrono::milliseconds sweep_interval{1000};  // re-check even without a notification
};

// Shared by the three services: authentication and tenant resolution per call.
class CallContext {
 public:
  CallContext(AuthChain& auth, Tenancy& tenancy) : auth_(auth), tenancy_(tenancy) {}
  // Authenticates, authorises the method's action (policy.h) and resolves the tenant.
  StatusOr<std::string> Tenant(::grpc::ServerContext* ctx, std::string_view service, std::string_view method);

 private:
  AuthChain& auth_;
  Tenancy& tenancy_;
};

class WorkerLifecycleService final : public v1::WorkerLifecycle::Service {
 public:
  static constexpr std::string_view kService = "flovyn.v1.WorkerLifecycle";
  WorkerLifecycleService(Store& store, CallContext& calls) : store_(store), calls_(calls) {}
  ::grpc::Status RegisterWorker(::grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                                v1::RegisterWorkerResponse*) override;
  ::grpc::Status Heartbeat(::grpc::ServerContext*, const v1::WorkerHeartbeatRequest*,
                           v1::WorkerHeartbeatResponse*) override;

 private:
  Store& store_;
  CallContext& calls_;
};

class WorkflowDispatchService final : public v1::WorkflowDispatch::Service {
 public:
  static constexpr std::string_view kService = "flovyn.v1.WorkflowDispatch";
  WorkflowDispatchService(Store& store, CallContext& calls, WorkHub& hub, DispatchOptions o, EngineMetrics* m)
      : store_(store), calls_(calls), hub_(hub), options_(o), metrics_(m) {}
  ::grpc::Status PollWorkflow(::grpc::ServerContext*, const v1::PollWorkflowRequest*,
                              v1::PollWorkflowResponse*) override;
  ::grpc::Status SubmitWorkflowCommands(::grpc::ServerContext*, const v1::SubmitWorkflowCommandsRequest*,
                                        v1::SubmitWorkflowCommandsResponse*) override;
  ::grpc::Status StartWorkflow(::grpc::ServerContext*, const v1::StartWorkflowRequest*,
                               v1::StartWorkflowResponse*) override;
  ::grpc::Status SignalWorkflow(::grpc::ServerContext*, const v1::SignalWorkflowRequest*,
                                v1::SignalWorkflowResponse*) override;
  ::grpc::Status SignalWithStart(::grpc::ServerContext*, const v1::SignalWithStartRequest*,
                                 v1::SignalWithStartResponse*) override;
  ::grpc::Status ResolvePromise(::grpc::ServerContext*, const v1::ResolvePromiseRequest*,
                                v1::ResolvePromiseResponse*) override;
  ::grpc::Status RejectPromise(::grpc::ServerContext*, const v1::RejectPromiseRequest*,
                               v1::RejectPromiseResponse*) override;
  ::grpc::Status GetEvents(::grpc::ServerContext*, const v1::GetEventsRequest*, v1::GetEventsResponse*) override;
  ::grpc::Status GetState(::grpc::ServerContext*, const v1::GetStateRequest*, v1::GetStateResponse*) override;
  ::grpc::Status SubscribeToNotifications(::grpc::ServerContext*, const v1::SubscribeToNotificationsRequest*,
                                          ::grpc::ServerWriter<v1::WorkNotification>*) override;

 private:
  Store& store_;
  CallContext& calls_;
  WorkHub& hub_;
  DispatchOptions options_;
  EngineMetrics* metrics_;
};

class TaskExecutionService final : public v1::TaskExecution::Service {
 public:
  static constexpr std::string_view kService = "flovyn.v1.TaskExecution";
  TaskExecutionService(Store& store, CallContext& calls, WorkHub& hub, DispatchOptions o, EngineMetrics* m)
      : store_(store), calls_(calls), hub_(hub), options_(o), metrics_(m) {}
  ::grpc::Status PollTask(::grpc::ServerContext*, const v1::PollTaskRequest*, v1::PollTaskResponse*) override;
  ::grpc::Status CompleteTask(::grpc::ServerContext*, const v1::CompleteTaskRequest*, v1::CompleteTaskResponse*) override;
  ::grpc::Status FailTask(::grpc::ServerContext*, const v1::FailTaskRequest*, v1::FailTaskResponse*) override;
  ::grpc::Status ReportProgress(::grpc::ServerContext*, const v1::ReportProgressRequest*,
                                v1::ReportProgressResponse*) override;
  ::grpc::Status Heartbeat(::grpc::ServerContext*, const v1::TaskHeartbeatRequest*, v1::TaskHeartbeatResponse*) override;
  ::grpc::Status CancelTask(::grpc::ServerContext*, const v1::CancelTaskRequest*, v1::CancelTaskResponse*) override;
  ::grpc::Status SubmitTask(::grpc::ServerContext*, const v1::SubmitTaskRequest*, v1::SubmitTaskResponse*) override;

 private:
  Store& store_;
  CallContext& calls_;
  WorkHub& hub_;
  DispatchOptions options_;
  EngineMetrics* metrics_;
};

}  // namespace flovyn::engine
