// The worker protocol's command batches as gRPC carries them: a batch's take_tasks and the
// tasks it claims, its answer, and a task result's continuation (CompleteTaskRequest), each
// checked against the limits before the store sees it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "engine/store.h"
#include "engine/task_handoff.h"
#include "flovyn/v1/flovyn.pb.h"

namespace flovyn::engine {

// Each of `kinds` a name within the limits, and not too many.
::grpc::Status RequireKinds(const ::google::protobuf::RepeatedPtrField<std::string>& kinds);

// The tasks a command batch claimed for the worker that submitted it (take_tasks), collected at
// its commit, before the call returns.
class TakenTasks final : public TaskHandoff::Poller {
 public:
  void Deliver(const TaskClaim& claim) override { claims.push_back(claim); }
  void Deliver(const WorkflowClaim&) override {}
  void Resume() override {}
  std::vector<std::pair<std::string, int>> Held() const {  // (task id, attempt)
    std::vector<std::pair<std::string, int>> out;
    for (const auto& c : claims) out.emplace_back(c.task.id, c.task.attempt);
    return out;
  }
  std::vector<TaskClaim> claims;
};

// What a command batch's take_tasks asks for, checked against the limits.
::grpc::Status TaskTakerFor(const v1::SubmitWorkflowCommandsRequest& req, TakenTasks* taken,
                            std::optional<TaskTaker>* out);

// The answer to a command batch: the events it appended and the tasks claimed for its worker.
// When the caller left (`caller_left`), it will never run those tasks: they go back to their
// queues rather than wait for their leases, and are not in the answer.
void FillSubmitted(Store& store, const TenantId& tenant, const WorkerId& worker, bool caller_left,
                   const SubmitResult& r, TakenTasks& taken, v1::SubmitWorkflowCommandsResponse* res);

// CompleteTaskRequest.continuation, checked as SubmitWorkflowCommands checks its request; `out`
// stays empty when there is none.
::grpc::Status ContinuationOf(const v1::CompleteTaskRequest& req, TakenTasks* taken,
                              std::optional<Store::Continuation>* out);
// The same for FireTimerRequest.continuation (whose execution must be the request's).
::grpc::Status ContinuationOf(const v1::FireTimerRequest& req, TakenTasks* taken,
                              std::optional<Store::Continuation>* out);

}  // namespace flovyn::engine
