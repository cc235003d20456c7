// The coroutine SDK's replay over hand-built histories: what each decision submits, what the
// code sees at each point, and the verdict when the code leaves the recorded path.
#include <gtest/gtest.h>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

namespace flovyn {
namespace {

using namespace std::chrono_literals;

// Builds a history: each call appends one event with the next sequence number.
class H {
 public:
  explicit H(const Json& input) { Add("WORKFLOW_STARTED", {{"kind", "k"}, {"queue", "default"}, {"input", input}}); }
  H& Add(const std::string& type, const Json& payload) {
    v1::WorkflowEvent e;
    e.set_sequence(static_cast<int64_t>(events_.size()) + 1);
    e.set_type(type);
    e.set_payload_json(payload.dump());
    e.set_created_at_ms(1'800'000'000'000 + e.sequence() * 1000);
    events_.push_back(e);
    return *this;
  }
  H& Task(const std::string& kind) { return Add("TASK_SCHEDULED", {{"taskId", "t"}, {"kind", kind}}); }
  H& Done(int64_t scheduled, const Json& output) {
    return Add("TASK_COMPLETED", {{"scheduledSequence", scheduled}, {"output", output}});
  }
  H& Timer(const std::string& name) { return Add("TIMER_STARTED", {{"name", name}}); }
  H& Fired(const std::string& name) { return Add("TIMER_FIRED", {{"name", name}}); }
  H& Signal(const std::string& name, const Json& payload) {
    return Add("SIGNAL_RECEIVED", {{"name", name}, {"payload", payload}});
  }
  const std::vector<v1::WorkflowEvent>& events() const { return events_; }
  int64_t last() const { return static_cast<int64_t>(events_.size()); }

 private:
  std::vector<v1::WorkflowEvent> events_;
};

std::string Kinds(const Decision& d) {
  std::string out;
  for (const auto& c : d.commands) {
    if (!out.empty()) out += " ";
    switch (c.command_case()) {
      case v1::WorkflowCommand::kScheduleTask:
        out += "task:" + c.schedule_task().kind();
        break;
      case v1::WorkflowCommand::kStartTimer:
        out += "timer:" + c.start_timer().name();
        break;
      case v1::WorkflowCommand::kCancelTimer:
        out += "cancel:" + c.cancel_timer().name();
        break;
      case v1::WorkflowCommand::kSetState:
        out += "state:" + c.set_state().key() + "=" + c.set_state().value_json();
        break;
      case v1::WorkflowCommand::kRecordOperation:
        out += "op:" + c.record_operation().name() + "=" + c.record_operation().result_json();
        break;
      case v1::WorkflowCommand::kCompleteWorkflow:
        out += "complete:" + c.complete_workflow().output_json();
        break;
      case v1::WorkflowCommand::kFailWorkflow:
        out += "fail:" + c.fail_workflow().error();
        break;
      case v1::WorkflowCommand::kSuspend:
        out += "suspend";
        break;
      case v1::WorkflowCommand::kCancelScheduledTask:
        out += "cancel-task:" + std::to_string(c.cancel_scheduled_task().scheduled_sequence());
        break;
      case v1::WorkflowCommand::kCancelChildWorkflow:
        out += "cancel-child:" + c.cancel_child_workflow().name();
        break;
      default:
        out += "other";
        break;
    }
  }
  return out;
}

Workflow<int> Math(WorkflowContext& ctx, Json in) {
  int sum = co_await ctx.Task<int>("add", in);
  int doubled = co_await ctx.Task<int>("double", sum);
  co_return doubled;
}

TEST(SdkReplayTest, ASequenceIssuesEachTaskOnceItsPredecessorIsInTheHistory) {
  auto wf = MakeWorkflow(Math);
  H h(Json{{"a", 2}});
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "task:add suspend");
  h.Task("add").Add("TASK_STARTED", {{"taskId", "t"}});
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "suspend") << "nothing new while the task runs";
  h.Done(2, 5);
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "task:double suspend");
  h.Task("double");
  h.Done(h.last(), 10);
  Decision d = Decide("e", h.events(), wf);
  EXPECT_EQ(Kinds(d), "complete:10");
  EXPECT_TRUE(d.completed);
}

std::vector<v1::WorkflowEvent> Slice(const H& h, int64_t from, int64_t to) {  // sequences [from, to]
  return {h.events().begin() + (from - 1), h.events().begin() + to};
}

