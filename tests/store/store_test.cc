// The store's operations beside the command handlers, in-process against PostgreSQL: claims
// filtered by kind, tasks' results and retries, the sweeps, promises, workers and paging.
#include <future>

#include <nlohmann/json.hpp>

#include "engine/work_hub.h"
#include "flovyn/model/status.h"
#include "harness.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

using namespace flovyn::engine;
using nlohmann::json;

TEST_F(StoreTest, ClaimsHonourTheKindsAskedForIncludingNamesThatNeedQuoting) {
  for (std::string kind : {"plain", "with,comma", "with \"quote\"", "back\\slash"}) {
    ASSERT_TRUE(store_->StartWorkflow(tenant_, {kind, "kinds", "null", std::nullopt, ""}).ok());
  }
  auto none = store_->ClaimWorkflow(tenant_, worker_, "kinds", {"other"});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  for (std::string kind : {"with,comma", "with \"quote\"", "back\\slash", "plain"}) {
    auto c = store_->ClaimWorkflow(tenant_, worker_, "kinds", {kind});
    ASSERT_TRUE(c.ok() && c->has_value()) << kind;
    EXPECT_EQ((*c)->execution.kind, kind);
  }
}

// A claim says whether another workflow of the queue is runnable, so the poller that made it
// wakes another poller only when there is something for it.
TEST_F(StoreTest, AWorkflowClaimSaysWhetherAnotherOfItsQueueIsRunnable) {
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(store_->StartWorkflow(tenant_, {"k", "more", "null", std::nullopt, ""}).ok());
  ASSERT_TRUE(store_->StartWorkflow(tenant_, {"k", "elsewhere", "null", std::nullopt, ""}).ok());
  auto first = store_->ClaimWorkflow(tenant_, worker_, "more", {});
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_TRUE((*first)->more) << "the second is runnable";
  auto second = store_->ClaimWorkflow(tenant_, worker_, "more", {});
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_FALSE((*second)->more) << "nothing else on its queue (another queue's does not count)";
}

// A claim from the queue locks the row and takes what was buffered while a worker held it in
// one statement, then appends it, reads what the worker replays and commits together: two
// round trips. Here the holder's lease ran out with a signal buffered.
TEST_F(StoreTest, AQueueClaimTakesTwoRoundTripsAndBringsWhatWasBufferedWhileAWorkerHeldIt) {
  TcpProxy proxy(Postgres::Shared().port());
  auto counted = PoolThrough(proxy.port());
  engine::Store store(*counted, notifier_, engine::StoreOptions{});
  auto warm = StartAndClaim("buffered");  // prepares the claim's statements on the counted connection
  ASSERT_TRUE(store_->Signal(tenant_, warm, "go", "1").ok());
  Sql("UPDATE workflow_executions SET lease_expires_at = now() - interval '1 second' WHERE id = $1", {warm.str()});
  ASSERT_EQ(*store_->ExpireWorkflowLeases(), 1);
  ASSERT_TRUE(store.ClaimWorkflow(tenant_, worker_, "buffered", {})->has_value());

  auto id = StartAndClaim("buffered");
  ASSERT_TRUE(store_->Signal(tenant_, id, "go", R"({"n":2})").ok());  // buffered: the worker holds it
  EXPECT_EQ(Count("workflow_event_buffer", id.str()), 1);
  Sql("UPDATE workflow_executions SET lease_expires_at = now() - interval '1 second' WHERE id = $1", {id.str()});
  ASSERT_EQ(*store_->ExpireWorkflowLeases(), 1);
  int before = proxy.client_flights();
  auto claim = store.ClaimWorkflow(tenant_, WorkerId("next-worker"), "buffered", {});
  EXPECT_EQ(proxy.client_flights() - before, 2) << "BEGIN with the claim, then the rest with the COMMIT";
  ASSERT_TRUE(claim.ok() && claim->has_value()) << claim.status().ToString();
  const engine::WorkflowClaim& c = **claim;
  EXPECT_EQ(c.execution.id, id.str());
  EXPECT_EQ(c.execution.status, "RUNNING");
  EXPECT_EQ(c.history_after, 0) << "another worker's claim replays everything";
  ASSERT_FALSE(c.events.empty());
  EXPECT_EQ(c.events.back().type, "SIGNAL_RECEIVED");
  EXPECT_EQ(json::parse(c.events.back().payload_json)["payload"], json::parse(R"({"n":2})"));
  EXPECT_EQ(Count("workflow_event_buffer", id.str()), 0);
  EXPECT_EQ(Sql("SELECT last_seq FROM workflow_executions WHERE id = $1", {id.str()}),
            std::to_string(c.events.back().sequence));
  EXPECT_EQ(Sql("SELECT lease_owner FROM workflow_executions WHERE id = $1", {id.str()}), "next-worker");
}

