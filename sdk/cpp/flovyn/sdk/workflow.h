// Workflows as ordinary C++20 coroutines.
//
//   flovyn::Workflow<Receipt> Order(flovyn::WorkflowContext& ctx, OrderRequest in) {
//     auto charged = co_await ctx.Task<Charge>("charge", in.payment);
//     co_await ctx.Sleep(std::chrono::hours(24));
//     co_return Receipt{charged.id};
//   }
//
// Every step is durable: the worker replays the execution's history through the coroutine, so
// after a crash, a restart or on another worker the code resumes where it was. Replay rules
// (docs/sdk-cpp.md): the workflow code must be deterministic. Time, randomness and identifiers
// come from the context; anything else that talks to the world runs in a task or in
// ctx.Run(...). Each step the code issues is matched against the history; a step that differs
// is a determinism violation, reported and never applied.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flovyn/sdk/future.h"

namespace flovyn {

namespace detail {
class Replay;
}

// How a task runs: TaskOptions().Attempts(5).Backoff(200ms). (A class with setters rather than
// an aggregate: g++ 12 frees an aggregate temporary twice when a coroutine suspended in its
// full-expression is destroyed, which the replay does after every decision.)
class TaskOptions {
 public:
  TaskOptions() = default;  // user-declared, so not an aggregate
  TaskOptions& Queue(std::string q) {
    queue = std::move(q);
    return *this;
  }
  TaskOptions& Attempts(int n) {
    max_attempts = n;
    return *this;
  }
  TaskOptions& Backoff(std::chrono::milliseconds initial,
                       std::chrono::milliseconds max = std::chrono::milliseconds(0)) {
    initial_backoff = initial;
    max_backoff = max;
    return *this;
  }
  TaskOptions& Lease(std::chrono::milliseconds l) {
    lease = l;
    return *this;
  }

  std::string queue;                             // default: the workflow's queue
  int max_attempts = 0;                          // default 3
  std::chrono::milliseconds initial_backoff{0};  // default 1 s, doubling each attempt
  std::chrono::milliseconds max_backoff{0};      // default 60 s
  std::chrono::milliseconds lease{0};            // default 30 s; heartbeats extend it
};

// The workflow's key/value state, visible over REST and in the console.
class WorkflowState {
 public:
  std::optional<Json> Get(const std::string& key) const;
  void Set(const std::string& key, const Json& value);
  void Clear(const std::string& key);

 private:
  friend class WorkflowContext;
  explicit WorkflowState(detail::Replay& r) : r_(r) {}
  detail::Replay& r_;
};

class WorkflowContext {
 public:
  explicit WorkflowContext(detail::Replay& r) : r_(r), state_(r) {}
  WorkflowContext(const WorkflowContext&) = delete;
  WorkflowContext& operator=(const WorkflowContext&) = delete;