// A kept replay gets the events its own commands appended, then the ones after: it decides what
// a replay from the start decides, without running the code from the start again.
TEST(SdkReplayTest, AKeptReplayRunsOnFromTheNewEventsAndDecidesAsAReplayFromTheStartWould) {
  auto wf = MakeWorkflow(Math);
  H h(Json{{"a", 2}});
  h.Task("add").Add("TASK_STARTED", {{"taskId", "t"}}).Done(2, 5).Task("double").Done(5, 10);
  detail::Replay kept("e", Slice(h, 1, 1));
  EXPECT_EQ(Kinds(kept.Run(wf)), "task:add suspend");
  kept.Append(Slice(h, 2, 2));  // what the submit appended
  EXPECT_EQ(kept.last_sequence(), 2);
  Decision d = kept.Continue(Slice(h, 3, 4));
  EXPECT_EQ(Kinds(d), "task:double suspend");
  EXPECT_EQ(Kinds(d), Kinds(Decide("e", Slice(h, 1, 4), wf)));
  kept.Append(Slice(h, 5, 5));
  d = kept.Continue(Slice(h, 6, 6));
  EXPECT_EQ(Kinds(d), "complete:10");
  EXPECT_TRUE(d.completed);
  EXPECT_FALSE(kept.broken());
}

TEST(SdkReplayTest, AKeptReplayThatIsAppendedAStepItDidNotIssueIsBroken) {
  auto wf = MakeWorkflow(Math);
  H h(Json{{"a", 2}});
  h.Timer("timer-1");
  detail::Replay kept("e", Slice(h, 1, 1));
  EXPECT_EQ(Kinds(kept.Run(wf)), "task:add suspend");
  kept.Append(Slice(h, 2, 2));
  EXPECT_TRUE(kept.broken());
}

Workflow<std::string> Payment(WorkflowContext& ctx, Json) {
  bool cancelled = false;
  try {
    co_await ctx.Task("pay", 1);
  } catch (const Cancelled&) {
    cancelled = true;
  }
  if (cancelled) {
    co_await ctx.Task("refund", 1);
    throw Cancelled("refunded");
  }
  co_return "paid";
}

// A cancellation request fails the step the code waits for; the code compensates with new
// steps, the pending task is cancelled on the server, and Cancelled escaping ends it CANCELLED.
TEST(SdkReplayTest, ACancellationRequestFailsThePendingStepTheCodeCompensatesAndEndsCancelled) {
  auto wf = MakeWorkflow(Payment);
  H h(Json::object());
  h.Task("pay").Add("CANCELLATION_REQUESTED", {{"reason", "stop"}, {"graceMs", 1000}});
  Decision d = Decide("e", h.events(), wf);
  EXPECT_EQ(Kinds(d), "task:refund cancel-task:2 suspend");
  h.Task("refund").Add("TASK_CANCELLED", {{"scheduledSequence", 2}, {"reason", "cancelled by its workflow"}});
  h.Done(4, nullptr);
  d = Decide("e", h.events(), wf);
  EXPECT_EQ(Kinds(d), "fail:refunded") << "the task ended already: no second cancel";
  ASSERT_FALSE(d.commands.empty());
  EXPECT_TRUE(d.commands.back().fail_workflow().cancelled());
  // Cancelled without a request (a task cancelled over REST) fails the workflow as usual.
  H plain(Json::object());
  plain.Task("pay").Add("TASK_CANCELLED", {{"scheduledSequence", 2}, {"reason", "ops"}});
  plain.Task("refund").Done(4, nullptr);
  d = Decide("e", plain.events(), wf);
  EXPECT_EQ(Kinds(d), "fail:refunded");
  EXPECT_FALSE(d.commands.back().fail_workflow().cancelled());
}

TEST(SdkReplayTest, AStepThatDiffersFromTheHistoryIsAViolationNamingBothAndSubmitsNothing) {
  auto wf = MakeWorkflow(Math);
  H h(Json{{"a", 2}});
  h.Task("charge");
  Decision d = Decide("e", h.events(), wf);
  EXPECT_TRUE(d.commands.empty());
  EXPECT_NE(d.violation.find("step 1"), std::string::npos) << d.violation;
  EXPECT_NE(d.violation.find("task \"charge\" (TASK_SCHEDULED, sequence 2)"), std::string::npos) << d.violation;
  EXPECT_NE(d.violation.find("the code issued task \"add\""), std::string::npos) << d.violation;
}