TEST_F(StoreTest, WorkersKeepTheirQueuesAndKindsExactly) {
  WorkerRegistration w{"w", "", {"a,b", "q \"1\""}, {}, {"back\\slash", "{braces}"}};
  ASSERT_TRUE(store_->RegisterWorker(tenant_, w).ok());
  auto list = store_->ListWorkers(tenant_);
  ASSERT_TRUE(list.ok());
  const WorkerView* found = nullptr;
  for (const auto& v : *list) {
    if (v.name == "w") found = &v;
  }
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->queues, w.queues);
  EXPECT_TRUE(found->workflow_kinds.empty());
  EXPECT_EQ(found->task_kinds, w.task_kinds);
  auto too_many = w;
  too_many.queues.assign(101, "q");
  EXPECT_NE(store_->RegisterWorker(tenant_, too_many).status().message().find("list_items"), std::string::npos);
}

TEST_F(StoreTest, ACompletedTaskReportsToItsWorkflowWithTheScheduledSequence) {
  auto id = StartAndClaim("q");
  auto r = Submit(id, {ScheduleTask{.kind = "charge"}, Suspend{}});
  ASSERT_TRUE(r.ok());
  int64_t scheduled = r->events[0].sequence;
  auto claim = store_->ClaimTask(tenant_, worker_, "q", {"charge"});
  ASSERT_TRUE(claim.ok() && claim->has_value());
  EXPECT_EQ((*claim)->task.attempt, 1);
  EXPECT_GT((*claim)->lease_expires_at_ms, 0);
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, engine::TaskId((*claim)->task.id), 1, R"({"paid":true})").ok());
  auto events = store_->Events(tenant_, id);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().type, "TASK_COMPLETED");
  json p = json::parse(events->back().payload_json);
  EXPECT_EQ(p["scheduledSequence"], scheduled);
  EXPECT_EQ(p["output"]["paid"], true);
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "PENDING");
  // A second completion of the same attempt is refused: the worker no longer holds it.
  EXPECT_EQ(store_->CompleteTask(tenant_, worker_, engine::TaskId((*claim)->task.id), 1, "1").code(),
            StatusCode::kAborted);
}

TEST_F(StoreTest, AFailedTaskIsRetriedWithBackoffThenFailsForGood) {
  SubmitTaskRequest req{.kind = "flaky", .queue = "t", .max_attempts = 2, .initial_backoff_ms = 1};
  auto id = store_->SubmitTask(tenant_, req);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "t", WorkKind::kTask)));
  auto first = store_->ClaimTask(tenant_, worker_, "t", {});
  ASSERT_TRUE(first.ok() && first->has_value());
  auto retry = store_->FailTask(tenant_, worker_, *id, 1, "boom", false);
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->will_retry);
  EXPECT_GT(retry->next_attempt_at_ms, 0);
  std::optional<TaskClaim> second;
  for (int i = 0; i < 100 && !second; ++i) {  // the 1 ms backoff passes in the database's time
    auto c = store_->ClaimTask(tenant_, worker_, "t", {});
    ASSERT_TRUE(c.ok());
    second = *c;
  }
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->task.attempt, 2);
  auto last = store_->FailTask(tenant_, worker_, *id, 2, "boom again", false);
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->will_retry);
  auto view = store_->GetTask(tenant_, *id);
  EXPECT_EQ(view->status, "FAILED");
  EXPECT_EQ(view->error.value_or(""), "boom again");
}

