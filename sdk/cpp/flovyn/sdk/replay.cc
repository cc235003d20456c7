#include "flovyn/sdk/replay.h"

#include <string_view>

#include "flovyn/sdk/client.h"

namespace flovyn {

namespace detail {

void FutureState::Resolve(Json v) {
  if (done()) return;
  value_ = std::move(v);
  Settle();
}

void FutureState::Reject(std::exception_ptr e) {
  if (done()) return;
  error_ = std::move(e);
  Settle();
}

void FutureState::OnDone(std::function<void()> f) {
  if (done()) {
    f();
  } else {
    on_done_.push_back(std::move(f));
  }
}

void FutureState::Settle() {
  for (auto h : waiters_) scheduler_->Ready(h);
  waiters_.clear();
  auto callbacks = std::move(on_done_);
  on_done_.clear();
  for (auto& f : callbacks) f();
}

namespace {

// The events a workflow's own steps append (one per step, in the order issued).
bool IsStep(std::string_view type) {
  return type == "TASK_SCHEDULED" || type == "TIMER_STARTED" || type == "TIMER_CANCELLED" ||
         type == "PROMISE_CREATED" || type == "CHILD_WORKFLOW_SCHEDULED" || type == "STATE_SET" ||
         type == "STATE_CLEARED" || type == "OPERATION_COMPLETED" || type == "SEARCH_ATTRIBUTES_SET";
}

Json Payload(const v1::WorkflowEvent& e) {
  Json p = Json::parse(e.payload_json(), nullptr, false);
  return p.is_object() ? p : Json::object();
}

std::string Str(const Json& p, const char* key) {
  auto it = p.find(key);
  return it != p.end() && it->is_string() ? it->get<std::string>() : "";
}

// How a step reads in a violation: its kind of step and what identifies it (a task's kind, a
// timer's or promise's name, a state key ...).
std::string Identity(std::string_view type, const std::string& key) {
  if (type == "TASK_SCHEDULED") return "task \"" + key + "\"";
  if (type == "TIMER_STARTED") return "timer \"" + key + "\"";
  if (type == "TIMER_CANCELLED") return "cancel of timer \"" + key + "\"";
  if (type == "PROMISE_CREATED") return "promise \"" + key + "\"";
  if (type == "CHILD_WORKFLOW_SCHEDULED") return "child workflow " + key;
  if (type == "STATE_SET") return "state \"" + key + "\" set";
  if (type == "STATE_CLEARED") return "state \"" + key + "\" cleared";
  if (type == "OPERATION_COMPLETED") return "step \"" + key + "\"";
  if (type == "SEARCH_ATTRIBUTES_SET") return "search attributes set";
  return "an unknown command";
}

std::string ChildKey(const std::string& kind, const std::string& name) { return "\"" + kind + "\" (" + name + ")"; }

// The event type a command appends and the key that identifies it.
std::pair<std::string, std::string> StepOf(const v1::WorkflowCommand& c) {
  using C = v1::WorkflowCommand;
  switch (c.command_case()) {
    case C::kScheduleTask:
      return {"TASK_SCHEDULED", c.schedule_task().kind()};
    case C::kStartTimer:
      return {"TIMER_STARTED", c.start_timer().name()};
    case C::kCancelTimer:
      return {"TIMER_CANCELLED", c.cancel_timer().name()};
    case C::kCreatePromise:
      return {"PROMISE_CREATED", c.create_promise().name()};
    case C::kScheduleChildWorkflow:
      return {"CHILD_WORKFLOW_SCHEDULED",
              ChildKey(c.schedule_child_workflow().kind(), c.schedule_child_workflow().name())};
    case C::kSetState:
      return {"STATE_SET", c.set_state().key()};
    case C::kClearState:
      return {"STATE_CLEARED", c.clear_state().key()};
    case C::kRecordOperation:
      return {"OPERATION_COMPLETED", c.record_operation().name()};
    case C::kSetSearchAttributes:
      return {"SEARCH_ATTRIBUTES_SET", ""};
    default:
      return {"", ""};
  }
}

// The key of a recorded step, from its payload.
std::string KeyOf(const v1::WorkflowEvent& e) {
  Json p = Payload(e);
  const std::string& t = e.type();
  if (t == "TASK_SCHEDULED") return Str(p, "kind");
  if (t == "CHILD_WORKFLOW_SCHEDULED") return ChildKey(Str(p, "kind"), Str(p, "name"));
  if (t == "STATE_SET" || t == "STATE_CLEARED") return Str(p, "key");
  return Str(p, "name");
}

std::string Describe(const v1::WorkflowEvent& e) {
  return Identity(e.type(), KeyOf(e)) + " (" + e.type() + ", sequence " + std::to_string(e.sequence()) + ")";
}

std::string MessageOf(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

bool IsCancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

Replay::Replay(std::string id, const std::vector<v1::WorkflowEvent>& events)
    : rng(Fnv1a(id)), execution_id(std::move(id)) {
  events_.reserve(events.size());
  for (const auto& e : events) Add(e);
}

Replay::~Replay() {
  // The frames go before the context they refer to (ctx_, a member, is destroyed after this).
  for (auto& destroy : owned_) destroy();
}

void Replay::Add(const v1::WorkflowEvent& e) {
  events_.push_back(e);
  const std::string& t = e.type();
  if (IsStep(t)) {
    recorded_.push_back(events_.size() - 1);
    if (t == "TIMER_STARTED") {
      Json p = Payload(e);
      timer_deadlines[Str(p, "name")] = p.value("fireAtMs", int64_t{0});
    } else if (t == "TIMER_CANCELLED") {
      timer_deadlines.erase(Str(Payload(e), "name"));
    }
  } else if (t == "TIMER_FIRED") {
    timer_deadlines.erase(Str(Payload(e), "name"));  // only pending timers keep their deadline
  } else if (t == "TASK_COMPLETED" || t == "TASK_FAILED" || t == "TASK_CANCELLED") {
    ended_tasks_.insert(Payload(e).value("scheduledSequence", int64_t{0}));
  } else if (t == "CHILD_WORKFLOW_COMPLETED" || t == "CHILD_WORKFLOW_FAILED") {
    ended_children_.insert(Str(Payload(e), "name"));
  }
}

std::vector<std::pair<std::string, int64_t>> Replay::PendingTimers() const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& [name, s] : timers) {
    if (auto d = timer_deadlines.find(name); d != timer_deadlines.end()) out.emplace_back(name, d->second);
  }
  return out;
}

void Replay::Own(std::coroutine_handle<> h, std::function<void()> destroy) {
  owned_.push_back(std::move(destroy));
  Ready(h);
}

Replay::Match Replay::Issue(const v1::WorkflowCommand& c, const v1::WorkflowEvent** event, Bind bind) {
  if (!violation_.empty()) return Match::kViolated;
  auto [type, key] = StepOf(c);
  if (!replaying()) {
    out_.push_back(c);
    unbound_.emplace_back(type, std::move(bind));
    return Match::kNew;
  }
  const v1::WorkflowEvent& e = events_[recorded_[next_]];
  if (type != e.type() || key != KeyOf(e)) {
    violation_ = "determinism violation at step " + std::to_string(next_ + 1) + ": the history holds " + Describe(e) +
                 ", the code issued " + Identity(type, key);
    return Match::kViolated;
  }
  ++next_;
  *event = &e;
  if (bind) bind(e);
  return Match::kReplayed;
}

void Replay::Append(const std::vector<v1::WorkflowEvent>& appended) {
  for (const auto& e : appended) {
    if (!violation_.empty()) return;
    if (e.sequence() <= last_sequence()) continue;
    Add(e);
    if (!IsStep(e.type())) continue;
    if (unbound_.empty() || unbound_.front().first != e.type()) {
      violation_ = "the server recorded " + Describe(e) + " for a step the code did not issue";
      return;
    }
    Bind bind = std::move(unbound_.front().second);
    unbound_.pop_front();
    ++next_;
    if (bind) bind(events_.back());
  }
}

void Replay::Cancel(const std::shared_ptr<FutureState>& s) {
  if (s->done() || !violation_.empty()) return;
  std::string what = "step";
  if (auto t = task_seq.find(s); t != task_seq.end()) {
    if (t->second != 0) {
      tasks.erase(t->second);
      cancel_tasks_.insert(t->second);
    } else {
      cancel_unbound_.insert(s);  // cancelled once its step is recorded
    }
    what = "task";
  } else if (auto child = child_names.find(s); child != child_names.end()) {
    children.erase(child->second);
    cancel_children_.insert(child->second);
    what = "child workflow " + child->second;
  } else if (auto n = timer_names.find(s); n != timer_names.end()) {
    std::string name = n->second;
    timers.erase(name);
    v1::WorkflowCommand c;
    c.mutable_cancel_timer()->set_name(name);
    const v1::WorkflowEvent* e = nullptr;
    if (Issue(c, &e) == Match::kViolated) return;
    what = "timer \"" + name + "\"";
  } else {
    for (auto it = promises.begin(); it != promises.end(); ++it) {
      if (it->second != s) continue;
      what = "promise \"" + it->first + "\"";
      promises.erase(it);
      break;
    }
    for (auto& [name, waiting] : signal_waiters) {
      for (auto it = waiting.begin(); it != waiting.end(); ++it) {
        if (*it != s) continue;
        what = "wait for signal \"" + name + "\"";
        waiting.erase(it);
        break;
      }
    }
  }
  s->Reject(std::make_exception_ptr(Cancelled(what + " cancelled")));
}

void Replay::BindTask(const std::shared_ptr<FutureState>& s, int64_t seq) {
  task_seq[s] = seq;
  if (cancel_unbound_.erase(s) > 0) {
    cancel_tasks_.insert(seq);
  } else if (!s->done()) {
    tasks[seq] = s;
  }
}

void Replay::CancelAll(const std::string& why) {
  std::vector<std::shared_ptr<FutureState>> pending;
  for (auto& [seq, s] : tasks) {
    pending.push_back(s);
    cancel_tasks_.insert(seq);
  }
  tasks.clear();
  for (auto& [s, seq] : task_seq) {
    if (seq == 0 && !s->done()) {
      pending.push_back(s);
      cancel_unbound_.insert(s);
    }
  }
  for (auto& [name, s] : children) {
    pending.push_back(s);
    cancel_children_.insert(name);
  }
  children.clear();
  // Timers keep running on the server; their TIMER_FIRED finds nobody waiting.
  for (auto& [name, s] : timers) pending.push_back(s);
  timers.clear();
  for (auto& [name, s] : promises) pending.push_back(s);
  promises.clear();
  for (auto& [name, waiting] : signal_waiters) {
    for (auto& s : waiting) pending.push_back(s);
  }
  signal_waiters.clear();
  auto error = std::make_exception_ptr(Cancelled(why));
  for (auto& s : pending) s->Reject(error);
}

void Replay::Drain() {
  while (!ready_.empty() && violation_.empty()) {
    auto h = ready_.front();
    ready_.pop_front();
    h.resume();
  }
}

void Replay::Deliver(const v1::WorkflowEvent& e) {
  now_ms = std::max(now_ms, e.created_at_ms());
  const std::string& t = e.type();
  if (IsStep(t) || t == "TASK_STARTED") return;
  Json p = Payload(e);
  if (t == "CANCELLATION_REQUESTED") {
    if (cancel_requested) return;
    cancel_requested = true;
    cancel_reason = Str(p, "reason");
    CancelAll(cancel_reason.empty() ? "workflow cancelled" : "workflow cancelled: " + cancel_reason);
    return;
  }
  auto settle = [](auto& map, const auto& key) -> std::shared_ptr<FutureState> {
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    auto s = it->second;
    map.erase(it);
    return s;
  };
  auto fail = [](const std::shared_ptr<FutureState>& s, auto error) {
    if (s) s->Reject(std::make_exception_ptr(error));
  };
  if (t == "TASK_COMPLETED" || t == "TASK_FAILED" || t == "TASK_CANCELLED") {
    auto s = settle(tasks, p.value("scheduledSequence", int64_t{0}));
    if (t == "TASK_COMPLETED" && s) s->Resolve(p.value("output", Json()));
    if (t == "TASK_FAILED") fail(s, TaskFailed(Str(p, "error"), p.value("attempts", 0)));
    if (t == "TASK_CANCELLED") fail(s, Cancelled("task cancelled: " + Str(p, "reason")));
  } else if (t == "TIMER_FIRED") {
    if (auto s = settle(timers, Str(p, "name"))) s->Resolve(Json());
  } else if (t == "PROMISE_RESOLVED" || t == "PROMISE_REJECTED" || t == "PROMISE_TIMED_OUT") {
    auto s = settle(promises, Str(p, "name"));
    if (t == "PROMISE_RESOLVED" && s) s->Resolve(p.value("value", Json()));
    if (t == "PROMISE_REJECTED") fail(s, PromiseRejected(p.value("error", Json("")).dump()));
    if (t == "PROMISE_TIMED_OUT") fail(s, TimedOut("promise \"" + Str(p, "name") + "\" timed out"));
  } else if (t == "CHILD_WORKFLOW_COMPLETED" || t == "CHILD_WORKFLOW_FAILED") {
    auto s = settle(children, Str(p, "name"));
    if (t == "CHILD_WORKFLOW_COMPLETED" && s) s->Resolve(p.value("output", Json()));
    if (t == "CHILD_WORKFLOW_FAILED") fail(s, ChildFailed(Str(p, "error"), Str(p, "status")));
  } else if (t == "SIGNAL_RECEIVED") {
    std::string name = Str(p, "name");
    auto& waiting = signal_waiters[name];
    if (waiting.empty()) {
      signals[name].push_back(p.value("payload", Json()));
    } else {
      auto s = waiting.front();
      waiting.pop_front();
      s->Resolve(p.value("payload", Json()));
    }
  }
}

Decision Replay::Run(const WorkflowFactory& workflow) {
  if (events_.empty() || events_[0].type() != "WORKFLOW_STARTED") {
    Decision d;
    d.violation = "the history does not start with WORKFLOW_STARTED";
    return d;
  }
  now_ms = events_[0].created_at_ms();
  delivered_ = 1;
  ctx_ = std::make_unique<WorkflowContext>(*this);
  root_ = ctx_->Spawn(workflow(*ctx_, Payload(events_[0]).value("input", Json()))).state();
  Drain();
  return Activate();
}

Decision Replay::Continue(const std::vector<v1::WorkflowEvent>& more) {
  for (const auto& e : more) {
    if (e.sequence() > last_sequence()) Add(e);
  }
  return Activate();
}

Decision Replay::Activate() {
  Decision d;
  while (violation_.empty() && delivered_ < Frontier()) {
    Deliver(events_[delivered_++]);
    Drain();
  }
  if (violation_.empty() && replaying()) {
    violation_ = "determinism violation at step " + std::to_string(next_ + 1) + ": the history holds " +
                 Describe(events_[recorded_[next_]]) + ", the code issued nothing and waits";
  }
  if (!violation_.empty()) {
    d.violation = violation_;
    return d;
  }
  d.commands = std::move(out_);
  out_.clear();
  // Cancellations of tasks and children still open (not steps: nothing to match on replay).
  for (int64_t seq : cancel_tasks_) {
    if (ended_tasks_.count(seq) > 0 || !cancelled_tasks_.insert(seq).second) continue;
    v1::WorkflowCommand c;
    c.mutable_cancel_scheduled_task()->set_scheduled_sequence(seq);
    d.commands.push_back(std::move(c));
  }
  for (const auto& name : cancel_children_) {
    if (ended_children_.count(name) > 0 || !cancelled_children_.insert(name).second) continue;
    v1::WorkflowCommand c;
    c.mutable_cancel_child_workflow()->set_name(name);
    d.commands.push_back(std::move(c));
  }
  if (continue_as_new) {
    d.completed = true;
    v1::WorkflowCommand c;
    c.mutable_continue_as_new()->set_input_json(continue_as_new->dump());
    d.commands.push_back(std::move(c));
  } else if (root_->done()) {
    d.completed = true;
    if (root_->error()) {
      v1::WorkflowCommand c = sdk::Fail(MessageOf(root_->error()));
      // Stopped by the cancellation it was asked for: the execution ends CANCELLED.
      c.mutable_fail_workflow()->set_cancelled(cancel_requested && IsCancellation(root_->error()));
      d.commands.push_back(std::move(c));
    } else {
      d.commands.push_back(sdk::Complete(root_->value().dump()));
    }
  } else {
    d.commands.push_back(sdk::Suspend());
  }
  return d;
}

}  // namespace detail

Decision Decide(const std::string& execution_id, const std::vector<v1::WorkflowEvent>& events,
                const WorkflowFactory& workflow) {
  detail::Replay r(execution_id, events);
  return r.Run(workflow);
}

}  // namespace flovyn
