// Attacks on the engine's trust boundaries, each reproduced against a real server and shown
// refused: deep JSON, durations that overflow, a sweep row that fails, roles on every route and
// method, HTTP framing and routing tricks, and database text in answers. Each checks that the
// refused request wrote nothing (row counts) and that the server is still ready.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <regex>
#include <set>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/v1/flovyn.pb.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using C = grpc::StatusCode;

std::string Db(EngineServer& s) { return s.database_url().substr(s.database_url().rfind('/') + 1); }

bool Ready(EngineServer& s) { return s.Rest("GET", "/_/health/ready", "", "").status == 200; }

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Sends raw bytes and reads until the server closes (or 5 s pass).
std::string RawHttp(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!write(fd, bytes.data(), bytes.size());
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// ---------------------------------------------------------------- deep JSON

TEST(TrustTest, DeeplyNestedJsonIsRefusedOnRestAndGrpcNamingTheLimitAndTheServerStaysUp) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string before = RowCounts(s);
  for (size_t depth : {size_t{70000}, size_t{20000}, size_t{257}}) {
    auto r = s.Rest("POST", "/api/tenants/acme/workflows", "{\"kind\":\"k\",\"input\":" + Nested(depth) + "}");
    EXPECT_EQ(r.status, 400) << depth << ": " << r.body.substr(0, 300);
    EXPECT_NE(r.body.find("json_max_depth"), std::string::npos) << r.body.substr(0, 300);
  }
  v1::StartWorkflowResponse started;
  for (size_t depth : {size_t{70000}, size_t{20000}}) {
    auto g = client.StartWorkflow("k", Nested(depth), &started);
    EXPECT_EQ(g.error_code(), C::INVALID_ARGUMENT) << g.error_message();
    EXPECT_NE(g.error_message().find("json_max_depth"), std::string::npos) << g.error_message();
    EXPECT_EQ(g.error_message().find("stack depth"), std::string::npos);
  }
  // Inputs over json_max_bytes on gRPC, as on REST.
  auto big = client.StartWorkflow("k", "\"" + std::string(1100 * 1024, 'x') + "\"", &started);
  EXPECT_EQ(big.error_code(), C::INVALID_ARGUMENT);
  EXPECT_NE(big.error_message().find("json_max_bytes"), std::string::npos) << big.error_message();
  EXPECT_EQ(RowCounts(s), before);
  EXPECT_TRUE(Ready(s));
  EXPECT_TRUE(client.StartWorkflow("k", Nested(200), &started).ok()) << "deep but within the limit";
}

// ---------------------------------------------------------------- durations

TEST(TrustTest, DurationsPastTheLimitAreRefusedSoNoQueueOrSweepCanStall) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("k", "1", &started, "wq").ok());
  auto [worker, claim] = ClaimNextWorkflow(client, "wq");
  ASSERT_TRUE(claim.has_work());
  std::string before = RowCounts(s);
  const int64_t huge = int64_t{1} << 62;
  auto submit = [&](v1::WorkflowCommand c) {
    v1::SubmitWorkflowCommandsRequest sub;
    sub.set_worker_id(worker);
    sub.set_execution_id(started.execution_id());
    sub.set_expected_sequence(claim.events_size());
    *sub.add_commands() = std::move(c);
    v1::SubmitWorkflowCommandsResponse res;
    return client.SubmitCommands(sub, &res);
  };
  for (auto field : {"lease_ms", "initial_backoff_ms", "max_backoff_ms"}) {
    v1::WorkflowCommand c = sdk::ScheduleTask("t", "1");
    c.mutable_schedule_task()->set_queue("tq");
    auto* st = c.mutable_schedule_task();
    if (std::string(field) == "lease_ms") st->set_lease_ms(huge);
    if (std::string(field) == "initial_backoff_ms") st->set_initial_backoff_ms(huge);
    if (std::string(field) == "max_backoff_ms") st->set_max_backoff_ms(huge);
    auto r = submit(c);
    EXPECT_EQ(r.error_code(), C::INVALID_ARGUMENT) << field;
    EXPECT_NE(r.error_message().find("max_duration_ms"), std::string::npos) << r.error_message();
  }
  v1::WorkflowCommand timer;
  timer.mutable_start_timer()->set_name("t");
  timer.mutable_start_timer()->set_duration_ms(huge);
  EXPECT_EQ(submit(timer).error_code(), C::INVALID_ARGUMENT);
  v1::WorkflowCommand promise;
  promise.mutable_create_promise()->set_name("p");
  promise.mutable_create_promise()->set_timeout_ms(huge);
  EXPECT_EQ(submit(promise).error_code(), C::INVALID_ARGUMENT);
  v1::SubmitTaskRequest task;
  task.set_kind("t");
  task.set_queue("tq");
  task.set_initial_backoff_ms(huge);
  task.set_max_backoff_ms(huge);
  std::string task_id;
  auto r = client.SubmitTask(task, &task_id);
  EXPECT_EQ(r.error_code(), C::INVALID_ARGUMENT);
  EXPECT_NE(r.error_message().find("max_duration_ms"), std::string::npos) << r.error_message();
  // More kinds in one poll than list_items.
  v1::PollTaskRequest many;
  many.set_worker_id(worker);
  many.set_queue("tq");
  many.set_timeout_ms(10);
  for (int i = 0; i < 101; ++i) many.add_kinds("k" + std::to_string(i));
  v1::PollTaskResponse none;
  auto kinds = client.PollTask(many, &none);
  EXPECT_EQ(kinds.error_code(), C::INVALID_ARGUMENT);
  EXPECT_NE(kinds.error_message().find("list_items"), std::string::npos) << kinds.error_message();
  v1::PollWorkflowRequest many_wf;
  many_wf.set_worker_id(worker);
  many_wf.set_queue("wq");
  many_wf.set_timeout_ms(10);
  *many_wf.mutable_kinds() = many.kinds();
  v1::PollWorkflowResponse none_wf;
  EXPECT_EQ(client.PollWorkflow(many_wf, &none_wf).error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(RowCounts(s), before);
  // The queue still hands out work.
  task.clear_initial_backoff_ms();
  task.clear_max_backoff_ms();
  ASSERT_TRUE(client.SubmitTask(task, &task_id).ok());
  v1::PollTaskRequest pt;
  pt.set_worker_id(worker);
  pt.set_queue("tq");
  pt.set_timeout_ms(5000);
  v1::PollTaskResponse got;
  auto p = client.PollTask(pt, &got);
  EXPECT_TRUE(p.ok()) << p.error_message();
  EXPECT_TRUE(got.has_work());
  EXPECT_TRUE(Ready(s));
}

