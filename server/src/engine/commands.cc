#include "engine/commands.h"

#include "engine/limits.h"
#include "engine/search.h"
#include "engine/sql.h"
#include "engine/values.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/db/row.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

using nlohmann::json;

// ------------------------------------------------------------------------------ validation

namespace {

Status Normalise(std::string& json_text, const char* field) {
  ASSIGN_OR_RETURN(json_text, NormaliseJson(json_text, field));
  return Status::Ok();
}

Status Validate(ScheduleTask& c, const std::string& workflow_queue) {
  RETURN_IF_ERROR(limits::Name(c.kind, "ScheduleTask.kind"));
  if (c.queue.empty()) c.queue = workflow_queue;
  RETURN_IF_ERROR(limits::Name(c.queue, "ScheduleTask.queue"));
  RETURN_IF_ERROR(Normalise(c.input_json, "ScheduleTask.input_json"));
  if (c.max_attempts == 0) c.max_attempts = 3;
  if (c.max_attempts < 1 || c.max_attempts > limits::kMaxAttempts.value) {
    return InvalidArgument("ScheduleTask.max_attempts must be 1 to " + std::to_string(limits::kMaxAttempts.value));
  }
  RETURN_IF_ERROR(limits::Duration(c.initial_backoff_ms, "ScheduleTask.initial_backoff_ms"));
  RETURN_IF_ERROR(limits::Duration(c.max_backoff_ms, "ScheduleTask.max_backoff_ms"));
  RETURN_IF_ERROR(limits::Duration(c.lease_ms, "ScheduleTask.lease_ms"));
  if (c.initial_backoff_ms == 0) c.initial_backoff_ms = 1000;
  if (c.max_backoff_ms == 0) c.max_backoff_ms = 60000;
  if (c.lease_ms == 0) c.lease_ms = 30000;
  return Status::Ok();
}

Status Validate(StartTimer& c, const std::string&) {
  RETURN_IF_ERROR(limits::Name(c.name, "StartTimer.name"));
  return limits::Duration(c.duration_ms, "StartTimer.duration_ms");
}

Status Validate(CancelTimer& c, const std::string&) { return limits::Name(c.name, "CancelTimer.name"); }

Status Validate(CreatePromise& c, const std::string&) {
  RETURN_IF_ERROR(limits::Name(c.name, "CreatePromise.name"));
  return limits::Duration(c.timeout_ms, "CreatePromise.timeout_ms");
}

Status Validate(ScheduleChildWorkflow& c, const std::string& workflow_queue) {
  RETURN_IF_ERROR(limits::Name(c.name, "ScheduleChildWorkflow.name"));
  StartWorkflowRequest child{c.kind, c.queue.empty() ? workflow_queue : c.queue, c.input_json, std::nullopt, ""};
  RETURN_IF_ERROR(ValidateStart(child));
  c.queue = child.queue;
  c.input_json = child.input_json;
  return Status::Ok();
}

Status Validate(SetState& c, const std::string&) {
  RETURN_IF_ERROR(limits::Name(c.key, "SetState.key"));
  return Normalise(c.value_json, "SetState.value_json");
}

Status Validate(ClearState& c, const std::string&) { return limits::Name(c.key, "ClearState.key"); }

Status Validate(RecordOperation& c, const std::string&) {
  RETURN_IF_ERROR(limits::Name(c.name, "RecordOperation.name"));
  return Normalise(c.result_json, "RecordOperation.result_json");
}

Status Validate(CompleteWorkflow& c, const std::string&) {
  return Normalise(c.output_json, "CompleteWorkflow.output_json");
}

Status Validate(FailWorkflow& c, const std::string&) { return limits::Text(c.error, "FailWorkflow.error"); }

Status Validate(Suspend&, const std::string&) { return Status::Ok(); }

Status Validate(SetSearchAttributes& c, const std::string&) {
  RETURN_IF_ERROR(Normalise(c.attributes_json, "SetSearchAttributes.attributes_json"));
  return ValidateSearchAttributes(json::parse(c.attributes_json));
}

Status Validate(ContinueAsNew& c, const std::string&) { return Normalise(c.input_json, "ContinueAsNew.input_json"); }

Status Validate(CancelScheduledTask& c, const std::string&) {
  if (c.scheduled_sequence <= 0) return InvalidArgument("CancelScheduledTask.scheduled_sequence is required");
  return limits::Text(c.reason, "CancelScheduledTask.reason");
}

Status Validate(CancelChildWorkflow& c, const std::string&) {
  RETURN_IF_ERROR(limits::Name(c.name, "CancelChildWorkflow.name"));
  return limits::Text(c.reason, "CancelChildWorkflow.reason");
}

bool Ends(const WorkflowCommand& c) {
  return std::holds_alternative<CompleteWorkflow>(c) || std::holds_alternative<FailWorkflow>(c) ||
         std::holds_alternative<ContinueAsNew>(c);
}

}  // namespace