  // Schedules a task (run by a worker with a task function of that kind).
  template <typename Out = Json, typename In = Json>
  Future<Out> Task(const std::string& kind, const In& input, const TaskOptions& options) {
    return Future<Out>(IssueTask(kind, Json(input), options));
  }
  template <typename Out = Json, typename In = Json>
  Future<Out> Task(const std::string& kind, const In& input) {
    return Future<Out>(IssueTask(kind, Json(input), TaskOptions()));
  }
  // A durable timer.
  Future<void> Sleep(std::chrono::milliseconds duration) { return Future<void>(IssueTimer(duration)); }
  // A promise settled from outside (REST or gRPC, by the id in its PROMISE_CREATED event).
  // Throws PromiseRejected, or TimedOut after `timeout` (0: none).
  template <typename T = Json>
  Future<T> Promise(const std::string& name, std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    return Future<T>(IssuePromise(name, timeout));
  }
  // The next signal of that name not yet taken.
  template <typename T = Json>
  Future<T> Signal(const std::string& name) {
    return Future<T>(WaitSignal(name));
  }
  // Without waiting: the next signal of that name received so far, if any.
  template <typename T = Json>
  std::optional<T> TryTakeSignal(const std::string& name) {
    auto v = TakeSignal(name);
    if (!v) return std::nullopt;
    return detail::FromJson<T>(*v);
  }
  // Without waiting: every signal of that name received so far, in order.
  template <typename T = Json>
  std::vector<T> DrainSignals(const std::string& name) {
    std::vector<T> out;
    while (auto v = TakeSignal(name)) out.push_back(detail::FromJson<T>(*v));
    return out;
  }
  // Starts a child workflow and waits for its output (ChildFailed when it fails).
  template <typename Out = Json, typename In = Json>
  Future<Out> Child(const std::string& kind, const In& input, const std::string& queue = "") {
    return Future<Out>(IssueChild(kind, Json(input), queue));
  }
  // A side effect run once: its result (or its exception's message, as StepFailed) is recorded
  // and replayed without running `fn` again.
  template <typename Fn>
  auto Run(const std::string& name, Fn&& fn) -> Future<decltype(fn())> {
    using R = decltype(fn());
    return Future<R>(IssueRun(name, [&fn]() -> Json {
      if constexpr (std::is_void_v<R>) {
        fn();
        return Json();
      } else {
        return Json(fn());
      }
    }));
  }
  // Runs a workflow coroutine alongside this one; await the returned future to join it.
  template <typename T>
  Future<T> Spawn(Workflow<T> w) {
    auto h = w.Release();
    auto state = NewState();
    h.promise().spawned = state;
    Start(h, [h]() mutable { h.destroy(); });
    return Future<T>(state);
  }

  // Deterministic under replay: the time of the latest event the code has seen; random numbers
  // and identifiers seeded by the execution.
  std::chrono::system_clock::time_point Now() const;
  uint64_t Random();
  std::string Uuid();

  WorkflowState& State() { return state_; }
  // Indexed search attributes: an object of strings, numbers, booleans (null removes a key).
  void SetSearchAttributes(const Json& attributes);
  // Versioning: true for executions that reach this point with this code (and from then on),
  // false for those whose history was recorded before the change.
  bool Patched(const std::string& change_id);
  // Ends this run and starts a new one of the same workflow with `input`, so that a workflow that
  // runs forever keeps a bounded history: `co_await ctx.ContinueAsNew(next);` never returns.
  template <typename In>
  Future<void> ContinueAsNew(const In& input) {
    return Future<void>(IssueContinueAsNew(Json(input)));
  }
  // Cancels a step the code no longer waits for: a task or child workflow is cancelled on the
  // server, a timer is cancelled, a promise or signal is no longer waited for. The future fails
  // with Cancelled. (A task scheduled and cancelled in the same activation is cancelled on the
  // server at the next one.)
  template <typename T>
  void Cancel(const Future<T>& step) {
    Cancel(step.state());
  }
  void Cancel(const std::shared_ptr<detail::FutureState>& step);
  // A cancellation of the workflow was requested. With a grace period (REST `graceMs`), every
  // step the code waits for fails with Cancelled at once: the code may catch it, compensate (new
  // steps run normally) and end; letting Cancelled escape ends the execution CANCELLED. Its
  // pending tasks and children are cancelled. Without one, the server cancels the execution
  // outright.
  bool CancelRequested() const;
  const std::string& ExecutionId() const;
  // True while the code is catching up with recorded history.
  bool IsReplaying() const;

  std::shared_ptr<detail::FutureState> NewState();

 private:
  std::shared_ptr<detail::FutureState> IssueTask(const std::string& kind, const Json& input, const TaskOptions& o);
  std::shared_ptr<detail::FutureState> IssueTimer(std::chrono::milliseconds d);
  std::shared_ptr<detail::FutureState> IssuePromise(const std::string& name, std::chrono::milliseconds timeout);
  std::shared_ptr<detail::FutureState> WaitSignal(const std::string& name);
  std::optional<Json> TakeSignal(const std::string& name);
  std::shared_ptr<detail::FutureState> IssueChild(const std::string& kind, const Json& input, const std::string& queue);
  std::shared_ptr<detail::FutureState> IssueRun(const std::string& name, const std::function<Json()>& fn);
  std::shared_ptr<detail::FutureState> IssueContinueAsNew(const Json& input);
  void Start(std::coroutine_handle<> h, std::function<void()> destroy);

