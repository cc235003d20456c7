// The workflow context's steps: each builds the command the step stands for and hands it to the
// replay, which matches it against the history or queues it to be submitted.
#include <cstdio>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

namespace flovyn {

using detail::FutureState;
using detail::Replay;
using M = Replay::Match;

namespace {

Json PayloadOf(const v1::WorkflowEvent* e) {
  Json p = Json::parse(e->payload_json(), nullptr, false);
  return p.is_object() ? p : Json::object();
}

}  // namespace

std::optional<Json> WorkflowState::Get(const std::string& key) const {
  auto it = r_.state.find(key);
  if (it == r_.state.end()) return std::nullopt;
  return it->second;
}

void WorkflowState::Set(const std::string& key, const Json& value) {
  const v1::WorkflowEvent* e = nullptr;
  if (r_.Issue(sdk::SetState(key, value.dump()), &e) != M::kViolated) r_.state[key] = value;
}

void WorkflowState::Clear(const std::string& key) {
  v1::WorkflowCommand c;
  c.mutable_clear_state()->set_key(key);
  const v1::WorkflowEvent* e = nullptr;
  if (r_.Issue(c, &e) != M::kViolated) r_.state.erase(key);
}

std::shared_ptr<FutureState> WorkflowContext::NewState() { return r_.NewState(); }

void WorkflowContext::Start(std::coroutine_handle<> h, std::function<void()> destroy) { r_.Own(h, std::move(destroy)); }

std::shared_ptr<FutureState> WorkflowContext::IssueTask(const std::string& kind, const Json& input,
                                                        const TaskOptions& o) {
  v1::WorkflowCommand c = sdk::ScheduleTask(kind, input.dump(), o.max_attempts, o.initial_backoff.count(), o.queue);
  c.mutable_schedule_task()->set_max_backoff_ms(o.max_backoff.count());
  c.mutable_schedule_task()->set_lease_ms(o.lease.count());
  const v1::WorkflowEvent* e = nullptr;
  auto s = r_.NewState();
  r_.task_seq[s] = 0;
  Replay& r = r_;
  (void)r_.Issue(c, &e, [&r, s](const v1::WorkflowEvent& scheduled) { r.BindTask(s, scheduled.sequence()); });
  return s;
}

std::shared_ptr<FutureState> WorkflowContext::IssueTimer(std::chrono::milliseconds d) {
  std::string name = "timer-" + std::to_string(++r_.timer_count);
  const v1::WorkflowEvent* e = nullptr;
  auto s = r_.NewState();
  if (r_.Issue(sdk::StartTimer(name, d.count()), &e) == M::kViolated) return s;
  r_.timers[name] = s;
  r_.timer_names[s] = name;
  return s;
}

void WorkflowContext::Cancel(const std::shared_ptr<FutureState>& step) { r_.Cancel(step); }

std::shared_ptr<FutureState> WorkflowContext::IssuePromise(const std::string& name, std::chrono::milliseconds timeout) {
  const v1::WorkflowEvent* e = nullptr;
  auto s = r_.NewState();
  if (r_.Issue(sdk::CreatePromise(name, timeout.count()), &e) != M::kViolated) r_.promises[name] = s;
  return s;
}

std::shared_ptr<FutureState> WorkflowContext::WaitSignal(const std::string& name) {
  auto s = r_.NewState();
  if (auto v = TakeSignal(name)) {
    s->Resolve(std::move(*v));
  } else {
    r_.signal_waiters[name].push_back(s);
  }
  return s;
}

std::optional<Json> WorkflowContext::TakeSignal(const std::string& name) {
  auto it = r_.signals.find(name);
  if (it == r_.signals.end() || it->second.empty()) return std::nullopt;
  Json v = std::move(it->second.front());
  it->second.pop_front();
  return v;
}

std::shared_ptr<FutureState> WorkflowContext::IssueChild(const std::string& kind, const Json& input,
                                                         const std::string& queue) {
  std::string name = "child-" + std::to_string(++r_.child_count);
  const v1::WorkflowEvent* e = nullptr;
  auto s = r_.NewState();
  if (r_.Issue(sdk::ScheduleChild(name, kind, input.dump(), queue), &e) != M::kViolated) {
    r_.children[name] = s;
    r_.child_names[s] = name;
  }
  return s;
}

std::shared_ptr<FutureState> WorkflowContext::IssueRun(const std::string& name, const std::function<Json()>& fn) {
  auto s = r_.NewState();
  Json result;
  if (!r_.replaying()) {
    try {
      result = fn();
    } catch (const std::exception& x) {
      result = Json{{"$error", x.what()}};
    }
  }
  const v1::WorkflowEvent* e = nullptr;
  switch (r_.Issue(sdk::RecordOperation(name, result.dump()), &e)) {
    case M::kViolated:
      return s;
    case M::kReplayed:
      result = PayloadOf(e).value("result", Json());
      break;
    case M::kNew:
      break;
  }
  if (result.is_object() && result.size() == 1 && result.contains("$error")) {
    s->Reject(std::make_exception_ptr(
        StepFailed(result["$error"].is_string() ? result["$error"].get<std::string>() : result["$error"].dump())));
  } else {
    s->Resolve(std::move(result));
  }
  return s;
}

std::chrono::system_clock::time_point WorkflowContext::Now() const {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(r_.now_ms));
}

uint64_t WorkflowContext::Random() { return r_.rng(); }

std::string WorkflowContext::Uuid() {
  uint64_t hi = r_.rng();
  uint64_t lo = r_.rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

void WorkflowContext::SetSearchAttributes(const Json& attributes) {
  const v1::WorkflowEvent* e = nullptr;
  (void)r_.Issue(sdk::SetSearchAttributes(attributes.dump()), &e);
}

bool WorkflowContext::Patched(const std::string& change_id) {
  std::string marker = "patch:" + change_id;
  if (const v1::WorkflowEvent* next = r_.NextRecorded()) {
    if (next->type() != "OPERATION_COMPLETED" || PayloadOf(next).value("name", "") != marker) return false;
    r_.SkipRecorded();
    return true;
  }
  const v1::WorkflowEvent* e = nullptr;
  return r_.Issue(sdk::RecordOperation(marker, "true"), &e) == M::kNew;
}

std::shared_ptr<FutureState> WorkflowContext::IssueContinueAsNew(const Json& input) {
  if (!r_.continue_as_new) r_.continue_as_new = input;
  return r_.NewState();  // never settles: this run ends with the decision
}

bool WorkflowContext::CancelRequested() const { return r_.cancel_requested; }
const std::string& WorkflowContext::ExecutionId() const { return r_.execution_id; }
bool WorkflowContext::IsReplaying() const { return r_.replaying(); }

}  // namespace flovyn