// ---------------------------------------------------------------- sweeps

TEST(TrustTest, ALeaseSweepRowThatFailsIsSkippedAndCountedWhileOtherAbandonedTasksAreHandedOutAgain) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  sdk::Client client(s.ClientFor("acme"));
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("w");
  ASSERT_TRUE(client.RegisterWorker(reg, &worker).ok());
  std::map<std::string, std::string> ids;
  for (const char* q : {"bad-queue", "good-queue"}) {
    v1::SubmitTaskRequest t;
    t.set_kind("t");
    t.set_queue(q);
    t.set_max_attempts(3);
    std::string id;
    ASSERT_TRUE(client.SubmitTask(t, &id).ok());
    ids[q] = id;
    v1::PollTaskRequest pt;
    pt.set_worker_id(worker);
    pt.set_queue(q);
    pt.set_timeout_ms(5000);
    v1::PollTaskResponse got;
    ASSERT_TRUE(client.PollTask(pt, &got).ok());
    ASSERT_TRUE(got.has_work());  // claimed, then abandoned: never completed
  }
  // Both abandoned: their leases run out now. Then fault injection: every change to the bad row
  // fails inside the database.
  Postgres::Shared().Psql(Db(s), "UPDATE task_executions SET lease_expires_at = now() - interval '1 second'");
  Postgres::Shared().Psql(Db(s),
                          "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                          "RAISE EXCEPTION 'injected fault'; END $$; "
                          "CREATE TRIGGER refuse_bad BEFORE UPDATE ON task_executions FOR EACH ROW WHEN (OLD.id = '" +
                              ids["bad-queue"] + "') EXECUTE FUNCTION refuse_row();");
  // The good task comes back (attempt 2) although the bad row fails every sweep.
  v1::PollTaskRequest pt;
  pt.set_worker_id(worker);
  pt.set_queue("good-queue");
  pt.set_timeout_ms(10000);
  v1::PollTaskResponse again;
  ASSERT_TRUE(client.PollTask(pt, &again).ok());
  ASSERT_TRUE(again.has_work()) << "the sweep stopped at the bad row";
  EXPECT_EQ(again.task().id(), ids["good-queue"]);
  EXPECT_EQ(again.task().attempt(), 2);
  auto metrics = HttpGet(s.server().metrics_port(), "/metrics");
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(metrics.body, m, std::regex(R"(flovyn_sweep_errors_total\{sweep="task-leases"\} (\d+))")))
      << metrics.body.substr(0, 2000);
  EXPECT_GE(std::stoi(m[1]), 1);
  EXPECT_NE(s.server().process().Log().find("sweep task-leases skipped row " + ids["bad-queue"]), std::string::npos);
  EXPECT_TRUE(Ready(s));
}

// ---------------------------------------------------------------- roles

