#include "flovyn/sdk/client.h"

#include <nlohmann/json.hpp>

#include "flovyn/sdk/replay.h"

namespace flovyn::sdk {

Client::Client(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  channel_ = grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args);
  dispatch_ = v1::WorkflowDispatch::NewStub(channel_);
  tasks_ = v1::TaskExecution::NewStub(channel_);
  lifecycle_ = v1::WorkerLifecycle::NewStub(channel_);
}

void Client::Prepare(grpc::ClientContext* ctx, std::chrono::milliseconds timeout,
                     const std::string& traceparent) const {
  if (!traceparent.empty()) ctx->AddMetadata("traceparent", traceparent);
  if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
  if (!options_.tenant.empty()) ctx->AddMetadata("x-flovyn-tenant", options_.tenant);
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

grpc::Status Client::StartWorkflow(const std::string& kind, const std::string& input_json,
                                   v1::StartWorkflowResponse* out, const std::string& queue,
                                   const std::string& idempotency_key) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::StartWorkflowRequest req;
  req.set_kind(kind);
  req.set_queue(queue);
  req.set_input_json(input_json);
  req.set_idempotency_key(idempotency_key);
  grpc::Status s = dispatch_->StartWorkflow(&ctx, req, out);
  // A server shutting down cancels calls it received but had not yet handed to a handler
  // (gRPC core reports them as CANCELLED, grpc/grpc#41785). We did not cancel, so the server
  // did; with an idempotency key the start is safe to repeat, and the repeat is answered by
  // the same execution if the first one got through after all.
  for (int attempt = 0; attempt < 3 && s.error_code() == grpc::StatusCode::CANCELLED && !idempotency_key.empty();
       ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 << attempt));
    grpc::ClientContext again;
    Prepare(&again, options_.call_timeout);
    s = dispatch_->StartWorkflow(&again, req, out);
  }
  return s;
}

grpc::Status Client::Signal(const std::string& execution_id, const std::string& name, const std::string& payload_json) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::SignalWorkflowRequest req;
  req.set_execution_id(execution_id);
  req.set_name(name);
  req.set_payload_json(payload_json);
  v1::SignalWorkflowResponse res;
  return dispatch_->SignalWorkflow(&ctx, req, &res);
}

grpc::Status Client::SignalWithStart(const v1::SignalWithStartRequest& req, v1::SignalWithStartResponse* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  return dispatch_->SignalWithStart(&ctx, req, out);
}

grpc::Status Client::ResolvePromise(const std::string& promise_id, const std::string& value_json) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::ResolvePromiseRequest req;
  req.set_promise_id(promise_id);
  req.set_value_json(value_json);
  v1::ResolvePromiseResponse res;
  return dispatch_->ResolvePromise(&ctx, req, &res);
}

grpc::Status Client::RejectPromise(const std::string& promise_id, const std::string& error) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::RejectPromiseRequest req;
  req.set_promise_id(promise_id);
  req.set_error(error);
  v1::RejectPromiseResponse res;
  return dispatch_->RejectPromise(&ctx, req, &res);
}

grpc::Status Client::GetEvents(const std::string& execution_id, std::vector<v1::WorkflowEvent>* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::GetEventsRequest req;
  req.set_execution_id(execution_id);
  v1::GetEventsResponse res;
  auto s = dispatch_->GetEvents(&ctx, req, &res);
  out->assign(res.events().begin(), res.events().end());
  return s;
}

grpc::Status Client::GetState(const std::string& execution_id, std::map<std::string, std::string>* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::GetStateRequest req;
  req.set_execution_id(execution_id);
  v1::GetStateResponse res;
  auto s = dispatch_->GetState(&ctx, req, &res);
  out->clear();
  for (const auto& [k, v] : res.state_json()) (*out)[k] = v;
  return s;
}

grpc::Status Client::SubmitTask(const v1::SubmitTaskRequest& req, std::string* task_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::SubmitTaskResponse res;
  auto s = tasks_->SubmitTask(&ctx, req, &res);
  *task_id = res.task_id();
  return s;
}

grpc::Status Client::CancelTask(const std::string& task_id, const std::string& reason) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::CancelTaskRequest req;
  req.set_task_id(task_id);
  req.set_reason(reason);
  v1::CancelTaskResponse res;
  return tasks_->CancelTask(&ctx, req, &res);
}

