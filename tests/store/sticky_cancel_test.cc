// Sticky executions (the worker that keeps an execution cached gets it back with only its new
// events, others leave it alone for a while) and the cancellation commands and deadlines, over
// the store against PostgreSQL in-process.
#include <nlohmann/json.hpp>

#include "engine/work_hub.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;
using nlohmann::json;

class StickyCancelTest : public StoreTest {};

TEST_F(StickyCancelTest, AKeptExecutionGoesBackToItsWorkerWithOnlyTheNewEventsAndToOthersAfterTheWindow) {
  auto id = StartAndClaim();
  auto view = store_->GetWorkflow(tenant_, id);
  auto kept = store_->SubmitCommands(tenant_, worker_, id, view->last_sequence, {StartTimer{"t", 60000}, Suspend{}},
                                     /*keep_cached=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  int64_t held = kept->last_sequence;
  notifier_.Clear();
  ASSERT_TRUE(store_->Signal(tenant_, id, "go", "1").ok());
  EXPECT_TRUE(notifier_.Woke(TaggedKey(WorkKey(tenant_, "q", WorkKind::kWorkflow), worker_.str())))
      << "the wake-up names the worker that keeps it";

  auto other = store_->ClaimWorkflow(tenant_, WorkerId("other-worker"), "q", {});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value()) << "another worker leaves it to its keeper within the window";

  auto back = store_->ClaimWorkflow(tenant_, worker_, "q", {});
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->history_after, held);
  ASSERT_EQ((*back)->events.size(), 1u) << "only what came after the sequence it keeps";
  EXPECT_EQ((*back)->events[0].type, "SIGNAL_RECEIVED");

  // Kept again; the window passes (pending for longer than engine.sticky_ms): anyone takes it,
  // with the whole history.
  ASSERT_TRUE(store_->SubmitCommands(tenant_, worker_, id, (*back)->events.back().sequence, {Suspend{}}, true).ok());
  ASSERT_TRUE(store_->Signal(tenant_, id, "go", "2").ok());
  Sql("UPDATE workflow_executions SET updated_at = now() - interval '10 seconds' WHERE id = $1", {id});
  auto taken = store_->ClaimWorkflow(tenant_, WorkerId("other-worker"), "q", {});
  ASSERT_TRUE(taken.ok() && taken->has_value());
  EXPECT_EQ((*taken)->history_after, 0);
  EXPECT_EQ((*taken)->events.front().type, "WORKFLOW_STARTED");
  EXPECT_EQ(Sql("SELECT coalesce(sticky_worker, 'none') FROM workflow_executions WHERE id = $1", {id}), "none");
}

// A claim whose poll was cancelled before the answer went out is handed back at once, not left
// to its lease; a claim another worker holds, or that was answered and acted on, is not touched.
TEST_F(StickyCancelTest, AnUnansweredClaimIsHandedBackOnlyByItsHolder) {
  auto id = StartAndClaim();
  notifier_.Clear();
  ASSERT_TRUE(store_->ReleaseWorkflowClaim(tenant_, WorkerId("someone-else"), id).ok());
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "RUNNING");
  ASSERT_TRUE(store_->ReleaseWorkflowClaim(tenant_, worker_, id).ok());
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "PENDING");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow)));
  auto again = store_->ClaimWorkflow(tenant_, WorkerId("next-worker"), "q", {});
  ASSERT_TRUE(again.ok() && again->has_value()) << "another worker gets it at once";
}

TEST_F(StickyCancelTest, CancelScheduledTaskCancelsAnOpenTaskLeavesAnEndedOneAndRefusesAnUnknownSequence) {
  auto id = StartAndClaim();
  auto r = Submit(id, {ScheduleTask{.kind = "charge", .input_json = "1"}});
  ASSERT_TRUE(r.ok());
  int64_t seq = r->last_sequence;
  r = Submit(id, {CancelScheduledTask{seq, "changed my mind"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].type, "TASK_CANCELLED");
  json p = json::parse(r->events[0].payload_json);
  EXPECT_EQ(p["scheduledSequence"], seq);
  EXPECT_EQ(p["reason"], "changed my mind");
  EXPECT_EQ(Sql("SELECT status FROM task_executions WHERE workflow_id = $1", {id}), "CANCELLED");
  r = Submit(id, {CancelScheduledTask{seq, ""}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->events.empty()) << "already ended: nothing recorded";
  auto unknown = Submit(id, {CancelScheduledTask{seq + 100, ""}});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("no task scheduled at sequence"), std::string::npos);
}

TEST_F(StickyCancelTest, CancelChildWorkflowCancelsTheChildAndItsParentHearsInTheSameBatch) {
  auto id = StartAndClaim();
  ASSERT_TRUE(Submit(id, {ScheduleChildWorkflow{"kid", "kid-kind", "", "null"}}).ok());
  auto unknown = Submit(id, {CancelChildWorkflow{"nobody", ""}});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("no child workflow named 'nobody'"), std::string::npos);
  auto r = Submit(id, {CancelChildWorkflow{"kid", ""}, Suspend{}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(r->events.empty());
  EXPECT_EQ(r->events.back().type, "CHILD_WORKFLOW_FAILED");
  EXPECT_EQ(json::parse(r->events.back().payload_json)["status"], "CANCELLED");
  EXPECT_EQ(Sql("SELECT status FROM workflow_executions WHERE parent_id = $1", {id}), "CANCELLED");
}

TEST_F(StickyCancelTest, FailWorkflowAsCancelledNeedsACancellationRequest) {
  auto id = StartAndClaim();
  auto r = Submit(id, {FailWorkflow{"stopped", true}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no cancellation was requested"), std::string::npos);
  ASSERT_TRUE(store_->Cancel(tenant_, id, "please", std::chrono::milliseconds(60000)).ok());
  r = Submit(id, {FailWorkflow{"stopped", true}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, "CANCELLED");
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->error.value_or(""), "stopped");
}

TEST_F(StickyCancelTest, AGracefulCancellationReachesTheWorkflowAndIsForcedOnlyAfterItsDeadline) {
  auto id = StartAndClaim();
  ASSERT_TRUE(Submit(id, {Suspend{}}).ok());
  ASSERT_TRUE(store_->Cancel(tenant_, id, "please", std::chrono::milliseconds(60000)).ok());
  auto w = store_->GetWorkflow(tenant_, id);
  EXPECT_EQ(w->status, "PENDING") << "woken to see the request, not cancelled";
  EXPECT_EQ(EventTypes(id).back(), "CANCELLATION_REQUESTED");
  EXPECT_EQ(*store_->CancelOverdue(), 0);
  ASSERT_TRUE(store_->Cancel(tenant_, id, "again", std::chrono::milliseconds(1)).ok());
  EXPECT_EQ(EventTypes(id).back(), "CANCELLATION_REQUESTED");
  EXPECT_EQ(Count("workflow_events", id), 2) << "a second graceful cancel keeps the first deadline";
  Sql("UPDATE workflow_executions SET cancel_deadline = now() - interval '1 second' WHERE id = $1", {id});
  EXPECT_EQ(*store_->CancelOverdue(), 1);
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "CANCELLED");
  EXPECT_EQ(EventTypes(id).back(), "WORKFLOW_CANCELLED");
}

TEST_F(StickyCancelTest, AnOverdueCancellationOfAHeldExecutionWaitsForItsSubmitAndIsCountedOnce) {
  auto id = StartAndClaim();
  ASSERT_TRUE(store_->Cancel(tenant_, id, "please", std::chrono::milliseconds(60000)).ok());
  Sql("UPDATE workflow_executions SET cancel_deadline = now() - interval '1 second' WHERE id = $1", {id});
  EXPECT_EQ(*store_->CancelOverdue(), 1);
  EXPECT_EQ(*store_->CancelOverdue(), 0) << "marked for the holder's next submit: not picked again";
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "RUNNING");
  auto r = Submit(id, {Suspend{}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "CANCELLED");
}

}  // namespace
}  // namespace flovyn::testing