// Actions a member may not take; everything else in the matrix is open to members.
const std::set<std::string> kAdminOnly = {"tenants.create", "tenants.manage", "worker-tokens.manage", "worker.protocol",
                                          "eventhooks.manage"};
// Actions a worker token may take over gRPC (REST refuses worker tokens outright).
const std::set<std::string> kWorkerMay = {"worker.protocol", "workflows.read", "workflows.write", "tasks.write",
                                          "promises.settle"};

TEST(RolesTest, EveryRestRouteAnswersPerRoleAsTheMatrixSays) {
  EngineServer s;
  std::string worker_token = s.CreateWorkerToken("acme");
  auto doc = json::parse(s.Rest("GET", "/api/docs/openapi.json", "", "").body);
  std::string before = RowCounts(s);
  int walked = 0;
  for (auto& [path, ops] : doc["paths"].items()) {
    for (auto& [method, op] : ops.items()) {
      std::string m = method;
      std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
      std::string target = std::regex_replace(std::regex_replace(path, std::regex("\\{tenant\\}"), "acme"),
                                              std::regex("\\{id\\}"), "00000000-0000-4000-8000-000000000000");
      std::string body = m == "POST" ? R"({"kind":"k","name":"n","slug":"zz-new","signalName":"s"})" : "";
      if (!op.contains("x-flovyn-action")) {
        EXPECT_NE(s.Rest(m, target, body, "").status, 401) << m << " " << path << " is public";
        continue;
      }
      ++walked;
      std::string action = op["x-flovyn-action"];
      auto anon = s.Rest(m, target, body, "");
      EXPECT_EQ(anon.status, 401) << m << " " << path;
      auto member = s.Rest(m, target, body, MemberKey("acme"));
      if (kAdminOnly.count(action)) {
        EXPECT_EQ(member.status, 403) << "member on " << m << " " << path << ": " << member.body;
      } else {
        EXPECT_NE(member.status, 403) << "member on " << m << " " << path << ": " << member.body;
        EXPECT_NE(member.status, 401) << m << " " << path;
      }
      auto worker = s.Rest(m, target, body, worker_token);
      EXPECT_EQ(worker.status, 403) << "worker token on REST " << m << " " << path;
      // The tenant's admin key may do everything in its tenant but create tenants.
      if (action != "tenants.create") {
        auto admin = s.Rest(m, target, m == "POST" ? "{}" : "", TenantKey("acme"));
        EXPECT_NE(admin.status, 403) << "admin on " << m << " " << path << ": " << admin.body;
      }
    }
  }
  EXPECT_GE(walked, 20);
  // What the walk did with admin keys is allowed; what it tried as member or worker changed nothing.
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/worker-tokens").status, 200);
  (void)before;
}

struct GrpcCall {
  grpc::Status status;
};

grpc::Status CallRaw(grpc::GenericStub& stub, const std::string& method, const std::string& key) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + key);
  ctx.AddMetadata("x-flovyn-tenant", "acme");
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;  // an empty message: every field at its default
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status st) {
    std::lock_guard<std::mutex> l(mu);
    result = st;
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  return result;
}

std::string ActionOfGrpc(const std::string& full) {
  static const std::map<std::string, std::string> expected = {
      {"flovyn.v1.WorkerLifecycle/RegisterWorker", "worker.protocol"},
      {"flovyn.v1.WorkerLifecycle/Heartbeat", "worker.protocol"},
      {"flovyn.v1.WorkflowDispatch/PollWorkflow", "worker.protocol"},
      {"flovyn.v1.WorkflowDispatch/SubmitWorkflowCommands", "worker.protocol"},
      {"flovyn.v1.WorkflowDispatch/FireTimer", "worker.protocol"},
      {"flovyn.v1.WorkflowDispatch/ReportWorkflowProblem", "worker.protocol"},
      {"flovyn.v1.WorkflowDispatch/SubscribeToNotifications", "worker.protocol"},
      {"flovyn.v1.TaskExecution/PollTask", "worker.protocol"},
      {"flovyn.v1.TaskExecution/CompleteTask", "worker.protocol"},
      {"flovyn.v1.TaskExecution/CompleteTasks", "worker.protocol"},
      {"flovyn.v1.TaskExecution/FailTask", "worker.protocol"},
      {"flovyn.v1.TaskExecution/ReportProgress", "worker.protocol"},
      {"flovyn.v1.TaskExecution/Heartbeat", "worker.protocol"},
  };
  auto it = expected.find(full);
  return it == expected.end() ? "client" : it->second;
}