grpc::Status Client::RegisterWorker(const v1::RegisterWorkerRequest& req, std::string* worker_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::RegisterWorkerResponse res;
  auto s = lifecycle_->RegisterWorker(&ctx, req, &res);
  *worker_id = res.worker_id();
  return s;
}

grpc::Status Client::WorkerHeartbeat(const std::string& worker_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::WorkerHeartbeatRequest req;
  req.set_worker_id(worker_id);
  v1::WorkerHeartbeatResponse res;
  return lifecycle_->Heartbeat(&ctx, req, &res);
}

grpc::Status Client::PollWorkflow(const v1::PollWorkflowRequest& req, v1::PollWorkflowResponse* out,
                                  grpc::ClientContext* ctx) {
  grpc::ClientContext own;
  if (ctx == nullptr) ctx = &own;
  Prepare(ctx, std::chrono::milliseconds(req.timeout_ms()) + options_.call_timeout);
  return dispatch_->PollWorkflow(ctx, req, out);
}

grpc::Status Client::SubmitCommands(const v1::SubmitWorkflowCommandsRequest& req,
                                    v1::SubmitWorkflowCommandsResponse* out, const std::string& traceparent) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, traceparent);
  return dispatch_->SubmitWorkflowCommands(&ctx, req, out);
}

grpc::Status Client::FireTimer(const v1::FireTimerRequest& req, v1::FireTimerResponse* out,
                               const std::string& traceparent) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, traceparent);
  return dispatch_->FireTimer(&ctx, req, out);
}

grpc::Status Client::SkipTime(const std::string& execution_id, v1::SkipTimeResponse* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::SkipTimeRequest req;
  req.set_execution_id(execution_id);
  v1::SkipTimeResponse own;
  return dispatch_->SkipTime(&ctx, req, out ? out : &own);
}

grpc::Status Client::ReportProblem(const v1::ReportWorkflowProblemRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout);
  v1::ReportWorkflowProblemResponse out;
  return dispatch_->ReportWorkflowProblem(&ctx, req, &out);
}

grpc::Status Client::PollTask(const v1::PollTaskRequest& req, v1::PollTaskResponse* out, grpc::ClientContext* ctx) {
  grpc::ClientContext own;
  if (ctx == nullptr) ctx = &own;
  Prepare(ctx, std::chrono::milliseconds(req.timeout_ms()) + options_.call_timeout);
  return tasks_->PollTask(ctx, req, out);
}

namespace {
// A request about one attempt of a task the worker holds.
template <typename Request>
Request ForTask(const std::string& worker_id, const v1::Task& task) {
  Request req;
  req.set_worker_id(worker_id);
  req.set_task_id(task.id());
  req.set_attempt(task.attempt());
  return req;
}
}  // namespace

grpc::Status Client::CompleteTask(const std::string& worker_id, const v1::Task& task, const std::string& output_json,
                                  bool take_workflow, v1::CompleteTaskResponse* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, task.traceparent());
  auto req = ForTask<v1::CompleteTaskRequest>(worker_id, task);
  req.set_output_json(output_json);
  req.set_take_workflow(take_workflow);
  v1::CompleteTaskResponse res;
  return tasks_->CompleteTask(&ctx, req, out ? out : &res);
}

grpc::Status Client::CompleteTask(const v1::CompleteTaskRequest& req, v1::CompleteTaskResponse* out,
                                  const std::string& traceparent) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, traceparent);
  return tasks_->CompleteTask(&ctx, req, out);
}

grpc::Status Client::CompleteTasks(const std::string& worker_id, const std::vector<v1::Task>& tasks,
                                   const std::vector<std::string>& outputs, v1::CompleteTasksResponse* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, "");
  v1::CompleteTasksRequest req;
  req.set_worker_id(worker_id);
  for (size_t i = 0; i < tasks.size() && i < outputs.size(); ++i) {
    auto* r = req.add_results();
    r->set_task_id(tasks[i].id());
    r->set_attempt(tasks[i].attempt());
    r->set_output_json(outputs[i]);
  }
  return tasks_->CompleteTasks(&ctx, req, out);
}

grpc::Status Client::FailTask(const std::string& worker_id, const v1::Task& task, const std::string& error,
                              bool non_retryable, v1::FailTaskResponse* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, task.traceparent());
  auto req = ForTask<v1::FailTaskRequest>(worker_id, task);
  req.set_error(error);
  req.set_non_retryable(non_retryable);
  v1::FailTaskResponse res;
  return tasks_->FailTask(&ctx, req, out ? out : &res);
}

