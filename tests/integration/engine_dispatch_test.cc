// Dispatch under load and across replicas: concurrency, leases, wake-up latency, drain.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/db/pool.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using sdk::History;
using Clock = std::chrono::steady_clock;

std::string DbName(const std::string& url) { return url.substr(url.rfind('/') + 1); }

std::vector<v1::WorkflowCommand> OneTask(const History& h) {
  if (h.Count("TASK_SCHEDULED") == 0) return {sdk::ScheduleTask("inc", h.Input()), sdk::Suspend()};
  auto done = h.OfType("TASK_COMPLETED");
  if (!done.empty()) return {sdk::Complete(json::parse(done[0]->payload_json())["output"].dump())};
  return {sdk::Suspend()};
}

std::string Inc(const v1::Task& t) { return std::to_string(json::parse(t.input_json()).get<int>() + 1); }

TEST(EngineDispatchTest, TwentyWorkersFiveHundredWorkflowsEachCompletesOnceWithDenseHistories) {
  EngineServer s;
  std::vector<std::unique_ptr<sdk::Client>> clients;
  std::vector<std::unique_ptr<sdk::Worker>> workers;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<sdk::Client>(s.ClientFor("acme")));
    workers.push_back(
        std::make_unique<sdk::Worker>(*clients.back(), sdk::WorkerOptions{.name = "w" + std::to_string(i)}));
    workers.back()->RegisterWorkflow("one-task", OneTask);
    workers.back()->RegisterTask("inc", Inc);
    ASSERT_TRUE(workers.back()->Start().ok());
  }
  std::vector<std::thread> starters;
  std::atomic<int> started{0};
  for (int t = 0; t < 4; ++t) {
    starters.emplace_back([&, t] {
      for (int i = t; i < 500; i += 4) {
        v1::StartWorkflowResponse r;
        if (clients[static_cast<size_t>(t)]->StartWorkflow("one-task", std::to_string(i), &r).ok()) ++started;
      }
    });
  }
  for (auto& t : starters) t.join();
  ASSERT_EQ(started.load(), 500);
  std::string db = DbName(s.database_url());
  auto end = Clock::now() + 120s;
  std::string done;
  while (Clock::now() < end) {
    done = Postgres::Shared().Psql(db, "SELECT count(*) FROM workflow_executions WHERE status = 'COMPLETED'");
    if (done == "500") break;
    std::this_thread::sleep_for(200ms);
  }
  for (auto& w : workers) w->Stop();
  EXPECT_EQ(done, "500");
  // Outputs are right: input + 1.
  EXPECT_EQ(Postgres::Shared().Psql(
                db, "SELECT count(*) FROM workflow_executions WHERE output::text::int <> input::text::int + 1"),
            "0");
  // Dense histories: sequences 1..last_seq with no gap, no duplicate.
  EXPECT_EQ(
      Postgres::Shared().Psql(db,
                              "SELECT count(*) FROM (SELECT w.id FROM workflow_executions w JOIN workflow_events e "
                              "ON e.execution_id = w.id GROUP BY w.id, w.last_seq HAVING count(*) <> w.last_seq "
                              "OR min(e.seq) <> 1 OR max(e.seq) <> w.last_seq) bad"),
      "0");
  EXPECT_EQ(Postgres::Shared().Psql(db,
                                    "SELECT count(*) FROM (SELECT execution_id FROM workflow_events WHERE type = "
                                    "'WORKFLOW_COMPLETED' GROUP BY execution_id HAVING count(*) <> 1) bad"),
            "0");
  // No task completed twice, none claimed twice.
  EXPECT_EQ(
      Postgres::Shared().Psql(db, "SELECT count(*) FROM task_executions WHERE completed_count <> 1 OR attempt <> 1"),
      "0");
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT count(*) FROM task_executions"), "500");
}