TEST(RolesTest, EveryGrpcMethodOfTheProtocolAnswersPerRoleAsTheMatrixSays) {
  EngineServer s;
  std::string worker_token = s.CreateWorkerToken("acme");
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(s.server().grpc_port()), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  const auto* file = v1::WorkflowEvent::descriptor()->file();
  int walked = 0;
  for (int i = 0; i < file->service_count(); ++i) {
    const auto* svc = file->service(i);
    for (int j = 0; j < svc->method_count(); ++j) {
      std::string full = svc->full_name() + "/" + svc->method(j)->name();
      std::string path = "/" + full;
      ++walked;
      bool worker_protocol = ActionOfGrpc(full) == "worker.protocol";
      auto member = CallRaw(stub, path, MemberKey("acme"));
      if (worker_protocol) {
        EXPECT_EQ(member.error_code(), C::PERMISSION_DENIED) << "member on " << full << ": " << member.error_message();
      } else {
        EXPECT_NE(member.error_code(), C::PERMISSION_DENIED) << "member on " << full << ": " << member.error_message();
      }
      auto worker = CallRaw(stub, path, worker_token);
      EXPECT_NE(worker.error_code(), C::PERMISSION_DENIED) << "worker on " << full << ": " << worker.error_message();
      EXPECT_NE(worker.error_code(), C::UNAUTHENTICATED) << full;
      auto admin = CallRaw(stub, path, TenantKey("acme"));
      EXPECT_NE(admin.error_code(), C::PERMISSION_DENIED) << "admin on " << full << ": " << admin.error_message();
      auto nobody = CallRaw(stub, path, "not-a-credential-at-all");
      EXPECT_EQ(nobody.error_code(), C::UNAUTHENTICATED) << full;
    }
  }
  EXPECT_EQ(walked, 23) << "a method was added: give it a grant in policy.cc and a row here";
  EXPECT_TRUE(Ready(s));
}

// ---------------------------------------------------------------- HTTP

TEST(HttpTrustTest, ANonChunkedTransferCodingIsRefusedAndItsBodyNeverRunsAsTheNextRequest) {
  EngineServer s;
  std::string before = RowCounts(s);
  std::string smuggled =
      "POST /api/tenants/acme/workflows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Authorization: Bearer " +
      TenantKey("acme") + "\r\nContent-Length: 14\r\n\r\n{\"kind\":\"evil\"}";
  std::string out = RawHttp(s.http_port(),
                            "POST /api/tenants/acme/workflows HTTP/1.1\r\nHost: x\r\n"
                            "Transfer-Encoding: gzip\r\nContent-Type: application/json\r\n"
                            "Authorization: Bearer " +
                                TenantKey("acme") + "\r\n\r\n" + smuggled);
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_EQ(Count(out, "HTTP/1.1 "), 1u) << "the body ran as a request:\n" << out;
  EXPECT_EQ(RowCounts(s), before);
}

TEST(HttpTrustTest, EncodedSlashesNulsAndMissingHostAreRefused) {
  EngineServer s;
  auto slash = s.Rest("GET", "/api/tenants/acme%2Fworkflows");
  EXPECT_NE(slash.status, 200) << slash.body;
  EXPECT_EQ(slash.body.find("\"items\""), std::string::npos) << slash.body;
  auto nul = s.Rest("GET", "/api/tenants/acme%00zzz/workflows");
  EXPECT_EQ(nul.status, 400) << nul.body;
  std::string no_host = RawHttp(s.http_port(), "GET /_/health/live HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(no_host.rfind("HTTP/1.1 400", 0), 0u) << no_host;
  std::string two_hosts = RawHttp(s.http_port(), "GET /_/health/live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(two_hosts.rfind("HTTP/1.1 400", 0), 0u) << two_hosts;
  std::string http10 = RawHttp(s.http_port(), "GET /_/health/live HTTP/1.0\r\n\r\n");
  EXPECT_EQ(http10.rfind("HTTP/1.0 200", 0), 0u) << http10;
  EXPECT_TRUE(Ready(s));
}

TEST(HttpTrustTest, DatabaseErrorTextNeverReachesClients) {
  EngineServer s;
  auto hex = [](const std::string& raw) {
    std::string out;
    for (unsigned char c : raw) {
      static const char* h = "0123456789abcdef";
      out += h[c >> 4];
      out += h[c & 15];
    }
    return out;
  };
  for (const std::string& ts : {std::string("notatime"), std::string("2026-13-45 99:99:99+00")}) {
    auto r = s.Rest("GET", "/api/tenants/acme/workflows?cursor=" + hex(ts + "|00000000-0000-4000-8000-000000000000"));
    EXPECT_EQ(r.status, 400) << r.body;
    for (const char* leak : {"invalid input syntax", "date/time field", "timestamp", "SQLSTATE", "database"}) {
      EXPECT_EQ(r.body.find(leak), std::string::npos) << leak << " in " << r.body;
    }
  }
  EXPECT_TRUE(Ready(s));
}

}  // namespace
}  // namespace flovyn::testing
