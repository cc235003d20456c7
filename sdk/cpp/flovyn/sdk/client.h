// The Flovyn C++ client: starts and steers workflows, and acts as a worker over the flovyn.v1
// gRPC protocol. A Client is thread-safe (one channel, many calls); Worker runs handlers on
// its own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include "flovyn/sdk/workflow.h"
#include "flovyn/v1/flovyn.grpc.pb.h"

namespace flovyn {
struct Decision;
}  // namespace flovyn
namespace flovyn::detail {
class Replay;
}

namespace flovyn::sdk {

struct ClientOptions {
  std::string target;  // "host:port" of flovyn-server's gRPC listener
  std::string token;   // worker token (fwt_...) or API key; empty when security is off
  std::string tenant;  // tenant slug; needed for API keys of admins and with security off
  std::chrono::milliseconds call_timeout{10000};
};

class Client {
 public:
  explicit Client(ClientOptions options);

  // Client calls.
  grpc::Status StartWorkflow(const std::string& kind, const std::string& input_json, v1::StartWorkflowResponse* out,
                             const std::string& queue = "default", const std::string& idempotency_key = "");
  grpc::Status Signal(const std::string& execution_id, const std::string& name, const std::string& payload_json);
  grpc::Status SignalWithStart(const v1::SignalWithStartRequest& req, v1::SignalWithStartResponse* out);
  grpc::Status ResolvePromise(const std::string& promise_id, const std::string& value_json);
  grpc::Status RejectPromise(const std::string& promise_id, const std::string& error);
  grpc::Status GetEvents(const std::string& execution_id, std::vector<v1::WorkflowEvent>* out);
  grpc::Status GetState(const std::string& execution_id, std::map<std::string, std::string>* out);
  // Tests only (a server with ENGINE__ALLOW_TIME_SKIPPING=true): the execution's pending timers
  // fire and its promises time out now.
  grpc::Status SkipTime(const std::string& execution_id, v1::SkipTimeResponse* out = nullptr);
  grpc::Status SubmitTask(const v1::SubmitTaskRequest& req, std::string* task_id);
  grpc::Status CancelTask(const std::string& task_id, const std::string& reason = "");

  // Worker calls.
  grpc::Status RegisterWorker(const v1::RegisterWorkerRequest& req, std::string* worker_id);
  grpc::Status WorkerHeartbeat(const std::string& worker_id);
  // Long-polls; pass `ctx` to be able to cancel the wait (ClientContext::TryCancel).
  grpc::Status PollWorkflow(const v1::PollWorkflowRequest& req, v1::PollWorkflowResponse* out,
                            grpc::ClientContext* ctx = nullptr);
  // `traceparent`: the execution's or task's trace context, so the server's spans continue the
  // trace that started the work.
  grpc::Status SubmitCommands(const v1::SubmitWorkflowCommandsRequest& req, v1::SubmitWorkflowCommandsResponse* out,
                              const std::string& traceparent = "");
  // A timer of an execution this worker keeps, fired here at its deadline (FireTimerRequest).
  grpc::Status FireTimer(const v1::FireTimerRequest& req, v1::FireTimerResponse* out,
                         const std::string& traceparent = "");
  // Instead of submitting: the code does not match the execution's history.
  grpc::Status ReportProblem(const v1::ReportWorkflowProblemRequest& req);
  grpc::Status PollTask(const v1::PollTaskRequest& req, v1::PollTaskResponse* out, grpc::ClientContext* ctx = nullptr);
  // Task results carry the task's traceparent.
  // `take_workflow`: see CompleteTaskRequest; `out` receives the workflow's activation, if taken.
  grpc::Status CompleteTask(const std::string& worker_id, const v1::Task& task, const std::string& output_json,
                            bool take_workflow = false, v1::CompleteTaskResponse* out = nullptr);
  // The whole request (a continuation, see CompleteTaskRequest).
  grpc::Status CompleteTask(const v1::CompleteTaskRequest& req, v1::CompleteTaskResponse* out,
                            const std::string& traceparent);
  // Several results in one call and one commit: outputs[i] is tasks[i]'s. `out` has each one's
  // outcome (code 0: recorded).
  grpc::Status CompleteTasks(const std::string& worker_id, const std::vector<v1::Task>& tasks,
                             const std::vector<std::string>& outputs, v1::CompleteTasksResponse* out);
  grpc::Status FailTask(const std::string& worker_id, const v1::Task& task, const std::string& error,
                        bool non_retryable = false, v1::FailTaskResponse* out = nullptr);
  grpc::Status HeartbeatTask(const std::string& worker_id, const v1::Task& task, v1::TaskHeartbeatResponse* out);
  grpc::Status ReportProgress(const std::string& worker_id, const v1::Task& task, const std::string& progress_json);
  std::unique_ptr<grpc::ClientReader<v1::WorkNotification>> Subscribe(grpc::ClientContext* ctx,
                                                                      const std::string& queue);