TEST(EngineDispatchTest, AWorkerKilledMidTaskLosesItsLeaseAndAnotherWorkerGetsTheTask) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  // The workflow schedules one task with a 1 s lease.
  sdk::Worker wf(client, {});
  wf.RegisterWorkflow("leasey", [](const History& h) -> std::vector<v1::WorkflowCommand> {
    if (h.Count("TASK_SCHEDULED") == 0) {
      auto c = sdk::ScheduleTask("slow", "{}");
      c.mutable_schedule_task()->set_lease_ms(1000);
      return {c, sdk::Suspend()};
    }
    if (h.Count("TASK_COMPLETED") == 1) return {sdk::Complete("\"done\"")};
    return {sdk::Suspend()};
  });
  ASSERT_TRUE(wf.Start().ok());
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("leasey", "null", &started).ok());

  // Worker A claims the task and dies (never completes, never heartbeats).
  std::string a_id, b_id;
  v1::RegisterWorkerRequest reg;
  reg.set_name("a");
  ASSERT_TRUE(client.RegisterWorker(reg, &a_id).ok());
  reg.set_name("b");
  ASSERT_TRUE(client.RegisterWorker(reg, &b_id).ok());
  v1::PollTaskRequest poll;
  poll.set_worker_id(a_id);
  poll.set_queue("default");
  poll.set_timeout_ms(10000);
  v1::PollTaskResponse a_task;
  ASSERT_TRUE(client.PollTask(poll, &a_task).ok());
  ASSERT_TRUE(a_task.has_work());
  EXPECT_EQ(a_task.task().attempt(), 1);

  auto t0 = Clock::now();
  poll.set_worker_id(b_id);
  v1::PollTaskResponse b_task;
  ASSERT_TRUE(client.PollTask(poll, &b_task).ok());
  ASSERT_TRUE(b_task.has_work()) << "after the lease expires another worker gets the task";
  EXPECT_EQ(b_task.task().id(), a_task.task().id());
  EXPECT_EQ(b_task.task().attempt(), 2);
  EXPECT_GE(Clock::now() - t0, 800ms);
  // The dead worker's late result is refused; the new holder's is taken.
  EXPECT_EQ(client.CompleteTask(a_id, a_task.task(), "1").error_code(), grpc::StatusCode::ABORTED);
  EXPECT_TRUE(client.CompleteTask(b_id, b_task.task(), "2").ok());
  EXPECT_EQ(s.WaitWorkflow("acme", started.execution_id())["status"], "COMPLETED");
  wf.Stop();
}

// N standalone tasks of `kind` on `queue`, inputs 0..n-1.
bool SubmitTasks(sdk::Client& client, const std::string& kind, const std::string& queue, int n) {
  for (int i = 0; i < n; ++i) {
    v1::SubmitTaskRequest t;
    t.set_kind(kind);
    t.set_queue(queue);
    t.set_input_json(std::to_string(i));
    std::string id;
    if (!client.SubmitTask(t, &id).ok()) return false;
  }
  return true;
}

// A poll claims up to max_tasks at once (the first in `task`, the rest in `more_tasks`), each
// held under its own lease; past the server's limit the poll is refused naming it and claims
// nothing. The SDK's worker asks for several per poll and runs every task once.
TEST(EngineDispatchTest, APollClaimsUpToMaxTasksEachOnceAndMoreThanTheLimitIsRefusedNamingIt) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("batcher");
  ASSERT_TRUE(client.RegisterWorker(reg, &worker).ok());
  ASSERT_TRUE(SubmitTasks(client, "noop", "batch", 12));
  v1::PollTaskRequest poll;
  poll.set_worker_id(worker);
  poll.set_queue("batch");
  poll.set_timeout_ms(1000);
  poll.set_max_tasks(101);
  v1::PollTaskResponse refused;
  auto st = client.PollTask(poll, &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("max_tasks_per_poll"), std::string::npos) << st.error_message();
  EXPECT_FALSE(refused.has_work());

  std::set<std::string> seen;
  std::vector<v1::Task> held;
  for (int want : {5, 10}) {
    poll.set_max_tasks(want);
    v1::PollTaskResponse res;
    ASSERT_TRUE(client.PollTask(poll, &res).ok());
    ASSERT_TRUE(res.has_work());
    held.push_back(res.task());
    for (const auto& t : res.more_tasks()) held.push_back(t);
    EXPECT_EQ(1 + res.more_tasks_size(), want == 5 ? 5 : 7) << "max_tasks " << want;
  }
  for (const auto& t : held) {
    EXPECT_TRUE(seen.insert(t.id()).second) << "claimed twice: " << t.id();
    EXPECT_EQ(t.attempt(), 1);
    EXPECT_GT(t.lease_expires_at_ms(), 0);
    EXPECT_TRUE(client.CompleteTask(worker, t, t.input_json()).ok());
  }
  EXPECT_EQ(seen.size(), 12u) << "the refused poll claimed nothing, so all twelve were left for these two";

  std::atomic<int> runs{0};
  sdk::Worker batched(client, {.name = "batched",
                               .queue = "sdk-batch",
                               .task_pollers = 2,
                               .poll_timeout = std::chrono::milliseconds(500),
                               .max_tasks_per_poll = 8});
  batched.RegisterTask("inc", [&runs](const v1::Task& t) {
    ++runs;
    return Inc(t);
  });
  ASSERT_TRUE(SubmitTasks(client, "inc", "sdk-batch", 40));
  ASSERT_TRUE(batched.Start().ok());
  for (int i = 0; i < 200 && batched.tasks_completed() < 40; ++i) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(200ms);
  batched.Stop();
  EXPECT_EQ(batched.tasks_completed(), 40u);
  EXPECT_EQ(runs.load(), 40) << "each task ran once";
}