TEST(SdkReplayTest, CodeThatStopsShortOfTheRecordedStepsIsAViolation) {
  auto wf = MakeWorkflow(std::function<Workflow<int>(WorkflowContext&, Json)>(
      [](WorkflowContext& ctx, Json) -> Workflow<int> { co_return co_await ctx.Promise<int>("never"); }));
  H h(Json::object());
  h.Add("PROMISE_CREATED", {{"name", "never"}}).Task("extra");
  Decision d = Decide("e", h.events(), wf);
  EXPECT_NE(d.violation.find("step 2: the history holds task \"extra\""), std::string::npos) << d.violation;
  EXPECT_NE(d.violation.find("issued nothing"), std::string::npos) << d.violation;
}

TEST(SdkReplayTest, AnUncaughtExceptionFailsTheWorkflowAndACaughtFailureCanCompensate) {
  auto wf = MakeWorkflow(std::function<Workflow<std::string>(WorkflowContext&, Json)>(
      [](WorkflowContext& ctx, Json) -> Workflow<std::string> {
        std::optional<TaskFailed> failed;
        try {
          co_await ctx.Task("charge", 1);
        } catch (const TaskFailed& e) {
          failed = e;
        }
        if (!failed) co_return "charged";
        co_await ctx.Task("refund", failed->error);
        throw std::runtime_error("order abandoned after " + std::to_string(failed->attempts) + " attempts");
      }));
  H h(Json::object());
  h.Task("charge").Add("TASK_FAILED", {{"scheduledSequence", 2}, {"error", "card declined"}, {"attempts", 3}});
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "task:refund suspend");
  h.Task("refund").Done(4, nullptr);
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "fail:order abandoned after 3 attempts");
}

TEST(SdkReplayTest, NonBlockingChecksSeeOnlyWhatTheOriginalDecisionSaw) {
  // Events reach the code one at a time and it runs after each, up to the next step it recorded:
  // after the first timer it saw one signal and recorded "seen" = 1, although two more are in
  // the history now; the replay must see one again, and the rest after the second timer.
  auto wf = MakeWorkflow(
      std::function<Workflow<Json>(WorkflowContext&, Json)>([](WorkflowContext& ctx, Json) -> Workflow<Json> {
        co_await ctx.Sleep(1s);
        auto early = ctx.DrainSignals<int>("n");
        ctx.State().Set("seen", early.size());
        co_await ctx.Sleep(1s);
        auto later = ctx.DrainSignals<int>("n");
        co_return Json{{"early", early}, {"later", later}};
      }));
  H h(Json::object());
  h.Timer("timer-1").Signal("n", 1).Fired("timer-1").Signal("n", 2);
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "state:seen=1 timer:timer-2 suspend")
      << "the code ran when the timer fired, before the second signal";
  h.Add("STATE_SET", {{"key", "seen"}, {"value", 1}}).Timer("timer-2").Signal("n", 3).Fired("timer-2");
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), R"(complete:{"early":[1],"later":[2,3]})");
}

TEST(SdkReplayTest, TheFirstToFinishInTheHistoryWinsARaceAndTheLosingTimerIsCancelled) {
  auto wf = MakeWorkflow(std::function<Workflow<std::string>(WorkflowContext&, Json)>(
      [](WorkflowContext& ctx, Json) -> Workflow<std::string> {
        try {
          int v = co_await WithTimeout(ctx, ctx.Task<int>("slow", 0), 5s);
          co_return "task " + std::to_string(v);
        } catch (const TimedOut&) {
          co_return "timed out";
        }
      }));
  H won(Json::object());
  won.Task("slow").Timer("timer-1").Done(2, 7);
  EXPECT_EQ(Kinds(Decide("e", won.events(), wf)), R"(cancel:timer-1 complete:"task 7")");
  H lost(Json::object());
  lost.Task("slow").Timer("timer-1").Fired("timer-1").Done(2, 7);
  EXPECT_EQ(Kinds(Decide("e", lost.events(), wf)), R"(complete:"timed out")");
}

TEST(SdkReplayTest, RunRecordsItsResultOnceAndReplaysItWithoutRunningAgain) {
  int calls = 0;
  auto wf = MakeWorkflow(
      std::function<Workflow<int>(WorkflowContext&, Json)>([&calls](WorkflowContext& ctx, Json) -> Workflow<int> {
        int v = co_await ctx.Run("pick", [&calls] { return ++calls * 10; });
        try {
          co_await ctx.Run("explode", []() -> int { throw std::runtime_error("no network"); });
        } catch (const StepFailed& e) {
          v += static_cast<int>(std::string(e.what()).size());
        }
        co_await ctx.Sleep(1s);
        co_return v;
      }));
  H h(Json::object());
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)),
            R"(op:pick=10 op:explode={"$error":"no network"} timer:timer-1 suspend)");
  EXPECT_EQ(calls, 1);
  h.Add("OPERATION_COMPLETED", {{"name", "pick"}, {"result", 10}})
      .Add("OPERATION_COMPLETED", {{"name", "explode"}, {"result", {{"$error", "no network"}}}})
      .Timer("timer-1")
      .Fired("timer-1");
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "complete:20");
  EXPECT_EQ(calls, 1) << "replay used the recorded result";
}