Status ValidateStart(StartWorkflowRequest& req) {
  RETURN_IF_ERROR(limits::Name(req.kind, "kind"));
  if (req.queue.empty()) req.queue = "default";
  RETURN_IF_ERROR(limits::Name(req.queue, "queue"));
  RETURN_IF_ERROR(Normalise(req.input_json, "input"));
  if (req.idempotency_key) RETURN_IF_ERROR(limits::Name(*req.idempotency_key, "idempotencyKey"));
  return Status::Ok();
}

Status ValidateBatch(std::vector<WorkflowCommand>& batch, const std::string& workflow_queue) {
  if (batch.size() > static_cast<size_t>(limits::kCommandsPerSubmit.value)) {
    return limits::Exceeded("commands", limits::kCommandsPerSubmit);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i > 0 && Ends(batch[i - 1])) {
      return InvalidArgument("no command may follow CompleteWorkflow, FailWorkflow or ContinueAsNew");
    }
    RETURN_IF_ERROR(std::visit([&](auto& c) { return Validate(c, workflow_queue); }, batch[i]));
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------ handlers

Status Handle(Execution& e, BatchOutcome&, const ScheduleTask& c) {
  std::string task_id = NewUuid();
  RETURN_IF_ERROR(e.Append("TASK_SCHEDULED", {{"taskId", task_id},
                                              {"kind", c.kind},
                                              {"queue", c.queue},
                                              {"input", json::parse(c.input_json)},
                                              {"maxAttempts", c.max_attempts}}));
  TaskSpec spec{c.kind, c.queue, c.input_json, c.max_attempts, c.initial_backoff_ms, c.max_backoff_ms, c.lease_ms};
  return e.InsertTask(task_id, spec, e.last_seq, NullIfEmpty(trace::CurrentTraceParent()));
}

Status Handle(Execution& e, BatchOutcome&, const StartTimer& c) {
  ASSIGN_OR_RETURN(auto fire_at_ms, e.InsertTimer(c.name, c.duration_ms));
  if (!fire_at_ms) return InvalidArgument("timer '" + c.name + "' already exists");
  return e.Append("TIMER_STARTED", {{"name", c.name}, {"durationMs", c.duration_ms}, {"fireAtMs", *fire_at_ms}});
}

Status Handle(Execution& e, BatchOutcome&, const CancelTimer& c) {
  ASSIGN_OR_RETURN(bool cancelled, e.CancelTimer(c.name));
  if (cancelled) return e.Append("TIMER_CANCELLED", {{"name", c.name}});
  // It fired while the worker decided (its TIMER_FIRED follows from the buffer): the cancel is
  // recorded and changes nothing, so a race the code decided the other way still goes through.
  ASSIGN_OR_RETURN(bool fired, e.TimerFired(c.name));
  if (!fired) return InvalidArgument("no pending timer named '" + c.name + "'");
  return e.Append("TIMER_CANCELLED", {{"name", c.name}, {"alreadyFired", true}});
}

Status Handle(Execution& e, BatchOutcome&, const CreatePromise& c) {
  std::string promise_id = NewUuid();
  ASSIGN_OR_RETURN(bool created, e.InsertPromise(promise_id, c.name, c.timeout_ms));
  if (!created) return InvalidArgument("promise '" + c.name + "' already exists");
  json p = {{"promiseId", promise_id}, {"name", c.name}};
  if (c.timeout_ms > 0) p["timeoutMs"] = c.timeout_ms;
  return e.Append("PROMISE_CREATED", p);
}

Status Handle(Execution& e, BatchOutcome&, const ScheduleChildWorkflow& c) {
  std::string child_id = NewUuid();
  RETURN_IF_ERROR(e.Append("CHILD_WORKFLOW_SCHEDULED",
                           {{"childId", child_id}, {"name", c.name}, {"kind", c.kind}, {"queue", c.queue}}));
  StartWorkflowRequest child{c.kind, c.queue, c.input_json, std::nullopt, trace::CurrentTraceParent()};
  return InsertExecution(e.unit(), e.tenant_id, child, e.id, c.name, child_id).status();
}

Status Handle(Execution& e, BatchOutcome&, const SetState& c) {
  RETURN_IF_ERROR(e.PutState(c.key, c.value_json));
  return e.Append("STATE_SET", {{"key", c.key}, {"value", json::parse(c.value_json)}});
}

Status Handle(Execution& e, BatchOutcome&, const ClearState& c) {
  RETURN_IF_ERROR(e.DeleteState(c.key));
  return e.Append("STATE_CLEARED", {{"key", c.key}});
}

Status Handle(Execution& e, BatchOutcome&, const RecordOperation& c) {
  return e.Append("OPERATION_COMPLETED", {{"name", c.name}, {"result", json::parse(c.result_json)}});
}

Status Handle(Execution& e, BatchOutcome& out, const ContinueAsNew& c) {
  std::string next = NewUuid();
  RETURN_IF_ERROR(e.Append("WORKFLOW_CONTINUED_AS_NEW", {{"executionId", next}, {"input", json::parse(c.input_json)}}));
  StartWorkflowRequest run{e.kind, e.queue, c.input_json, std::nullopt, trace::CurrentTraceParent(), e.id};
  RETURN_IF_ERROR(InsertExecution(e.unit(), e.tenant_id, run, e.parent_id, e.parent_name, next).status());
  e.parent_id.reset();  // the parent waits for the last run: this one ends without telling it
  out.terminal = std::make_pair(WorkflowStatus::kCompleted, json{{"continuedAsNew", next}});
  return e.Append("WORKFLOW_COMPLETED", {{"output", out.terminal->second}});
}

Status Handle(Execution& e, BatchOutcome& out, const CompleteWorkflow& c) {
  out.terminal = std::make_pair(WorkflowStatus::kCompleted, json::parse(c.output_json));
  return e.Append("WORKFLOW_COMPLETED", {{"output", out.terminal->second}});
}

Status Handle(Execution& e, BatchOutcome& out, const FailWorkflow& c) {
  if (c.cancelled) {
    if (!e.cancel_pending) return InvalidArgument("FailWorkflow.cancelled: no cancellation was requested");
    out.terminal = std::make_pair(WorkflowStatus::kCancelled, json(c.error.empty() ? "cancelled" : c.error));
    return e.Append("WORKFLOW_CANCELLED", {{"error", c.error}});
  }
  out.terminal = std::make_pair(WorkflowStatus::kFailed, json(c.error));
  return e.Append("WORKFLOW_FAILED", {{"error", c.error}});
}

Status Handle(Execution& e, BatchOutcome&, const CancelScheduledTask& c) {
  std::string seq = std::to_string(c.scheduled_sequence);
  ASSIGN_OR_RETURN(auto r, e.unit().Exec(sql::kTaskOfExecutionSeq, {e.id, seq}));
  if (r.rows() == 0) return InvalidArgument("no task scheduled at sequence " + seq);
  db::Row row(r, 0);
  if (IsTerminal(row.Str("status"))) return Status::Ok();  // it ended first: nothing to cancel
  ASSIGN_OR_RETURN(auto cancelled, CancelTaskRow(e.unit(), row.Str("id"), c.scheduled_sequence,
                                                 c.reason.empty() ? "cancelled by its workflow" : c.reason));
  return e.Append("TASK_CANCELLED", cancelled);
}

Status Handle(Execution& e, BatchOutcome&, const CancelChildWorkflow& c) {
  ASSIGN_OR_RETURN(auto r, e.unit().Exec(sql::kChildByName, {e.id, c.name}));
  if (r.rows() == 0) return InvalidArgument("no child workflow named '" + c.name + "'");
  ASSIGN_OR_RETURN(auto child, Execution::Lock(e.unit(), e.tenant_id, db::Row(r, 0).Str("id")));
  if (IsTerminal(child.status) || child.cancel_requested) return Status::Ok();
  json requested = {{"reason", c.reason.empty() ? "cancelled by its parent" : c.reason}};
  // Its CHILD_WORKFLOW_FAILED reaches this execution's buffer, flushed at the end of the batch.
  return CancelExecution(e.unit(), child, requested, std::chrono::milliseconds(0));
}

Status Handle(Execution&, BatchOutcome& out, const Suspend&) {
  out.suspend = true;
  return Status::Ok();
}

Status Handle(Execution& e, BatchOutcome&, const SetSearchAttributes& c) {
  json attributes = json::parse(c.attributes_json);
  RETURN_IF_ERROR(PutSearchAttributes(e.unit(), e.tenant_id, e.id, attributes));
  return e.Append("SEARCH_ATTRIBUTES_SET", {{"attributes", attributes}});
}

}  // namespace flovyn::engine