v1::PollWorkflowRequest WorkflowPoll(const std::string& worker, const std::string& queue) {
  v1::PollWorkflowRequest poll;
  poll.set_worker_id(worker);
  poll.set_queue(queue);
  poll.set_timeout_ms(2000);
  return poll;
}

// A registered worker holding the first activation of a workflow it started on `queue`.
struct FirstActivation {
  std::string worker, execution;
  int64_t sequence = 0;
};
FirstActivation StartAndPoll(sdk::Client& client, const std::string& queue) {
  v1::StartWorkflowResponse started;
  EXPECT_TRUE(client.StartWorkflow("carried", "null", &started, queue).ok());
  HeldWorkflow held = ClaimNextWorkflow(client, queue);
  FirstActivation a{held.worker_id, started.execution_id(), 0};
  if (held.claim.events_size() > 0) a.sequence = held.claim.events(held.claim.events_size() - 1).sequence();
  return a;
}

// Its batch scheduling task "charge" and asking to take up to `take` tasks.
v1::SubmitWorkflowCommandsRequest TakingBatch(const FirstActivation& a, const std::string& queue, int take) {
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(a.worker);
  sub.set_execution_id(a.execution);
  sub.set_expected_sequence(a.sequence);
  sub.set_keep_cached(true);
  *sub.add_commands() = sdk::ScheduleTask("charge", "5");
  *sub.add_commands() = sdk::Suspend();
  sub.set_take_tasks(take);
  sub.set_take_task_queue(queue);
  sub.add_take_task_kinds("charge");
  return sub;
}

// A client whose calls give up after 500 ms, so a call can outlast its caller.
sdk::ClientOptions ImpatientClientFor(EngineServer& s) {
  sdk::ClientOptions opts = s.ClientFor("acme");
  opts.call_timeout = std::chrono::milliseconds(500);
  return opts;
}

// Another session holding an execution's row, so whatever needs it waits.
class RowHeld {
 public:
  RowHeld(const std::string& url, const std::string& execution) : pool_(Options(url)) {
    auto c = pool_.Acquire();
    EXPECT_TRUE(c.ok());
    conn_ = std::make_unique<db::PooledConnection>(std::move(*c));
    EXPECT_TRUE((*conn_)->ExecSimple("BEGIN", Deadline()).ok());
    EXPECT_TRUE(
        (*conn_)->Exec("SELECT 1 FROM workflow_executions WHERE id = $1 FOR UPDATE", {execution}, Deadline()).ok());
  }
  void Release() { EXPECT_TRUE((*conn_)->ExecSimple("ROLLBACK", Deadline()).ok()); }

 private:
  static db::PoolOptions Options(const std::string& url) {
    db::PoolOptions o;
    o.url = url;
    o.max_size = 1;
    return o;
  }
  static db::Clock::time_point Deadline() { return db::Clock::now() + std::chrono::seconds(30); }
  db::Pool pool_;
  std::unique_ptr<db::PooledConnection> conn_;
};

