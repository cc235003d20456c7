// Deterministic replay: runs a workflow coroutine over an execution's history and decides what
// to submit next.
//
// The history is delivered to the code one event at a time, in order, and the code runs until it
// waits after each. The code sees the events before the next recorded step it has not issued
// yet: when it issues a step, the step is matched against the next recorded one (type and name,
// kind or key) and the events up to the following recorded step become visible. So every
// decision sees exactly what it saw when it first ran, and a later replay takes the same path.
// Once every recorded step is matched, the steps the code issues are new: they are the commands
// to submit.
//
// A Replay can also stay alive between activations (the worker's cache): Append hands it the
// events the submitted commands appended (each new step binds to the recorded event, as a replay
// would have matched it) and Continue the events that came after, so each activation costs what
// its new events cost, not the whole history again.
#pragma once

#include <coroutine>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "flovyn/sdk/workflow.h"
#include "flovyn/v1/flovyn.pb.h"

namespace flovyn {

struct Decision {
  // The commands to submit: new steps, then CompleteWorkflow, FailWorkflow or Suspend. Empty
  // when the code is not deterministic (see violation).
  std::vector<v1::WorkflowCommand> commands;
  // Set when the code did not take the recorded path: names the step, what the history holds
  // and what the code did. Nothing may be submitted.
  std::string violation;
  bool completed = false;  // the workflow finished (commands end with Complete or Fail)
};

// Replays `events` (the full history, from WORKFLOW_STARTED) through the workflow.
Decision Decide(const std::string& execution_id, const std::vector<v1::WorkflowEvent>& events,
                const WorkflowFactory& workflow);

namespace detail {

class Replay final : public Scheduler {
 public:
  Replay(std::string execution_id, const std::vector<v1::WorkflowEvent>& events);
  ~Replay() override;
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  // The first activation: the code runs from the start over the events given at construction.
  Decision Run(const WorkflowFactory& workflow);
  // The events the last decision's commands appended (SubmitWorkflowCommandsResponse.events), in
  // order. Their steps bind to the steps the code issued; the others wait for Continue.
  void Append(const std::vector<v1::WorkflowEvent>& appended);
  // A later activation: the events after last_sequence(), delivered to the waiting code.
  Decision Continue(const std::vector<v1::WorkflowEvent>& more);
  int64_t last_sequence() const { return events_.empty() ? 0 : events_.back().sequence(); }
  bool broken() const { return !violation_.empty(); }  // keep it no longer
  // The code waits for the task scheduled at `seq` and for nothing else that the server records
  // on its own (another task, a timer, a child): that task's result is the next event.
  bool WaitsOnlyFor(int64_t seq) const {
    return tasks.size() == 1 && tasks.count(seq) == 1 && timers.empty() && children.empty() && promises.empty();
  }
  // The timers the code waits for whose TIMER_STARTED is recorded, with their deadlines (ms since
  // the epoch, as the server set them).
  std::vector<std::pair<std::string, int64_t>> PendingTimers() const;
  void Ready(std::coroutine_handle<> h) override { ready_.push_back(h); }

  // The context's operations.
  enum class Match { kReplayed, kNew, kViolated };
  // Called with a step's recorded event once it is known: at once when replayed, at Append when
  // the step is new.
  using Bind = std::function<void(const v1::WorkflowEvent&)>;
  // Matches a step against the next recorded one (or queues it as new). On kReplayed, `event`
  // is the recorded event.
  Match Issue(const v1::WorkflowCommand& c, const v1::WorkflowEvent** event, Bind bind = {});
  // Cancels what a future stands for: a task or child is cancelled on the server at the end of
  // the activation (CancelScheduledTask, CancelChildWorkflow), a timer by a CancelTimer step;
  // the future fails with Cancelled.
  void Cancel(const std::shared_ptr<FutureState>& s);
  // A task's step is recorded at `seq`: its result settles `s` (or, cancelled already, it is
  // cancelled on the server).
  void BindTask(const std::shared_ptr<FutureState>& s, int64_t seq);
  std::shared_ptr<FutureState> NewState() { return std::make_shared<FutureState>(this); }
  void Own(std::coroutine_handle<> h, std::function<void()> destroy);

  std::map<int64_t, std::shared_ptr<FutureState>> tasks;       // by TASK_SCHEDULED sequence
  std::map<std::string, std::shared_ptr<FutureState>> timers;  // by name
  std::map<std::string, int64_t> timer_deadlines;              // pending, by name: TIMER_STARTED's fireAtMs
  std::map<std::shared_ptr<FutureState>, std::string> timer_names;
  std::map<std::string, std::shared_ptr<FutureState>> promises;
  std::map<std::string, std::shared_ptr<FutureState>> children;
  std::map<std::shared_ptr<FutureState>, int64_t> task_seq;  // 0 until the step is recorded
  std::map<std::shared_ptr<FutureState>, std::string> child_names;
  std::map<std::string, std::deque<Json>> signals;  // received, not yet taken
  std::map<std::string, std::deque<std::shared_ptr<FutureState>>> signal_waiters;
  std::map<std::string, Json> state;
  int timer_count = 0;
  int child_count = 0;
  int64_t now_ms = 0;
  bool cancel_requested = false;
  std::string cancel_reason;
  std::optional<Json> continue_as_new;  // the input of the next run, once the code asked
  std::mt19937_64 rng;
  std::string execution_id;

  bool replaying() const { return next_ < recorded_.size(); }
  // Peeks at the next recorded step (nullptr when there is none).
  const v1::WorkflowEvent* NextRecorded() const { return replaying() ? &events_[recorded_[next_]] : nullptr; }
  void SkipRecorded() { ++next_; }

 private:
  size_t Frontier() const { return next_ < recorded_.size() ? recorded_[next_] : events_.size(); }
  void Deliver(const v1::WorkflowEvent& e);
  void Drain();
  void Add(const v1::WorkflowEvent& e);  // to the history: recorded steps and what ended
  // Delivers up to the frontier, then decides.
  Decision Activate();
  void CancelAll(const std::string& why);  // a cancellation of the workflow reaches every pending step

  std::vector<v1::WorkflowEvent> events_;
  std::vector<size_t> recorded_;  // indexes of the events the workflow's own steps appended
  size_t next_ = 0;               // the next recorded step to match
  size_t delivered_ = 0;          // events [0, delivered_) delivered
  std::deque<std::coroutine_handle<>> ready_;
  std::vector<v1::WorkflowCommand> out_;
  std::string violation_;
  std::vector<std::function<void()>> owned_;          // destroys the spawned frames
  std::deque<std::pair<std::string, Bind>> unbound_;  // new steps issued, their events not yet appended
  std::set<int64_t> ended_tasks_;                     // by TASK_SCHEDULED sequence
  std::set<std::string> ended_children_;              // by name
  std::set<int64_t> cancel_tasks_, cancelled_tasks_;  // to cancel; cancel submitted
  std::set<std::string> cancel_children_, cancelled_children_;
  std::set<std::shared_ptr<FutureState>> cancel_unbound_;  // tasks cancelled before their step was recorded
  std::unique_ptr<WorkflowContext> ctx_;
  std::shared_ptr<FutureState> root_;
};

}  // namespace detail
}  // namespace flovyn