TEST(SdkReplayTest, PatchedTakesTheOldPathForOldHistoriesAndTheNewPathWithAMarkerForNewOnes) {
  auto wf = MakeWorkflow(std::function<Workflow<std::string>(WorkflowContext&, Json)>(
      [](WorkflowContext& ctx, Json) -> Workflow<std::string> {
        if (ctx.Patched("fraud-check")) co_await ctx.Task("fraud", 0);
        co_await ctx.Task("ship", 0);
        co_return "shipped";
      }));
  H old(Json::object());
  old.Task("ship");
  EXPECT_EQ(Kinds(Decide("e", old.events(), wf)), "suspend") << "recorded before the change: no fraud check";
  old.Done(2, nullptr);
  EXPECT_EQ(Kinds(Decide("e", old.events(), wf)), R"(complete:"shipped")");
  H fresh(Json::object());
  EXPECT_EQ(Kinds(Decide("e", fresh.events(), wf)), "op:patch:fraud-check=true task:fraud suspend");
  fresh.Add("OPERATION_COMPLETED", {{"name", "patch:fraud-check"}, {"result", true}}).Task("fraud").Done(3, nullptr);
  EXPECT_EQ(Kinds(Decide("e", fresh.events(), wf)), "task:ship suspend");
}

TEST(SdkReplayTest, TimeRandomnessAndIdentifiersAreTheSameOnEveryReplay) {
  auto wf = MakeWorkflow(
      std::function<Workflow<Json>(WorkflowContext&, Json)>([](WorkflowContext& ctx, Json) -> Workflow<Json> {
        auto t0 = ctx.Now();
        std::string id = ctx.Uuid();
        uint64_t r = ctx.Random();
        co_await ctx.Sleep(1s);
        auto t1 = ctx.Now();
        co_return Json{{"t0", std::chrono::duration_cast<std::chrono::milliseconds>(t0.time_since_epoch()).count()},
                       {"t1", std::chrono::duration_cast<std::chrono::milliseconds>(t1.time_since_epoch()).count()},
                       {"id", id},
                       {"r", std::to_string(r)}};
      }));
  H h(Json::object());
  h.Timer("timer-1").Fired("timer-1");
  Decision a = Decide("exec-1", h.events(), wf);
  Decision b = Decide("exec-1", h.events(), wf);
  Decision other = Decide("exec-2", h.events(), wf);
  ASSERT_EQ(a.commands.size(), 1u);
  Json out = Json::parse(a.commands[0].complete_workflow().output_json());
  EXPECT_EQ(out["t0"], 1'800'000'001'000) << "the start event's time";
  EXPECT_EQ(out["t1"], 1'800'000'003'000) << "the time the timer fired";
  EXPECT_EQ(out["id"].get<std::string>().size(), 36u);
  EXPECT_EQ(out["id"].get<std::string>()[14], '4');
  EXPECT_EQ(a.commands[0].complete_workflow().output_json(), b.commands[0].complete_workflow().output_json());
  EXPECT_NE(a.commands[0].complete_workflow().output_json(), other.commands[0].complete_workflow().output_json());
}

TEST(SdkReplayTest, AHundredTasksFanOutInOneDecisionAndJoinWhenAllAreDone) {
  auto wf = MakeWorkflow(
      std::function<Workflow<int>(WorkflowContext&, Json)>([](WorkflowContext& ctx, Json) -> Workflow<int> {
        std::vector<Future<int>> parts;
        for (int i = 0; i < 100; ++i) parts.push_back(ctx.Task<int>("square", i));
        auto squares = co_await All(ctx, std::move(parts));
        int sum = 0;
        for (int v : squares) sum += v;
        co_return sum;
      }));
  H h(Json::object());
  Decision first = Decide("e", h.events(), wf);
  ASSERT_EQ(first.commands.size(), 101u);
  for (int i = 0; i < 100; ++i) h.Task("square");
  for (int i = 99; i >= 1; --i) h.Done(2 + i, i * i);  // in any order
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "suspend") << "one still running";
  h.Done(2, 0);
  EXPECT_EQ(Kinds(Decide("e", h.events(), wf)), "complete:328350");
}

}  // namespace
}  // namespace flovyn