  // Sets credentials, tenant and deadline on a context for a call lasting up to `timeout`.
  void Prepare(grpc::ClientContext* ctx, std::chrono::milliseconds timeout, const std::string& traceparent = "") const;
  const ClientOptions& options() const { return options_; }

 private:
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkflowDispatch::Stub> dispatch_;
  std::unique_ptr<v1::TaskExecution::Stub> tasks_;
  std::unique_ptr<v1::WorkerLifecycle::Stub> lifecycle_;
};

// Command builders.
v1::WorkflowCommand ScheduleTask(const std::string& kind, const std::string& input_json, int max_attempts = 0,
                                 int64_t initial_backoff_ms = 0, const std::string& queue = "");
v1::WorkflowCommand StartTimer(const std::string& name, int64_t duration_ms);
v1::WorkflowCommand CreatePromise(const std::string& name, int64_t timeout_ms = 0);
v1::WorkflowCommand ScheduleChild(const std::string& name, const std::string& kind, const std::string& input_json,
                                  const std::string& queue = "");
v1::WorkflowCommand SetState(const std::string& key, const std::string& value_json);
// A JSON object of strings, numbers and booleans (null removes a key).
v1::WorkflowCommand SetSearchAttributes(const std::string& attributes_json);
v1::WorkflowCommand RecordOperation(const std::string& name, const std::string& result_json);
v1::WorkflowCommand Complete(const std::string& output_json);
v1::WorkflowCommand Fail(const std::string& error);
v1::WorkflowCommand Suspend();

// A read-only view of a workflow's history for deciding the next commands.
class History {
 public:
  explicit History(std::vector<v1::WorkflowEvent> events) : events_(std::move(events)) {}
  const std::vector<v1::WorkflowEvent>& events() const { return events_; }
  int64_t last_sequence() const { return events_.empty() ? 0 : events_.back().sequence(); }
  // Events of one type, in order.
  std::vector<const v1::WorkflowEvent*> OfType(const std::string& type) const;
  size_t Count(const std::string& type) const { return OfType(type).size(); }
  // The input given at start (JSON text).
  std::string Input() const;

 private:
  std::vector<v1::WorkflowEvent> events_;
};

// Decides the next commands from the history; must be deterministic.
using WorkflowFn = std::function<std::vector<v1::WorkflowCommand>(const History&)>;
// Runs a task; returns its output JSON, or throws TaskFailure to fail this attempt.
using TaskFn = std::function<std::string(const v1::Task&)>;

struct TaskFailure : std::runtime_error {
  explicit TaskFailure(const std::string& m, bool permanent = false)
      : std::runtime_error(m), non_retryable(permanent) {}
  bool non_retryable;
};

// What a task function sees of its task: the attempt, heartbeats (which extend its lease and say
// whether it was cancelled), progress, and a cancellation flag to poll.
class TaskContext {
 public:
  TaskContext(Client& client, std::string worker_id, const v1::Task& task)
      : client_(client), worker_id_(std::move(worker_id)), task_(task) {}
  const v1::Task& task() const { return task_; }
  int attempt() const { return task_.attempt(); }
  // Extends the lease. False once the task was cancelled or is no longer this worker's: stop
  // and return (the result will be refused).
  bool Heartbeat();
  // Records progress (JSON, shown over REST and in the console); false as for Heartbeat.
  bool Progress(const Json& progress);
  bool Cancelled() const { return cancelled_; }