// Over gRPC: a command batch asking to take the task it schedules gets it in its answer (past
// the limit it is refused naming it and changes nothing), and that task's result brings the
// workflow back in CompleteTask's answer; the workflow runs to its end on those two calls alone.
TEST(EngineDispatchTest, ABatchTakesTheTaskItSchedulesAndTheTasksResultBringsTheWorkflowBack) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  FirstActivation a = StartAndPoll(client, "carry");
  v1::SubmitWorkflowCommandsResponse refused;
  auto st = client.SubmitCommands(TakingBatch(a, "carry", 101), &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("max_tasks_per_poll"), std::string::npos) << st.error_message();
  EXPECT_EQ(s.Events("acme", a.execution).size(), static_cast<size_t>(a.sequence))
      << "the refused batch recorded nothing";

  v1::SubmitWorkflowCommandsResponse taken;
  ASSERT_TRUE(client.SubmitCommands(TakingBatch(a, "carry", 1), &taken).ok());
  ASSERT_EQ(taken.tasks_size(), 1);
  EXPECT_EQ(taken.tasks(0).kind(), "charge");
  EXPECT_EQ(taken.tasks(0).workflow_id(), a.execution);
  EXPECT_EQ(taken.events(taken.events_size() - 1).type(), "TASK_STARTED");

  v1::CompleteTaskResponse done;
  ASSERT_TRUE(client.CompleteTask(a.worker, taken.tasks(0), "500", true, &done).ok());
  ASSERT_TRUE(done.workflow().has_work()) << "the result brought the workflow back";
  EXPECT_EQ(done.workflow().history_after(), taken.last_sequence());
  ASSERT_EQ(done.workflow().events_size(), 1);
  EXPECT_EQ(done.workflow().events(0).type(), "TASK_COMPLETED");

  v1::SubmitWorkflowCommandsRequest end;
  end.set_worker_id(a.worker);
  end.set_execution_id(a.execution);
  end.set_expected_sequence(done.workflow().events(0).sequence());
  *end.add_commands() = sdk::Complete("500");
  v1::SubmitWorkflowCommandsResponse ended;
  ASSERT_TRUE(client.SubmitCommands(end, &ended).ok());
  EXPECT_EQ(ended.status(), "COMPLETED");
  EXPECT_EQ(s.WaitWorkflow("acme", a.execution)["output"], 500);
}

// A task's result that takes its workflow back, whose caller left before the answer (its
// deadline passed while the server waited for a row lock): the result is recorded, and the
// workflow goes back to the queue at once instead of staying claimed for a worker that will never
// run it until its lease (60 s) ends.
// A workflow poll that found its queue empty is remembered: the next polls of the same worker
// and kinds park at once, without asking the database, until news of the queue (here a start)
// or the sweep. Counted at a proxy in front of PostgreSQL.
TEST(EngineDispatchTest, WorkflowPollsOfAQueueFoundEmptyParkWithoutAskingTheDatabaseUntilNews) {
  TcpProxy proxy(Postgres::Shared().port());
  EngineServer s({.database_url = Postgres::Shared().Through(Postgres::Shared().CreateDatabase(), proxy.port())});
  sdk::Client client(s.ClientFor("acme"));
  v1::RegisterWorkerRequest reg;
  reg.set_name("quiet");
  std::string worker;
  ASSERT_TRUE(client.RegisterWorker(reg, &worker).ok());
  v1::PollWorkflowRequest poll = WorkflowPoll(worker, "quiet");
  poll.set_timeout_ms(10);
  v1::PollWorkflowResponse none;
  ASSERT_TRUE(client.PollWorkflow(poll, &none).ok());  // this one asks, and finds nothing
  ASSERT_FALSE(none.has_work());
  int before = proxy.client_flights();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client.PollWorkflow(poll, &none).ok());
    ASSERT_FALSE(none.has_work());
  }
  // Each claim is at least one flight; what is left is the server's own background work.
  EXPECT_LT(proxy.client_flights() - before, 8) << "20 polls of a queue known empty";
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("carried", "null", &started, "quiet").ok());
  v1::PollWorkflowResponse got;
  ASSERT_TRUE(client.PollWorkflow(WorkflowPoll(worker, "quiet"), &got).ok());
  ASSERT_TRUE(got.has_work()) << "news of the queue: the next poll claims";
  EXPECT_EQ(got.execution().id(), started.execution_id());
}

