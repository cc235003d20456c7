// The worker protocol's messages (flovyn.v1) mapped to and from the engine's own values, so the
// store and the command handlers never see protobuf. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/commands.h"
#include "engine/model.h"
#include "flovyn/v1/flovyn.pb.h"

namespace flovyn::engine {

// The trace span of a worker-protocol call: "flovyn.v1/" + the method.
inline std::string SpanName(std::string_view method) { return "flovyn.v1/" + std::string(method); }

// INVALID_ARGUMENT for an empty or unknown command (one with no field of the oneof set).
StatusOr<std::vector<WorkflowCommand>> FromProto(const google::protobuf::RepeatedPtrField<v1::WorkflowCommand>& in);
WorkerRegistration FromProto(const v1::RegisterWorkerRequest& in);
// With the running span's context as the workflow's traceparent.
StartWorkflowRequest FromProto(const v1::StartWorkflowRequest& in);

void ToProto(const Event& e, v1::WorkflowEvent* out);
void ToProto(const WorkflowView& w, v1::WorkflowExecution* out);
void ToProto(const TaskView& t, int64_t lease_expires_at_ms, v1::Task* out);

}  // namespace flovyn::engine
