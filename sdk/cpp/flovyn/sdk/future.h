// Durable results and workflow coroutines: the building blocks of flovyn/sdk/workflow.h.
//
// A Future<T> is the result of one durable step (a task, a timer, a promise, a signal, a child
// workflow, a recorded side effect): `co_await` it inside a workflow. A Workflow<T> is a
// coroutine: the workflow function itself, or a helper it calls with `co_await helper(ctx)`.
// Values cross as JSON (nlohmann's to_json/from_json, so users' own structs work).
//
// Everything here runs on the one thread that replays a workflow; nothing is thread-safe.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace flovyn {

using Json = nlohmann::json;

// Errors a workflow sees at an await, and can catch to compensate.
struct WorkflowError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A task failed on its last attempt (or failed as non-retryable).
struct TaskFailed : WorkflowError {
  TaskFailed(const std::string& message, int tries)
      : WorkflowError("task failed after " + std::to_string(tries) + " attempt(s): " + message),
        error(message),
        attempts(tries) {}
  std::string error;
  int attempts;
};
struct ChildFailed : WorkflowError {
  ChildFailed(const std::string& message, const std::string& how)
      : WorkflowError("child workflow " + how + ": " + message), error(message), status(how) {}
  std::string error;
  std::string status;  // FAILED or CANCELLED
};
struct PromiseRejected : WorkflowError {
  explicit PromiseRejected(const std::string& message) : WorkflowError("promise rejected: " + message) {}
};
// A promise's timeout passed, or a WithTimeout around an await ran out.
struct TimedOut : WorkflowError {
  using WorkflowError::WorkflowError;
};
// The step was cancelled (a task cancelled over REST, or a race's loser).
struct Cancelled : WorkflowError {
  using WorkflowError::WorkflowError;
};
// A recorded side effect (WorkflowContext::Run) that threw: replayed as the same error.
struct StepFailed : WorkflowError {
  using WorkflowError::WorkflowError;
};

namespace detail {

// Resumes coroutines from the top of the replay loop, never from inside another coroutine.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void Ready(std::coroutine_handle<> h) = 0;
};

// The shared state of one durable result.
class FutureState {
 public:
  explicit FutureState(Scheduler* s) : scheduler_(s) {}
  bool done() const { return value_.has_value() || error_ != nullptr; }
  const Json& value() const { return *value_; }
  std::exception_ptr error() const { return error_; }
  void Resolve(Json v);
  void Reject(std::exception_ptr e);
  void Await(std::coroutine_handle<> h) { waiters_.push_back(h); }
  // Runs `f` once this state is done (at once when it is); combinators use it.
  void OnDone(std::function<void()> f);
  Scheduler* scheduler() const { return scheduler_; }

 private:
  void Settle();
  Scheduler* scheduler_;
  std::optional<Json> value_;
  std::exception_ptr error_;
  std::vector<std::coroutine_handle<>> waiters_;
  std::vector<std::function<void()>> on_done_;
};

template <typename T>
T FromJson(const Json& j) {
  if constexpr (std::is_same_v<T, Json>) {
    return j;
  } else {
    return j.get<T>();
  }
}

}  // namespace detail

template <typename T = Json>
class [[nodiscard]] Future {
 public:
  explicit Future(std::shared_ptr<detail::FutureState> s) : s_(std::move(s)) {}
  bool done() const { return s_->done(); }
  bool await_ready() const { return s_->done(); }
  void await_suspend(std::coroutine_handle<> h) const { s_->Await(h); }
  T await_resume() const {
    if (s_->error()) std::rethrow_exception(s_->error());
    if constexpr (!std::is_void_v<T>) return detail::FromJson<T>(s_->value());
  }
  const std::shared_ptr<detail::FutureState>& state() const { return s_; }

 private:
  std::shared_ptr<detail::FutureState> s_;
};

template <typename T>
class Workflow;

namespace detail {

template <typename T, typename Promise>
struct ReturnOf {
  void return_value(T v) { static_cast<Promise*>(this)->value = Json(std::move(v)); }
};
template <typename Promise>
struct ReturnOf<void, Promise> {
  void return_void() { static_cast<Promise*>(this)->value = Json(); }
};

}  // namespace detail

// A workflow coroutine. Lazy: it starts when awaited (or spawned).
template <typename T = Json>
class [[nodiscard]] Workflow {
 public:
  struct promise_type : detail::ReturnOf<T, promise_type> {
    std::coroutine_handle<> continuation;
    std::shared_ptr<detail::FutureState> spawned;  // set when it runs on its own
    std::optional<Json> value;
    std::exception_ptr error;
    Workflow get_return_object() { return Workflow(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        promise_type& p = h.promise();
        if (p.spawned) {
          if (p.error) {
            p.spawned->Reject(p.error);
          } else {
            p.spawned->Resolve(std::move(*p.value));
          }
          return std::noop_coroutine();
        }
        return p.continuation ? p.continuation : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void unhandled_exception() { error = std::current_exception(); }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Workflow(Workflow&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Workflow& operator=(Workflow&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Workflow(const Workflow&) = delete;
  Workflow& operator=(const Workflow&) = delete;
  ~Workflow() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) noexcept {
    h_.promise().continuation = c;
    return h_;
  }
  T await_resume() {
    auto& p = h_.promise();
    if (p.error) std::rethrow_exception(p.error);
    if constexpr (!std::is_void_v<T>) return detail::FromJson<T>(*p.value);
  }
  // Gives up the frame (to run it on its own, see WorkflowContext::Spawn).
  Handle Release() { return std::exchange(h_, {}); }

 private:
  explicit Workflow(Handle h) : h_(h) {}
  Handle h_;
};

}  // namespace flovyn