 private:
  Client& client_;
  std::string worker_id_;
  const v1::Task& task_;
  bool cancelled_ = false;
};

struct WorkerOptions {
  std::string name = "worker";
  std::string queue = "default";
  int workflow_pollers = 1;
  int task_pollers = 1;
  std::chrono::milliseconds poll_timeout{5000};
  // Coroutine workflows kept in memory between their activations (least recently used goes
  // first): a kept one gets only its new events from the server and runs on from where it
  // waits, instead of replaying its whole history. 0: every activation replays.
  size_t workflow_cache_size = 1000;
  // Tasks each task poller claims per poll (the server allows up to 100): a poll that brings
  // several saves the claims' round trips and commits; the poller runs them one after another.
  int max_tasks_per_poll = 1;
  // Timers of the workflows kept in memory fire here, at their deadline: the code runs on at
  // once and the server records TIMER_FIRED with the commands it issued next, in one commit
  // (FireTimer). A timer this worker does not fire (it stopped, or dropped the workflow) the
  // server fires itself, engine.worker_timer_grace_ms late. false: the server fires every timer
  // and hands the workflow back through a poll. Needs workflow_cache_size > 0.
  bool fire_timers = true;
  // Called with a workflow's execution id once the server has recorded that this worker's
  // activation ended it (completed or failed): its result is durable when this runs. Called on
  // a workflow poller's thread; keep it short.
  std::function<void(const std::string& execution_id)> on_workflow_closed;
};

class Worker {
 public:
  Worker(Client& client, WorkerOptions options);
  ~Worker();
  void RegisterWorkflow(const std::string& kind, WorkflowFn fn) { workflows_[kind] = std::move(fn); }
  // A coroutine workflow (flovyn/sdk/workflow.h), replayed over the history at each step.
  void RegisterWorkflow(const std::string& kind, WorkflowFactory f) { durable_[kind] = std::move(f); }
  template <typename Out, typename In>
  void RegisterWorkflow(const std::string& kind, flovyn::Workflow<Out> (*fn)(WorkflowContext&, In)) {
    durable_[kind] = MakeWorkflow(fn);
  }
  void RegisterTask(const std::string& kind, TaskFn fn) { tasks_[kind] = std::move(fn); }
  // A task as a plain function with typed input and output (nlohmann to_json/from_json).
  // Throwing TaskFailure fails the attempt (permanently when asked); any other exception fails it
  // as retryable.
  template <typename Out, typename In>
  void RegisterTask(const std::string& kind, Out (*fn)(TaskContext&, In)) {
    tasks_[kind] = [this, fn](const v1::Task& t) -> std::string {
      TaskContext ctx(client_, worker_id_, t);
      In in = detail::FromJson<In>(Json::parse(t.input_json()));
      if constexpr (std::is_void_v<Out>) {
        fn(ctx, std::move(in));
        return "null";
      } else {
        return Json(fn(ctx, std::move(in))).dump();
      }
    };
  }
  grpc::Status Start();
  void Stop();
  const std::string& id() const { return worker_id_; }
  uint64_t tasks_completed() const { return tasks_completed_; }
  // The last determinism violation this worker refused to submit (empty: none).
  std::string last_violation() const;
  // Activations of coroutine workflows: run on from the cache, or replayed from the start.
  uint64_t cached_activations() const { return cached_activations_; }
  uint64_t full_replays() const { return full_replays_; }
  // Timers fired here whose TIMER_FIRED the server recorded with the code's next commands.
  uint64_t timers_fired_here() const { return timers_fired_here_; }
  // Timers armed here now: those of the workflows kept in memory that wait for them.
  size_t armed_timers() const;
  size_t cached_workflows() const;

