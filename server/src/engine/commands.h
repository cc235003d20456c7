// The commands a workflow's worker submits, as the engine's own values (the gRPC layer maps the
// protobuf messages onto these), their validation and one handler per command. A batch is
// validated whole before any handler runs, and handlers run inside one transaction, so a batch
// is applied entirely or not at all. Pure values; handlers use the unit of their execution.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/execution.h"

namespace flovyn::engine {

struct ScheduleTask {
  std::string kind, queue;  // queue empty: the workflow's own
  std::string input_json;
  int max_attempts = 0;                                              // 0: the default (3)
  int64_t initial_backoff_ms = 0, max_backoff_ms = 0, lease_ms = 0;  // 0: the defaults
};
struct StartTimer {
  std::string name;
  int64_t duration_ms = 0;
};
struct CancelTimer {
  std::string name;
};
struct CreatePromise {
  std::string name;
  int64_t timeout_ms = 0;  // 0: none
};
struct ScheduleChildWorkflow {
  std::string name, kind, queue, input_json;  // queue empty: the parent's
};
struct SetState {
  std::string key, value_json;
};
struct ClearState {
  std::string key;
};
struct RecordOperation {
  std::string name, result_json;
};
struct CompleteWorkflow {
  std::string output_json;
};
struct FailWorkflow {
  std::string error;
  bool cancelled = false;  // the code stopped on a cancellation request: the execution ends CANCELLED
};
struct Suspend {};
struct SetSearchAttributes {
  std::string attributes_json;  // an object; null values remove keys
};
struct ContinueAsNew {
  std::string input_json;
};
struct CancelScheduledTask {
  int64_t scheduled_sequence = 0;
  std::string reason;
};
struct CancelChildWorkflow {
  std::string name;
  std::string reason;
};

using WorkflowCommand = std::variant<ScheduleTask, StartTimer, CancelTimer, CreatePromise, ScheduleChildWorkflow,
                                     SetState, ClearState, RecordOperation, CompleteWorkflow, FailWorkflow, Suspend,
                                     SetSearchAttributes, ContinueAsNew, CancelScheduledTask, CancelChildWorkflow>;

// Checks every command of the batch against the limits and normalises it in place (JSON
// documents, default queues and retry settings); the first failure names the command's field.
// Nothing may follow CompleteWorkflow, FailWorkflow or ContinueAsNew.
Status ValidateBatch(std::vector<WorkflowCommand>& batch, const std::string& workflow_queue);

// What the batch decided about the execution after its commands.
struct BatchOutcome {
  bool suspend = false;
  std::optional<std::pair<WorkflowStatus, nlohmann::json>> terminal;  // how it ended, output or error
};

// One handler per command, each over the locked execution; a command that conflicts with what
// the execution has (a timer or promise name in use, no such timer) is INVALID_ARGUMENT.
Status Handle(Execution& e, BatchOutcome& out, const ScheduleTask& c);
Status Handle(Execution& e, BatchOutcome& out, const StartTimer& c);
Status Handle(Execution& e, BatchOutcome& out, const CancelTimer& c);
Status Handle(Execution& e, BatchOutcome& out, const CreatePromise& c);
Status Handle(Execution& e, BatchOutcome& out, const ScheduleChildWorkflow& c);
Status Handle(Execution& e, BatchOutcome& out, const SetState& c);
Status Handle(Execution& e, BatchOutcome& out, const ClearState& c);
Status Handle(Execution& e, BatchOutcome& out, const RecordOperation& c);
Status Handle(Execution& e, BatchOutcome& out, const CompleteWorkflow& c);
Status Handle(Execution& e, BatchOutcome& out, const FailWorkflow& c);
Status Handle(Execution& e, BatchOutcome& out, const Suspend& c);
Status Handle(Execution& e, BatchOutcome& out, const SetSearchAttributes& c);
Status Handle(Execution& e, BatchOutcome& out, const ContinueAsNew& c);
Status Handle(Execution& e, BatchOutcome& out, const CancelScheduledTask& c);
Status Handle(Execution& e, BatchOutcome& out, const CancelChildWorkflow& c);

// Validation shared with the REST API's starts.
Status ValidateStart(StartWorkflowRequest& req);

}  // namespace flovyn::engine