TEST_F(StoreTest, DueTimersFireIntoTheirWorkflowAndWakeIt) {
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"now", 0}, Suspend{}}).ok());
  auto fired = store_->FireDueTimers();
  ASSERT_TRUE(fired.ok());
  EXPECT_EQ(*fired, 1);
  EXPECT_EQ(EventTypes(id).back(), "TIMER_FIRED");
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "PENDING");
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "q", WorkKind::kWorkflow)));
  EXPECT_EQ(*store_->FireDueTimers(), 0);
}

// A due timer whose execution another transaction holds locked (a worker's submit under way)
// is left for a later run instead of holding the run up (or deadlocking with a transaction
// that locked the execution first and then wants the timer); it fires once the lock is gone.
TEST_F(StoreTest, ADueTimerWhoseExecutionIsLockedElsewhereIsLeftForALaterRunInsteadOfWaitedFor) {
  auto id = StartAndClaim("q");
  ASSERT_TRUE(Submit(id, {StartTimer{"now", 0}, Suspend{}}).ok());
  auto deadline = [] { return db::Clock::now() + std::chrono::seconds(5); };
  auto holder = pool_->Acquire();
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE(
      (*holder)
          ->ExecSimple("BEGIN; SELECT 1 FROM workflow_executions WHERE id = '" + id.str() + "' FOR UPDATE", deadline())
          .ok());
  auto run = std::async(std::launch::async, [this] { return store_->FireDueTimers(); });
  bool prompt = run.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  ASSERT_TRUE((*holder)->ExecSimple("ROLLBACK", deadline()).ok());
  auto fired = run.get();
  EXPECT_TRUE(prompt) << "the run waited for the execution's lock";
  ASSERT_TRUE(fired.ok()) << fired.status().ToString();
  EXPECT_EQ(*fired, 0);
  EXPECT_EQ(Sql("SELECT status FROM timers WHERE execution_id = $1", {id.str()}), "PENDING");
  EXPECT_EQ(*store_->FireDueTimers(), 1);
  EXPECT_EQ(EventTypes(id).back(), "TIMER_FIRED");
}

TEST_F(StoreTest, PromisesResolveOnceAndTimeOutBySweep) {
  auto id = StartAndClaim("q");
  auto r = Submit(id, {CreatePromise{"ok", 0}, CreatePromise{"late", 1}, Suspend{}});
  ASSERT_TRUE(r.ok());
  engine::PromiseId ok(json::parse(r->events[0].payload_json)["promiseId"].get<std::string>());
  ASSERT_TRUE(store_->ResolvePromise(tenant_, ok, R"({"yes":1})").ok());
  EXPECT_EQ(store_->ResolvePromise(tenant_, ok, "2").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RejectPromise(tenant_, engine::PromiseId(NewUuid()), "x").code(), StatusCode::kNotFound);
  int timed_out = 0;
  for (int i = 0; i < 100 && timed_out == 0; ++i) timed_out = *store_->TimeOutPromises();
  EXPECT_EQ(timed_out, 1);
  auto types = EventTypes(id);
  EXPECT_EQ(std::vector<std::string>(types.end() - 2, types.end()),
            (std::vector<std::string>{"PROMISE_RESOLVED", "PROMISE_TIMED_OUT"}));
}

TEST_F(StoreTest, AnExpiredWorkflowLeaseHandsTheExecutionBackWithWhatArrivedMeanwhile) {
  auto id = StartAndClaim("q");
  ASSERT_TRUE(store_->Signal(tenant_, id, "s", "1").ok());
  ASSERT_TRUE(pool_
                  ->Query("UPDATE workflow_executions SET lease_expires_at = now() - interval '1 second' "
                          "WHERE id = $1",
                          {id})
                  .ok());
  EXPECT_EQ(*store_->ExpireWorkflowLeases(), 1);
  EXPECT_EQ(store_->GetWorkflow(tenant_, id)->status, "PENDING");
  EXPECT_EQ(EventTypes(id).back(), "SIGNAL_RECEIVED");
  EXPECT_EQ(Submit(id, {Suspend{}}).status().code(), StatusCode::kAborted);  // the old holder
}