  detail::Replay& r_;
  WorkflowState state_;
};

// ------------------------------------------------------------------------------ combinators

// Waits for all; the first failure (in the order given) is thrown once all are done.
template <typename T>
Future<std::vector<T>> All(WorkflowContext& ctx, std::vector<Future<T>> futures) {
  auto out = ctx.NewState();
  auto left = std::make_shared<size_t>(futures.size());
  auto finish = [out, futures]() {
    std::vector<Json> values;
    for (const auto& f : futures) {
      if (f.state()->error()) return out->Reject(f.state()->error());
      values.push_back(f.state()->value());
    }
    out->Resolve(Json(std::move(values)));
  };
  if (futures.empty()) finish();
  for (const auto& f : futures) {
    f.state()->OnDone([left, finish]() {
      if (--*left == 0) finish();
    });
  }
  return Future<std::vector<T>>(out);
}

// The index of the first to finish (succeeded or failed). The losers are cancelled (tasks and
// children on the server too).
template <typename T>
Future<size_t> FirstOf(WorkflowContext& ctx, std::vector<Future<T>> futures) {
  auto out = ctx.NewState();
  for (size_t i = 0; i < futures.size(); ++i) {
    futures[i].state()->OnDone([&ctx, out, futures, i]() {
      if (out->done()) return;
      out->Resolve(Json(i));
      for (size_t j = 0; j < futures.size(); ++j) {
        if (j != i && !futures[j].done()) ctx.Cancel(futures[j].state());
      }
    });
  }
  return Future<size_t>(out);
}

// `f`'s result, or TimedOut when `limit` passes first (the timer is cancelled when `f` wins, and
// `f`'s step when the timer does).
template <typename T>
Future<T> WithTimeout(WorkflowContext& ctx, Future<T> f, std::chrono::milliseconds limit) {
  auto out = ctx.NewState();
  auto timer = ctx.Sleep(limit).state();
  f.state()->OnDone([&ctx, out, timer, s = f.state()]() {
    if (out->done()) return;
    if (s->error()) {
      out->Reject(s->error());
    } else {
      out->Resolve(s->value());
    }
    if (!timer->done()) ctx.Cancel(timer);
  });
  timer->OnDone([&ctx, out, limit, t = timer.get(), s = f.state()]() {
    if (out->done()) return;
    if (t->error()) return out->Reject(t->error());  // the workflow was cancelled
    out->Reject(std::make_exception_ptr(TimedOut("timed out after " + std::to_string(limit.count()) + " ms")));
    if (!s->done()) ctx.Cancel(s);
  });
  return Future<T>(out);
}

// ------------------------------------------------------------------------------ registration

// A workflow as the replayer runs it: input JSON in, output JSON out.
using WorkflowFactory = std::function<Workflow<Json>(WorkflowContext&, Json)>;

template <typename Out, typename In>
WorkflowFactory MakeWorkflow(std::function<Workflow<Out>(WorkflowContext&, In)> fn) {
  return [fn](WorkflowContext& ctx, Json input) -> Workflow<Json> {
    In in = detail::FromJson<In>(input.is_null() && !std::is_same_v<In, Json> ? Json::object() : input);
    if constexpr (std::is_void_v<Out>) {
      co_await fn(ctx, std::move(in));
      co_return Json();
    } else {
      co_return Json(co_await fn(ctx, std::move(in)));
    }
  };
}
template <typename Out, typename In>
WorkflowFactory MakeWorkflow(Workflow<Out> (*fn)(WorkflowContext&, In)) {
  return MakeWorkflow(std::function<Workflow<Out>(WorkflowContext&, In)>(fn));
}

}  // namespace flovyn