grpc::Status Client::HeartbeatTask(const std::string& worker_id, const v1::Task& task, v1::TaskHeartbeatResponse* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, task.traceparent());
  auto req = ForTask<v1::TaskHeartbeatRequest>(worker_id, task);
  return tasks_->Heartbeat(&ctx, req, out);
}

grpc::Status Client::ReportProgress(const std::string& worker_id, const v1::Task& task,
                                    const std::string& progress_json) {
  grpc::ClientContext ctx;
  Prepare(&ctx, options_.call_timeout, task.traceparent());
  auto req = ForTask<v1::ReportProgressRequest>(worker_id, task);
  req.set_progress_json(progress_json);
  v1::ReportProgressResponse out;
  return tasks_->ReportProgress(&ctx, req, &out);
}

std::unique_ptr<grpc::ClientReader<v1::WorkNotification>> Client::Subscribe(grpc::ClientContext* ctx,
                                                                            const std::string& queue) {
  if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
  if (!options_.tenant.empty()) ctx->AddMetadata("x-flovyn-tenant", options_.tenant);
  v1::SubscribeToNotificationsRequest req;
  req.set_queue(queue);
  return dispatch_->SubscribeToNotifications(ctx, req);
}

// ---------------------------------------------------------------- commands

v1::WorkflowCommand ScheduleTask(const std::string& kind, const std::string& input_json, int max_attempts,
                                 int64_t initial_backoff_ms, const std::string& queue) {
  v1::WorkflowCommand c;
  auto* t = c.mutable_schedule_task();
  t->set_kind(kind);
  t->set_input_json(input_json);
  t->set_max_attempts(max_attempts);
  t->set_initial_backoff_ms(initial_backoff_ms);
  t->set_queue(queue);
  return c;
}

v1::WorkflowCommand StartTimer(const std::string& name, int64_t duration_ms) {
  v1::WorkflowCommand c;
  c.mutable_start_timer()->set_name(name);
  c.mutable_start_timer()->set_duration_ms(duration_ms);
  return c;
}

v1::WorkflowCommand CreatePromise(const std::string& name, int64_t timeout_ms) {
  v1::WorkflowCommand c;
  c.mutable_create_promise()->set_name(name);
  c.mutable_create_promise()->set_timeout_ms(timeout_ms);
  return c;
}

v1::WorkflowCommand ScheduleChild(const std::string& name, const std::string& kind, const std::string& input_json,
                                  const std::string& queue) {
  v1::WorkflowCommand c;
  auto* s = c.mutable_schedule_child_workflow();
  s->set_name(name);
  s->set_kind(kind);
  s->set_input_json(input_json);
  s->set_queue(queue);
  return c;
}

v1::WorkflowCommand SetSearchAttributes(const std::string& attributes_json) {
  v1::WorkflowCommand c;
  c.mutable_set_search_attributes()->set_attributes_json(attributes_json);
  return c;
}

v1::WorkflowCommand SetState(const std::string& key, const std::string& value_json) {
  v1::WorkflowCommand c;
  c.mutable_set_state()->set_key(key);
  c.mutable_set_state()->set_value_json(value_json);
  return c;
}

v1::WorkflowCommand RecordOperation(const std::string& name, const std::string& result_json) {
  v1::WorkflowCommand c;
  c.mutable_record_operation()->set_name(name);
  c.mutable_record_operation()->set_result_json(result_json);
  return c;
}

v1::WorkflowCommand Complete(const std::string& output_json) {
  v1::WorkflowCommand c;
  c.mutable_complete_workflow()->set_output_json(output_json);
  return c;
}

v1::WorkflowCommand Fail(const std::string& error) {
  v1::WorkflowCommand c;
  c.mutable_fail_workflow()->set_error(error);
  return c;
}

v1::WorkflowCommand Suspend() {
  v1::WorkflowCommand c;
  c.mutable_suspend();
  return c;
}

std::vector<const v1::WorkflowEvent*> History::OfType(const std::string& type) const {
  std::vector<const v1::WorkflowEvent*> out;
  for (const auto& e : events_) {
    if (e.type() == type) out.push_back(&e);
  }
  return out;
}

std::string History::Input() const {
  for (const auto& e : events_) {
    if (e.type() != "WORKFLOW_STARTED") continue;
    auto payload = nlohmann::json::parse(e.payload_json(), nullptr, false);
    if (payload.is_object() && payload.contains("input")) return payload["input"].dump();
  }
  return "null";
}