TEST_F(StoreTest, ListsPageNewestFirstWithCursorsThatRefuseForgery) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_->StartWorkflow(tenant_, {"page", "p", "null", std::nullopt, ""}).ok());
  ListFilter f{.kind = "page", .limit = 2};
  std::vector<std::string> seen;
  for (int pages = 0; pages < 5; ++pages) {
    auto page = store_->ListWorkflows(tenant_, f);
    ASSERT_TRUE(page.ok());
    for (const auto& w : page->items) seen.push_back(w.id);
    if (!page->next_cursor) break;
    f.cursor = page->next_cursor;
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u);
  f.cursor = "7a7a";  // hex of "zz": not a time and an id
  EXPECT_EQ(store_->ListWorkflows(tenant_, f).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, TenantsAreFoundBySlugIdAndOwnerAndASlugIsNotTakenTwice) {
  EXPECT_EQ(store_->TenantBySlug("acme")->id, tenant_);
  EXPECT_EQ(store_->TenantById(tenant_)->slug, "acme");
  EXPECT_EQ(store_->CreateTenant("acme", "Again").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateTenant("-bad", "x").status().code(), StatusCode::kInvalidArgument);
  std::string org = NewUuid();
  auto mine = store_->CreateTenant("org-one", "Org", org);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(store_->TenantByOwner(org)->id, mine->id);
  auto again = store_->CreateTenant("org-one", "Org", org);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->existed);
}

}  // namespace
}  // namespace flovyn::testing

namespace flovyn::testing {
namespace {

// The names of model::WorkflowStatus and model::TaskStatus are exactly what the tables' CHECK
// constraints accept, in the same order, and each name parses back to its status.
std::vector<std::string> CheckedNames(StoreTest& t, const std::string& table) {
  std::string def = t.Sql(
      "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c' "
      "AND pg_get_constraintdef(oid) LIKE '%status%'",
      {table});
  std::vector<std::string> names;
  for (size_t q = def.find('\''); q != std::string::npos; q = def.find('\'', q + 1)) {
    size_t end = def.find('\'', q + 1);
    names.push_back(def.substr(q + 1, end - q - 1));
    q = end;
  }
  return names;
}

TEST_F(StoreTest, TheStatusEnumsNameExactlyWhatTheDatabaseAccepts) {
  EXPECT_EQ(CheckedNames(*this, "workflow_executions"), model::WorkflowStatusNames());
  EXPECT_EQ(CheckedNames(*this, "task_executions"), model::TaskStatusNames());
  for (auto s : model::kWorkflowStatuses) EXPECT_EQ(model::ParseWorkflowStatus(model::Name(s)), s);
  for (auto s : model::kTaskStatuses) EXPECT_EQ(model::ParseTaskStatus(model::Name(s)), s);
  EXPECT_FALSE(model::ParseTaskStatus("WAITING").has_value());
  EXPECT_TRUE(model::IsTerminalName("CANCELLED"));
  EXPECT_FALSE(model::IsTerminalName("WAITING"));
  EXPECT_FALSE(model::IsTerminalName("cancelled"));
}

}  // namespace
}  // namespace flovyn::testing

