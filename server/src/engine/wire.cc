#include "engine/wire.h"

#include "flovyn/trace/trace.h"

namespace flovyn::engine {

namespace {

WorkflowCommand FromProto(const v1::ScheduleTask& c) {
  return ScheduleTask{c.kind(),           c.queue(),   c.input_json(), c.max_attempts(), c.initial_backoff_ms(),
                      c.max_backoff_ms(), c.lease_ms()};
}

std::optional<WorkflowCommand> FromProto(const v1::WorkflowCommand& cmd) {
  using C = v1::WorkflowCommand;
  switch (cmd.command_case()) {
    case C::kScheduleTask:
      return FromProto(cmd.schedule_task());
    case C::kStartTimer:
      return StartTimer{cmd.start_timer().name(), cmd.start_timer().duration_ms()};
    case C::kCancelTimer:
      return CancelTimer{cmd.cancel_timer().name()};
    case C::kCreatePromise:
      return CreatePromise{cmd.create_promise().name(), cmd.create_promise().timeout_ms()};
    case C::kScheduleChildWorkflow: {
      const auto& c = cmd.schedule_child_workflow();
      return ScheduleChildWorkflow{c.name(), c.kind(), c.queue(), c.input_json()};
    }
    case C::kSetState:
      return SetState{cmd.set_state().key(), cmd.set_state().value_json()};
    case C::kClearState:
      return ClearState{cmd.clear_state().key()};
    case C::kRecordOperation:
      return RecordOperation{cmd.record_operation().name(), cmd.record_operation().result_json()};
    case C::kCompleteWorkflow:
      return CompleteWorkflow{cmd.complete_workflow().output_json()};
    case C::kFailWorkflow:
      return FailWorkflow{cmd.fail_workflow().error(), cmd.fail_workflow().cancelled()};
    case C::kSuspend:
      return Suspend{};
    case C::kSetSearchAttributes:
      return SetSearchAttributes{cmd.set_search_attributes().attributes_json()};
    case C::kContinueAsNew:
      return ContinueAsNew{cmd.continue_as_new().input_json()};
    case C::kCancelScheduledTask:
      return CancelScheduledTask{cmd.cancel_scheduled_task().scheduled_sequence(),
                                 cmd.cancel_scheduled_task().reason()};
    case C::kCancelChildWorkflow:
      return CancelChildWorkflow{cmd.cancel_child_workflow().name(), cmd.cancel_child_workflow().reason()};
    case C::COMMAND_NOT_SET:
      break;
  }
  return std::nullopt;
}

template <typename Items>
std::vector<std::string> Strings(const Items& items) {
  return {items.begin(), items.end()};
}

}  // namespace

StatusOr<std::vector<WorkflowCommand>> FromProto(const google::protobuf::RepeatedPtrField<v1::WorkflowCommand>& in) {
  std::vector<WorkflowCommand> out;
  out.reserve(static_cast<size_t>(in.size()));
  for (const auto& cmd : in) {
    auto c = FromProto(cmd);
    if (!c) return InvalidArgument("empty or unknown workflow command");
    out.push_back(std::move(*c));
  }
  return out;
}

WorkerRegistration FromProto(const v1::RegisterWorkerRequest& in) {
  return {in.name(), in.version(), Strings(in.queues()), Strings(in.workflow_kinds()), Strings(in.task_kinds())};
}

StartWorkflowRequest FromProto(const v1::StartWorkflowRequest& r) {
  StartWorkflowRequest s;
  s.kind = r.kind();
  s.queue = r.queue();
  s.input_json = r.input_json();
  if (!r.idempotency_key().empty()) s.idempotency_key = r.idempotency_key();
  s.traceparent = trace::CurrentTraceParent();  // the call's span
  return s;
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

void ToProto(const TaskView& task, int64_t lease_expires_at_ms, v1::Task* t) {
  t->set_id(task.id);
  t->set_kind(task.kind);
  t->set_queue(task.queue);
  t->set_input_json(task.input_json);
  t->set_attempt(task.attempt);
  t->set_max_attempts(task.max_attempts);
  t->set_workflow_id(task.workflow_id.value_or(""));
  t->set_workflow_sequence(task.workflow_sequence.value_or(0));
  t->set_lease_expires_at_ms(lease_expires_at_ms);
  t->set_traceparent(task.traceparent);
}

}  // namespace flovyn::engine