// ---------------------------------------------------------------- Worker

Worker::Worker(Client& client, WorkerOptions options) : client_(client), options_(std::move(options)) {}

Worker::~Worker() { Stop(); }

grpc::Status Worker::Start() {
  v1::RegisterWorkerRequest req;
  req.set_name(options_.name);
  req.set_version("sdk-cpp");
  req.add_queues(options_.queue);
  for (const auto& [k, f] : workflows_) req.add_workflow_kinds(k);
  for (const auto& [k, f] : tasks_) req.add_task_kinds(k);
  auto s = client_.RegisterWorker(req, &worker_id_);
  if (!s.ok()) return s;
  if (!workflows_.empty() || !durable_.empty()) {
    for (int i = 0; i < options_.workflow_pollers; ++i) threads_.emplace_back([this] { WorkflowLoop(); });
  }
  if (!durable_.empty() && options_.fire_timers) {
    // As many as poll for workflows: timers due together fire side by side.
    for (int i = 0; i < std::max(1, options_.workflow_pollers); ++i) threads_.emplace_back([this] { TimerLoop(); });
  }
  if (!tasks_.empty()) {
    for (int i = 0; i < options_.task_pollers; ++i) threads_.emplace_back([this] { TaskLoop(); });
  }
  return grpc::Status::OK;
}

bool Worker::Track(grpc::ClientContext* ctx) {
  absl::MutexLock l(&polls_mu_);
  if (stop_) return false;
  polls_.insert(ctx);
  return true;
}

void Worker::Untrack(grpc::ClientContext* ctx) {
  absl::MutexLock l(&polls_mu_);
  polls_.erase(ctx);
}

void Worker::Stop() {
  {
    absl::MutexLock l(&polls_mu_);
    stop_ = true;
    for (auto* ctx : polls_) ctx->TryCancel();
  }
  {
    absl::MutexLock l(&timers_mu_);
    timers_cv_.SignalAll();  // the timer threads see stop_
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Worker::WorkflowLoop() {
  while (!stop_) {
    v1::PollWorkflowRequest req;
    req.set_worker_id(worker_id_);
    req.set_queue(options_.queue);
    for (const auto& [k, f] : workflows_) req.add_kinds(k);
    for (const auto& [k, f] : durable_) req.add_kinds(k);
    req.set_timeout_ms(options_.poll_timeout.count());
    v1::PollWorkflowResponse res;
    grpc::ClientContext ctx;
    if (!Track(&ctx)) break;
    auto s = client_.PollWorkflow(req, &res, &ctx);
    Untrack(&ctx);
    if (!s.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!res.has_work()) continue;
    if (durable_.count(res.execution().kind()) > 0) {
      Run({}, res);
      continue;
    }
    std::vector<v1::WorkflowCommand> commands = DecideFor(res);
    int64_t last_sequence = res.events().empty() ? 0 : res.events(res.events_size() - 1).sequence();
    v1::SubmitWorkflowCommandsRequest sub;
    sub.set_worker_id(worker_id_);
    sub.set_execution_id(res.execution().id());
    sub.set_expected_sequence(last_sequence);
    for (auto& c : commands) *sub.add_commands() = c;
    v1::SubmitWorkflowCommandsResponse out;
    // ABORTED: someone else got there first; drop it.
    bool closes = !commands.empty() && (commands.back().has_complete_workflow() || commands.back().has_fail_workflow());
    if (client_.SubmitCommands(sub, &out, res.execution().traceparent()).ok() && closes &&
        options_.on_workflow_closed) {
      options_.on_workflow_closed(res.execution().id());
    }
  }
}

std::vector<v1::WorkflowCommand> Worker::DecideFor(const v1::PollWorkflowResponse& res) {
  std::vector<v1::WorkflowEvent> events(res.events().begin(), res.events().end());
  const std::string& kind = res.execution().kind();
  auto it = workflows_.find(kind);
  if (it == workflows_.end()) return {Fail("no handler for workflow kind " + kind)};
  try {
    return it->second(History(std::move(events)));
  } catch (const std::exception& e) {
    return {Fail(std::string("workflow code failed: ") + e.what())};
  }
}

std::string Worker::last_violation() const {
  absl::MutexLock l(&polls_mu_);
  return last_violation_;
}

}  // namespace flovyn::sdk