TEST(EngineDispatchTest, AWorkflowTakenBackByACallerThatLeftGoesBackToTheQueueAtOnce) {
  EngineServer s;
  sdk::Client client(ImpatientClientFor(s));
  FirstActivation a = StartAndPoll(client, "leave");
  v1::SubmitWorkflowCommandsResponse taken;
  ASSERT_TRUE(client.SubmitCommands(TakingBatch(a, "leave", 1), &taken).ok());
  ASSERT_EQ(taken.tasks_size(), 1);
  RowHeld held(s.database_url(), a.execution);
  v1::CompleteTaskResponse done;
  EXPECT_EQ(client.CompleteTask(a.worker, taken.tasks(0), "500", true, &done).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // As below: the result goes on only once the server knows its caller left.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  held.Release();
  auto task = [&] { return Sql(s, "SELECT status FROM task_executions WHERE id = '" + taken.tasks(0).id() + "'"); };
  EXPECT_TRUE(Eventually([&] { return task() == "COMPLETED"; })) << "the result was recorded";
  auto workflow = [&] {
    return Sql(s, "SELECT status || coalesce(lease_owner::text, '') FROM workflow_executions WHERE id = '" +
                      a.execution + "'");
  };
  EXPECT_TRUE(Eventually([&] { return workflow() == "PENDING"; }, std::chrono::seconds(5)))
      << "not held for the caller that left: " << workflow();
  v1::PollWorkflowResponse again;  // a poll gets it, with the task's result
  ASSERT_TRUE(client.PollWorkflow(WorkflowPoll(a.worker, "leave"), &again).ok());
  ASSERT_TRUE(again.has_work());
  EXPECT_EQ(again.events(again.events_size() - 1).type(), "TASK_COMPLETED");
}

// The same for a command batch that takes the task it schedules: its caller left before the
// answer, so the task goes back to its queue at once instead of waiting out its lease.
TEST(EngineDispatchTest, ATaskTakenByABatchWhoseCallerLeftGoesBackToTheQueueAtOnce) {
  EngineServer s;
  sdk::Client client(ImpatientClientFor(s));
  FirstActivation a = StartAndPoll(client, "leave");
  RowHeld held(s.database_url(), a.execution);
  v1::SubmitWorkflowCommandsResponse taken;
  EXPECT_EQ(client.SubmitCommands(TakingBatch(a, "leave", 1), &taken).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server marks the call cancelled by its own timer or the client's reset, which may come a
  // moment after the client gave up: the batch goes on only once the server knows.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  held.Release();
  auto task = [&] {
    return Sql(s, "SELECT status || coalesce(lease_owner::text, '') FROM task_executions WHERE workflow_id = '" +
                      a.execution + "'");
  };
  EXPECT_TRUE(Eventually([&] { return task() == "PENDING"; }, std::chrono::seconds(5)))
      << "the batch was recorded and its task is not held for the caller that left: " << task();
}

TEST(EngineDispatchTest, TwoServersOnOneDatabaseNeverClaimWorkTwiceAndFireEachTimerOnce) {
  EngineServer first;
  EngineServer second({.database_url = first.database_url(), .create_tenants = false});
  std::vector<std::unique_ptr<sdk::Client>> clients;
  std::vector<std::unique_ptr<sdk::Worker>> workers;
  for (int i = 0; i < 6; ++i) {
    EngineServer& s = i % 2 ? second : first;
    clients.push_back(std::make_unique<sdk::Client>(s.ClientFor("acme")));
    workers.push_back(std::make_unique<sdk::Worker>(*clients.back(), sdk::WorkerOptions{}));
    workers.back()->RegisterWorkflow("timed", [](const History& h) -> std::vector<v1::WorkflowCommand> {
      if (h.Count("TIMER_STARTED") == 0) return {sdk::StartTimer("t", 300), sdk::Suspend()};
      if (h.Count("TIMER_FIRED") == 1 && h.Count("TASK_SCHEDULED") == 0)
        return {sdk::ScheduleTask("inc", "1"), sdk::Suspend()};
      if (h.Count("TASK_COMPLETED") == 1) return {sdk::Complete("null")};
      return {sdk::Suspend()};
    });
    workers.back()->RegisterTask("inc", Inc);
    ASSERT_TRUE(workers.back()->Start().ok());
  }
  for (int i = 0; i < 100; ++i) {
    v1::StartWorkflowResponse r;
    ASSERT_TRUE(clients[static_cast<size_t>(i % 6)]->StartWorkflow("timed", "null", &r).ok());
  }
  std::string db = DbName(first.database_url());
  std::string done;
  for (auto end = Clock::now() + 60s; Clock::now() < end;) {
    done = Postgres::Shared().Psql(db, "SELECT count(*) FROM workflow_executions WHERE status = 'COMPLETED'");
    if (done == "100") break;
    std::this_thread::sleep_for(200ms);
  }
  for (auto& w : workers) w->Stop();
  EXPECT_EQ(done, "100");
  EXPECT_EQ(Postgres::Shared().Psql(db,
                                    "SELECT count(*) FROM (SELECT execution_id FROM workflow_events WHERE type = "
                                    "'TIMER_FIRED' GROUP BY execution_id HAVING count(*) <> 1) bad"),
            "0");
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT count(*) FROM workflow_events WHERE type = 'TIMER_FIRED'"), "100");
  EXPECT_EQ(
      Postgres::Shared().Psql(db, "SELECT count(*) FROM task_executions WHERE completed_count <> 1 OR attempt <> 1"),
      "0");
  EXPECT_EQ(Postgres::Shared().Psql(db,
                                    "SELECT count(*) FROM (SELECT execution_id FROM workflow_events WHERE type = "
                                    "'TASK_STARTED' GROUP BY execution_id HAVING count(*) <> 1) bad"),
            "0");
  // Both replicas did work.
  EXPECT_NE(Postgres::Shared().Psql(db, "SELECT count(DISTINCT lease_owner) FROM task_executions"), "1");
}

// Median time from SubmitTask returning on one replica to a waiting poller on the other
// replica receiving the task.
std::chrono::milliseconds MedianCrossReplicaLatency(EngineServer& a, EngineServer& b, int samples) {
  sdk::Client submitter(a.ClientFor("acme"));
  sdk::Client poller(b.ClientFor("acme"));
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("latency");
  EXPECT_TRUE(poller.RegisterWorker(reg, &worker).ok());
  std::vector<std::chrono::microseconds> lat;
  for (int i = 0; i < samples; ++i) {
    std::atomic<bool> got{false};
    Clock::time_point received;
    std::thread t([&] {
      v1::PollTaskRequest req;
      req.set_worker_id(worker);
      req.set_queue("latency");
      req.set_timeout_ms(10000);
      v1::PollTaskResponse res;
      if (poller.PollTask(req, &res).ok() && res.has_work()) {
        received = Clock::now();
        got = true;
        (void)poller.CompleteTask(worker, res.task(), "null");
      }
    });
    EXPECT_TRUE(Eventually([&] {
      return ScrapeMetric(b.server().metrics_port(), "flovyn_long_polls_active", "kind=\"task\"") >= 1;
    })) << "the poller is waiting";
    v1::SubmitTaskRequest sub;
    sub.set_kind("ping");
    sub.set_queue("latency");
    std::string id;
    EXPECT_TRUE(submitter.SubmitTask(sub, &id).ok());
    auto sent = Clock::now();
    t.join();
    EXPECT_TRUE(got.load());
    if (got) lat.push_back(std::chrono::duration_cast<std::chrono::microseconds>(received - sent));
  }
  std::sort(lat.begin(), lat.end());
  return lat.empty() ? std::chrono::milliseconds(99999)
                     : std::chrono::duration_cast<std::chrono::milliseconds>(lat[lat.size() / 2]);
}

TEST(EngineDispatchTest, WithoutNatsPostgresNotifyWakesAPollerOnAnotherReplicaInUnder100ms) {
  EngineServer a;
  EngineServer b({.database_url = a.database_url(), .env = {{"METRICS__ENABLED", "true"}}, .create_tenants = false});
  auto median = MedianCrossReplicaLatency(a, b, 50);
  std::printf("median schedule-to-poll across replicas (PostgreSQL NOTIFY): %lld ms\n",
              static_cast<long long>(median.count()));
  EXPECT_LT(median, 100ms);
}

TEST(EngineDispatchTest, WithNatsAPollerOnAnotherReplicaWakesInUnder100msAndDispatchSurvivesNatsGoingDown) {
  Nats nats;
  std::map<std::string, std::string> env{
      {"NATS__ENABLED", "true"}, {"NATS__URL", nats.Url()}, {"METRICS__ENABLED", "true"}};
  EngineServer a({.env = env});
  EngineServer b({.database_url = a.database_url(), .env = env, .create_tenants = false});
  auto median = MedianCrossReplicaLatency(a, b, 50);
  std::printf("median schedule-to-poll across replicas (NATS): %lld ms\n", static_cast<long long>(median.count()));
  EXPECT_LT(median, 100ms);

  nats.Stop();
  // Slower (the periodic sweep) but still working.
  auto degraded = MedianCrossReplicaLatency(a, b, 3);
  EXPECT_LT(degraded, 2500ms);
  EXPECT_EQ(a.Rest("GET", "/_/health/live", "", "").status, 200);
}

TEST(EngineDispatchTest, SigtermReleasesFiftyWaitingLongPollsWithinASecondAndExitsZero) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("idle");
  ASSERT_TRUE(client.RegisterWorker(reg, &worker).ok());
  std::atomic<int> returned_ok{0};
  std::vector<Clock::time_point> returned(50);
  std::vector<std::thread> polls;
  for (int i = 0; i < 50; ++i) {
    polls.emplace_back([&, i] {
      v1::PollTaskRequest req;
      req.set_worker_id(worker);
      req.set_queue(i % 2 ? "q1" : "q2");
      req.set_timeout_ms(30000);
      v1::PollTaskResponse res;
      auto st = i % 3 == 0 ? [&] {
        v1::PollWorkflowRequest wreq;
        wreq.set_worker_id(worker);
        wreq.set_queue("q1");
        wreq.set_timeout_ms(30000);
        v1::PollWorkflowResponse wres;
        return client.PollWorkflow(wreq, &wres);
      }() : client.PollTask(req, &res);
      returned[static_cast<size_t>(i)] = Clock::now();
      if (st.ok() && !res.has_work()) ++returned_ok;
    });
  }
  ASSERT_TRUE(Eventually([&] { return ScrapeMetric(s.server().metrics_port(), "flovyn_long_polls_active") == 50; }))
      << "all fifty polls are waiting";
  auto t0 = Clock::now();
  s.server().process().Signal(SIGTERM);
  for (auto& t : polls) t.join();
  for (auto& r : returned) EXPECT_LT(r - t0, 1s);
  EXPECT_EQ(returned_ok.load(), 50) << "each poll answers 'no work'";
  EXPECT_EQ(s.server().process().Wait(10s), 0) << s.server().process().Log();
}

TEST(EngineDispatchTest, NotificationStreamSaysWorkIsAvailableAndEndsUnavailableOnDrain) {
  EngineServer s({.env = {{"SHUTDOWN__DELAY_SECS", "0"}, {"METRICS__ENABLED", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  grpc::ClientContext ctx;
  auto reader = client.Subscribe(&ctx, "notify-q");
  ASSERT_TRUE(Eventually([&] {
    return ScrapeMetric(s.server().metrics_port(), "flovyn_notification_streams_active") == 1;
  })) << "the stream is open";
  v1::SubmitTaskRequest sub;
  sub.set_kind("k");
  sub.set_queue("notify-q");
  std::string id;
  ASSERT_TRUE(client.SubmitTask(sub, &id).ok());
  v1::WorkNotification n;
  ASSERT_TRUE(reader->Read(&n));
  EXPECT_EQ(n.queue(), "notify-q");
  EXPECT_EQ(n.kind(), "task");
  s.server().process().Signal(SIGTERM);
  while (reader->Read(&n)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.server().process().Wait(10s), 0);
}

}  // namespace
}  // namespace flovyn::testing

namespace flovyn::testing {
namespace {

TEST(EngineDispatchTest, AWorkflowWhoseWorkerDiesIsHandedToAnotherAfterItsLease) {
  EngineServer s({.env = {{"ENGINE__WORKFLOW_LEASE_MS", "1000"}}});
  sdk::Client client(s.ClientFor("acme"));
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("k", "1", &started).ok());
  std::string a, b;
  v1::RegisterWorkerRequest reg;
  reg.set_name("a");
  ASSERT_TRUE(client.RegisterWorker(reg, &a).ok());
  ASSERT_TRUE(client.RegisterWorker(reg, &b).ok());
  v1::PollWorkflowRequest poll;
  poll.set_worker_id(a);
  poll.set_queue("default");
  poll.set_timeout_ms(5000);
  v1::PollWorkflowResponse first, second;
  ASSERT_TRUE(client.PollWorkflow(poll, &first).ok());
  ASSERT_TRUE(first.has_work());
  poll.set_worker_id(b);
  auto t0 = Clock::now();
  ASSERT_TRUE(client.PollWorkflow(poll, &second).ok());
  ASSERT_TRUE(second.has_work());
  EXPECT_EQ(second.execution().id(), started.execution_id());
  EXPECT_GE(Clock::now() - t0, 800ms);
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(a);
  sub.set_execution_id(started.execution_id());
  sub.set_expected_sequence(1);
  *sub.add_commands() = sdk::Complete("\"from the dead\"");
  v1::SubmitWorkflowCommandsResponse res;
  EXPECT_EQ(client.SubmitCommands(sub, &res).error_code(), grpc::StatusCode::ABORTED);
  sub.set_worker_id(b);
  sub.clear_commands();
  *sub.add_commands() = sdk::Complete("\"alive\"");
  ASSERT_TRUE(client.SubmitCommands(sub, &res).ok());
  EXPECT_EQ(s.WaitWorkflow("acme", started.execution_id())["output"], "alive");
}

TEST(EngineDispatchTest, HeartbeatsExtendTheLeaseProgressIsVisibleAndCancellationIsReported) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  v1::SubmitTaskRequest req;
  req.set_kind("long");
  std::string task_id;
  ASSERT_TRUE(client.SubmitTask(req, &task_id).ok());
  std::string w;
  v1::RegisterWorkerRequest reg;
  reg.set_name("w");
  ASSERT_TRUE(client.RegisterWorker(reg, &w).ok());
  v1::PollTaskRequest poll;
  poll.set_worker_id(w);
  poll.set_queue("default");
  poll.set_timeout_ms(5000);
  v1::PollTaskResponse claim;
  ASSERT_TRUE(client.PollTask(poll, &claim).ok());
  ASSERT_TRUE(claim.has_work());
  v1::TaskHeartbeatResponse hb;
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(client.HeartbeatTask(w, claim.task(), &hb).ok());
  EXPECT_GT(hb.lease_expires_at_ms(), claim.task().lease_expires_at_ms());
  // Progress is recorded and visible over REST.
  {
    grpc::ClientContext ctx;
    client.Prepare(&ctx, 5s);
    auto stub =
        v1::TaskExecution::NewStub(grpc::CreateChannel(client.options().target, grpc::InsecureChannelCredentials()));
    v1::ReportProgressRequest pr;
    pr.set_worker_id(w);
    pr.set_task_id(task_id);
    pr.set_attempt(claim.task().attempt());
    pr.set_progress_json(R"({"percent":40})");
    v1::ReportProgressResponse prr;
    ASSERT_TRUE(stub->ReportProgress(&ctx, pr, &prr).ok());
  }
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/tasks/" + task_id)["progress"], json({{"percent", 40}}));
  // Cancelled: the holder learns at its next heartbeat, and its result is refused.
  ASSERT_TRUE(client.CancelTask(task_id, "no longer needed").ok());
  ASSERT_TRUE(client.HeartbeatTask(w, claim.task(), &hb).ok());
  EXPECT_TRUE(hb.cancel_requested());
  v1::Task other_attempt = claim.task();
  other_attempt.set_attempt(claim.task().attempt() + 1);
  EXPECT_EQ(client.HeartbeatTask(w, other_attempt, &hb).error_code(), grpc::StatusCode::ABORTED)
      << "only the holder of that attempt is told";
  EXPECT_EQ(client.CompleteTask(w, claim.task(), "1").error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/tasks/" + task_id)["status"], "CANCELLED");
}

}  // namespace
}  // namespace flovyn::testing