 private:
  void WorkflowLoop();
  void TaskLoop();
  // What a task's result or an activation hands back to run on the same thread.
  struct Next {
    std::optional<v1::PollWorkflowResponse> activation;  // the task's workflow, claimed for this worker
    std::vector<v1::Task> tasks;                         // claimed with the commands that schedule them
  };
  // Runs the task; returns its workflow's next activation when the server handed it back, or
  // the tasks its workflow's code scheduled next when this worker continued it itself. `eager`:
  // the task was claimed with the commands that scheduled it (its TASK_STARTED is in the cache).
  Next RunTask(const v1::Task& task, bool eager);
  // A workflow kept here that waits only for this task runs on from its result on this thread,
  // and the result goes with the commands the code issued (CompleteTaskRequest.continuation).
  // False when it is not kept here or waits for more: the result is still to report.
  bool ContinueAfter(const v1::Task& task, const std::string& output, Next* next);
  // Asks, in `sub`, for the tasks the commands schedule when a task slot is free (`running`
  // tasks running now).
  void AskForTasks(v1::SubmitWorkflowCommandsRequest* sub, int running) const;
  // Runs `tasks` and `activation`, then whatever each hands back, on this thread.
  void Run(std::vector<v1::Task> tasks, std::optional<v1::PollWorkflowResponse> activation);
  // Runs tasks of no workflow, claimed together, and reports their results in one call; returns
  // the others.
  std::vector<v1::Task> RunStandalone(std::vector<v1::Task> tasks);
  // Registers the context of a poll in flight so Stop can cancel it; false when stopping.
  bool Track(grpc::ClientContext* ctx);
  void Untrack(grpc::ClientContext* ctx);
  Client& client_;
  WorkerOptions options_;
  std::vector<v1::WorkflowCommand> DecideFor(const v1::PollWorkflowResponse& res);  // a decider's commands
  // One activation of a coroutine workflow, submitted; keeps it cached when it goes on.
  // Returns the tasks the submit claimed for this worker to run (take_tasks).
  std::vector<v1::Task> Activate(const v1::PollWorkflowResponse& res, const WorkflowFactory& workflow);
  void Refuse(const v1::PollWorkflowResponse& res, int64_t at_sequence, const std::string& violation);
  std::unique_ptr<detail::Replay> TakeCached(const std::string& execution_id);
  void EndActivation(const std::string& execution_id);
  // Ends the activation TakeCached began, when it goes out of scope.
  struct Activating {
    Worker* w;
    const std::string& id;
    ~Activating() { w->EndActivation(id); }
  };
  void KeepCached(const std::string& execution_id, std::unique_ptr<detail::Replay> replay);
  // Keeps `replay` (after its commands were recorded at `out`) when it goes on, and arms its
  // timers (fire_timers).
  void KeepAfter(const std::string& execution_id, std::unique_ptr<detail::Replay> replay,
                 const v1::SubmitWorkflowCommandsResponse& out);
  // Local timers (fire_timers): armed for each pending timer of a workflow kept here (`replay`),
  // once, until it fires; none for one no longer kept (null), whose timers the server fires.
  void SyncTimers(const std::string& execution_id, const detail::Replay* replay);
  // The workflow ended (this worker's activation recorded its end).
  void Closed(const std::string& execution_id);
  void TimerLoop();
  // At the timer's deadline: runs the kept workflow on from TIMER_FIRED and sends its commands
  // with it (FireTimer); when it is not kept here, asks the server to fire it.
  void FireHere(const std::string& execution_id, const std::string& name);
  // The commands of `decision` for `execution_id` at sequence `at`, into `sub`, with whether the
  // worker keeps it (returned) and fires its timers.
  bool FillCommands(v1::SubmitWorkflowCommandsRequest* sub, const std::string& execution_id, int64_t at,
                    Decision& decision) const;
  std::map<std::string, WorkflowFn> workflows_;
  std::map<std::string, WorkflowFactory> durable_;
  std::map<std::string, TaskFn> tasks_;
  std::string worker_id_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> tasks_completed_{0};
  std::atomic<int> running_tasks_{0};  // tasks running now, on any thread
  mutable absl::Mutex polls_mu_;
  std::set<grpc::ClientContext*> polls_ ABSL_GUARDED_BY(polls_mu_);
  std::string last_violation_ ABSL_GUARDED_BY(polls_mu_);
  std::atomic<uint64_t> cached_activations_{0}, full_replays_{0};
  mutable absl::Mutex cache_mu_;
  std::list<std::string> cache_order_ ABSL_GUARDED_BY(cache_mu_);  // most recently used first
  std::set<std::string> activating_ ABSL_GUARDED_BY(cache_mu_);    // executions being activated here
  std::unordered_map<std::string, std::pair<std::unique_ptr<detail::Replay>, std::list<std::string>::iterator>> cache_
      ABSL_GUARDED_BY(cache_mu_);
  std::atomic<uint64_t> timers_fired_here_{0};
  mutable absl::Mutex timers_mu_;
  absl::CondVar timers_cv_;
  using TimerKey = std::pair<std::string, std::string>;  // execution id, timer name
  std::multimap<std::chrono::system_clock::time_point, TimerKey> timer_queue_ ABSL_GUARDED_BY(timers_mu_);
  std::map<TimerKey, std::chrono::system_clock::time_point> armed_ ABSL_GUARDED_BY(timers_mu_);
  std::vector<std::thread> threads_;
};

}  // namespace flovyn::sdk