namespace flovyn::testing {
namespace {

TEST_F(StoreTest, OperationsInAJoinedScopeCommitWithTheEnclosingUnitOrNotAtAll) {
  auto start = [&](const std::string& key) {
    engine::StartWorkflowRequest req{"joined", "jq", "null", key, ""};
    return store_->StartWorkflow(tenant_, req);
  };
  // Rolled back: the start inside the scope goes with the enclosing unit.
  Status failed = store_->Run([&](engine::Unit& u) -> Status {
    engine::Store::Joined joined(u);
    auto s = start("joined-1");
    EXPECT_TRUE(s.ok());
    return Status(StatusCode::kAborted, "the enclosing work gives up");
  });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Sql("SELECT count(*) FROM workflow_executions WHERE kind = 'joined'"), "0");
  EXPECT_FALSE(notifier_.Woke(engine::WorkKey(tenant_, "jq", engine::WorkKind::kWorkflow)))
      << "nothing wakes for work that was rolled back";
  // Committed: two starts and the enclosing statement in one transaction; pollers woken after.
  Status ok = store_->Run([&](engine::Unit& u) -> Status {
    engine::Store::Joined joined(u);
    EXPECT_TRUE(start("joined-2").ok());
    EXPECT_TRUE(start("joined-3").ok());
    auto xid = u.Exec("SELECT count(DISTINCT xmin::text) AS n FROM workflow_executions WHERE kind = 'joined'");
    EXPECT_TRUE(xid.ok());
    EXPECT_EQ(std::string(xid->Get(0, 0)), "1") << "both rows written by this one transaction";
    return Status::Ok();
  });
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(Sql("SELECT count(*) FROM workflow_executions WHERE kind = 'joined'"), "2");
  EXPECT_TRUE(notifier_.Woke(engine::WorkKey(tenant_, "jq", engine::WorkKind::kWorkflow)));
  // Outside a scope, each call has its own transaction again.
  ASSERT_TRUE(start("joined-4").ok());
  EXPECT_EQ(Sql("SELECT count(DISTINCT xmin::text) FROM workflow_executions WHERE kind = 'joined'"), "2");
}

// A poll may claim several tasks in one transaction: oldest first, each under its own lease and
// attempt, never more than asked, and never one another worker holds. Claims nobody received go
// back to the queue as if never made (their attempt is not spent), and only while still held.
TEST_F(StoreTest, SeveralTasksAreClaimedAtOnceOldestFirstAndUnreceivedClaimsGoBack) {
  std::vector<TaskId> ids;
  for (int i = 0; i < 7; ++i) {
    auto id = store_->SubmitTask(tenant_, {.kind = "noop", .queue = "batch", .input_json = std::to_string(i)});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  bool more = false;
  auto first = store_->ClaimTasks(tenant_, worker_, "batch", {}, 5, &more);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 5u);
  EXPECT_TRUE(more) << "two were left behind: the next waiting poller is woken for them";
  for (size_t i = 0; i < first->size(); ++i) {
    EXPECT_EQ((*first)[i].task.id, ids[i].str()) << "oldest first, at " << i;
    EXPECT_EQ((*first)[i].task.attempt, 1);
    EXPECT_GT((*first)[i].lease_expires_at_ms, 0);
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM task_executions WHERE queue = 'batch' AND status = 'RUNNING'"), "5");

  auto rest = store_->ClaimTasks(tenant_, worker_, "batch", {}, 5, &more);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u) << "only what is left";
  EXPECT_FALSE(more) << "nothing was left: no poller is woken for nothing";
  EXPECT_EQ((*rest)[0].task.id, ids[5].str());
  auto none = store_->ClaimTasks(tenant_, worker_, "batch", {}, 5);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // Two of the first claims were never received; one of them was completed meanwhile.
  ASSERT_TRUE(store_->CompleteTask(tenant_, worker_, ids[1], 1, "null").ok());
  notifier_.Clear();
  ASSERT_TRUE(store_->ReleaseTaskClaims(tenant_, worker_, {{ids[0].str(), 1}, {ids[1].str(), 1}}).ok());
  EXPECT_TRUE(notifier_.Woke(WorkKey(tenant_, "batch", WorkKind::kTask)));
  EXPECT_EQ(store_->GetTask(tenant_, ids[0])->status, "PENDING");
  EXPECT_EQ(store_->GetTask(tenant_, ids[1])->status, "COMPLETED") << "a finished task stays finished";
  ASSERT_TRUE(
      store_->ReleaseTaskClaims(tenant_, WorkerId("00000000-0000-0000-0000-000000000000"), {{ids[2].str(), 1}}).ok());
  EXPECT_EQ(store_->GetTask(tenant_, ids[2])->status, "RUNNING") << "another worker cannot release it";
  auto again = store_->ClaimTasks(tenant_, worker_, "batch", {}, 5);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].task.id, ids[0].str());
  EXPECT_EQ((*again)[0].task.attempt, 1) << "the released claim did not spend an attempt";
}

}  // namespace
}  // namespace flovyn::testing
