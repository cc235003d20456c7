// The REST API and the gRPC protocol at their edges: tenant isolation, bad input on every
// route and call, and the OpenAPI document.
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Route {
  std::string method, path;
};

std::vector<Route> DocumentedRoutes(EngineServer& s) {
  auto r = s.Rest("GET", "/api/docs/openapi.json", "", "");
  EXPECT_EQ(r.status, 200);
  std::vector<Route> out;
  auto doc = json::parse(r.body);
  for (auto& [path, ops] : doc["paths"].items()) {
    for (auto& [method, op] : ops.items()) {
      std::string m = method;
      std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
      out.push_back({m, path});
    }
  }
  return out;
}

std::string Fill(std::string path, const std::map<std::string, std::string>& params) {
  for (const auto& [k, v] : params) {
    auto p = path.find("{" + k + "}");
    if (p != std::string::npos) path.replace(p, k.size() + 2, v);
  }
  return path;
}

TEST(EngineApiTest, OpenApiDocumentIsValidAndListsEveryRouteTheServerServes) {
  EngineServer s;
  auto r = s.Rest("GET", "/api/docs/openapi.json", "", "");
  ASSERT_EQ(r.status, 200);
  auto doc = json::parse(r.body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  EXPECT_TRUE(doc["info"]["title"].is_string());
  std::set<std::string> documented;
  for (const auto& route : DocumentedRoutes(s)) documented.insert(route.method + " " + route.path);
  // Every route the server answers, probed: a route that is not documented must not exist
  // (404/405), and each documented one must not be 404 "no route".
  std::vector<std::string> served = {"POST /api/tenants",
                                     "GET /api/tenants",
                                     "GET /api/tenants/{tenant}",
                                     "GET /api/tenants/{tenant}/retention",
                                     "PUT /api/tenants/{tenant}/retention",
                                     "POST /api/tenants/{tenant}/workflows",
                                     "GET /api/tenants/{tenant}/workflows",
                                     "GET /api/tenants/{tenant}/workflow-counts",
                                     "GET /api/tenants/{tenant}/workflows/{id}",
                                     "GET /api/tenants/{tenant}/workflows/{id}/events",
                                     "GET /api/tenants/{tenant}/workflows/{id}/state",
                                     "POST /api/tenants/{tenant}/workflows/{id}/cancel",
                                     "POST /api/tenants/{tenant}/workflows/{id}/signals",
                                     "POST /api/tenants/{tenant}/workflows/{id}/search-attributes",
                                     "POST /api/tenants/{tenant}/signal-with-start",
                                     "POST /api/tenants/{tenant}/tasks",
                                     "GET /api/tenants/{tenant}/tasks",
                                     "GET /api/tenants/{tenant}/tasks/{id}",
                                     "POST /api/tenants/{tenant}/tasks/{id}/cancel",
                                     "POST /api/tenants/{tenant}/promises/{id}/resolve",
                                     "POST /api/tenants/{tenant}/promises/{id}/reject",
                                     "GET /api/tenants/{tenant}/workers",
                                     "POST /api/tenants/{tenant}/worker-tokens",
                                     "GET /api/tenants/{tenant}/worker-tokens",
                                     "DELETE /api/tenants/{tenant}/worker-tokens/{id}",
                                     "POST /api/tenants/{tenant}/eventhook/in/{source}",
                                     "POST /api/tenants/{tenant}/eventhook/sources",
                                     "GET /api/tenants/{tenant}/eventhook/sources",
                                     "GET /api/tenants/{tenant}/eventhook/sources/{id}",
                                     "POST /api/tenants/{tenant}/eventhook/sources/{id}/enabled",
                                     "DELETE /api/tenants/{tenant}/eventhook/sources/{id}",
                                     "POST /api/tenants/{tenant}/eventhook/routes",
                                     "GET /api/tenants/{tenant}/eventhook/routes",
                                     "GET /api/tenants/{tenant}/eventhook/routes/{id}",
                                     "DELETE /api/tenants/{tenant}/eventhook/routes/{id}",
                                     "GET /api/tenants/{tenant}/eventhook/events",
                                     "GET /api/tenants/{tenant}/eventhook/events/{id}",
                                     "POST /api/tenants/{tenant}/eventhook/events/{id}/reprocess",
                                     "POST /api/tenants/{tenant}/schedules",
                                     "GET /api/tenants/{tenant}/schedules",
                                     "GET /api/tenants/{tenant}/schedules/{id}",
                                     "DELETE /api/tenants/{tenant}/schedules/{id}",
                                     "POST /api/tenants/{tenant}/schedules/{id}/pause",
                                     "POST /api/tenants/{tenant}/schedules/{id}/resume",
                                     "POST /api/tenants/{tenant}/schedules/{id}/trigger",
                                     "POST /api/tenants/{tenant}/schedules/{id}/backfill",
                                     "GET /api/docs/openapi.json"};
  EXPECT_EQ(documented, std::set<std::string>(served.begin(), served.end()));
  for (const auto& route : DocumentedRoutes(s)) {
    auto res =
        s.Rest(route.method, Fill(route.path, {{"tenant", "acme"}, {"id", "00000000-0000-4000-8000-000000000000"}}),
               route.method == "POST" ? "{}" : "");
    bool no_route = res.status == 404 && res.body.find("no route for") != std::string::npos;
    EXPECT_FALSE(no_route) << route.method << " " << route.path << " is documented but not served";
  }
}

TEST(EngineApiTest, TenantIsolationOnEveryRoute) {
  EngineServer s({.tenants = {"acme", "globex"}});
  // Objects of tenant B (globex).
  std::string b_key = TenantKey("globex");
  std::string b_workflow = s.RestJson("POST", "/api/tenants/globex/workflows", R"({"kind":"k"})", b_key)["id"];
  std::string b_task = s.RestJson("POST", "/api/tenants/globex/tasks", R"({"kind":"t"})", b_key)["id"];
  std::string b_token_id = s.RestJson("POST", "/api/tenants/globex/worker-tokens", R"({"name":"b"})", b_key)["id"];
  sdk::ClientOptions o = s.ClientFor("acme");
  std::string a_token = s.CreateWorkerToken("acme");
  std::string before = RowCounts(s);

  std::string a_key = TenantKey("acme");
  for (const auto& route : DocumentedRoutes(s)) {
    if (route.path.find("{tenant}") == std::string::npos) continue;
    // Event deliveries carry no user credential: the source's verifier admits them (EventhookTest).
    if (route.path.find("/eventhook/in/") != std::string::npos) continue;
    // A's key on B's tenant path: 403, whatever the route.
    std::string id = route.path.find("/tasks/") != std::string::npos          ? b_task
                     : route.path.find("worker-tokens/") != std::string::npos ? b_token_id
                                                                              : b_workflow;
    auto on_b =
        s.Rest(route.method, Fill(route.path, {{"tenant", "globex"}, {"id", id}}), R"({"kind":"x","name":"x"})", a_key);
    EXPECT_EQ(on_b.status, 403) << route.method << " " << route.path << ": " << on_b.body;
    // A's key on A's path naming B's object: 404 (the object does not exist for A).
    if (route.path.find("{id}") != std::string::npos) {
      auto by_id =
          s.Rest(route.method, Fill(route.path, {{"tenant", "acme"}, {"id", id}}), R"({"name":"x","value":1})", a_key);
      EXPECT_EQ(by_id.status, 404) << route.method << " " << route.path << ": " << by_id.body;
    }
  }
  // Listing shows only one's own.
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows", "", a_key)["items"].size(), 0u);
  auto tenants = s.RestJson("GET", "/api/tenants", "", a_key)["items"];
  ASSERT_EQ(tenants.size(), 1u);
  EXPECT_EQ(tenants[0]["slug"], "acme");
  EXPECT_EQ(s.Rest("POST", "/api/tenants", R"({"slug":"mine"})", a_key).status, 403)
      << "only platform admins create tenants";

  // gRPC: A's worker token cannot act for B, nor see B's objects.
  sdk::Client a(o);
  std::vector<v1::WorkflowEvent> events;
  EXPECT_EQ(a.GetEvents(b_workflow, &events).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(a.Signal(b_workflow, "s", "1").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(a.CancelTask(b_task).error_code(), grpc::StatusCode::NOT_FOUND);
  o.tenant = "globex";
  sdk::Client a_as_b(o);
  v1::StartWorkflowResponse started;
  EXPECT_EQ(a_as_b.StartWorkflow("k", "1", &started).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A's poller never receives B's work.
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("a");
  ASSERT_TRUE(a.RegisterWorker(reg, &worker).ok());
  before = RowCounts(s);
  v1::PollWorkflowRequest poll;
  poll.set_worker_id(worker);
  poll.set_queue("default");
  poll.set_timeout_ms(300);
  v1::PollWorkflowResponse res;
  ASSERT_TRUE(a.PollWorkflow(poll, &res).ok());
  EXPECT_FALSE(res.has_work());
  EXPECT_EQ(RowCounts(s), before) << "nothing changed";
  // No credentials: 401; an unknown key: 401; a worker token on REST: 403.
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows", "", "").status, 401);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows", "", "not-a-real-key-at-all").status, 401);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows", "", a_token).status, 403);
}

TEST(EngineApiTest, BadInputOnEveryRestRouteIsAClear4xxAndChangesNothing) {
  EngineServer s;
  std::string wf = s.RestJson("POST", "/api/tenants/acme/workflows", R"({"kind":"k"})")["id"];
  std::string before = RowCounts(s);
  std::string unknown = "7f1e2d3c-0000-4000-8000-000000000000";
  for (const auto& route : DocumentedRoutes(s)) {
    // Event deliveries take any body their sender signs (EventhookTest covers their limits).
    if (route.path.find("/eventhook/in/") != std::string::npos) continue;
    std::string path = Fill(route.path, {{"tenant", "acme"}, {"id", unknown}});
    if (route.method == "POST") {
      std::string with_known = Fill(route.path, {{"tenant", "acme"}, {"id", wf}});
      struct Case {
        std::string body, content_type;
        int status;
      };
      std::vector<Case> cases = {
          {"{not json", "application/json", 400},
          {"[1,2]", "application/json", 400},
          // Wrong types: 400, or 404 where the route's object does not exist (resolve takes any value).
          {R"({"kind": 5, "name": 7, "slug": 9, "signalName": 1, "error": 2, "maxAttempts": "x", "reason": 4})",
           "application/json", 0},
          {std::string("{\"kind\":\"\xff\xfe\",\"name\":\"\xc3\x28\"}"), "application/json", 400},
          {R"({"kind":"k"})", "text/plain", 400},
          {std::string(2 * 1024 * 1024, ' '), "application/json", 413},
      };
      for (const auto& c : cases) {
        auto r = HttpRequest(
            "POST", s.http_port(), with_known, c.body,
            {{"Authorization", std::string("Bearer ") + (route.path == "/api/tenants" ? kAdminKey : TenantKey("acme"))},
             {"Content-Type", c.content_type}});
        if (c.status == 0) {
          EXPECT_TRUE(r.status == 400 || r.status == 404) << route.path << ": " << r.status << " " << r.body;
        } else {
          EXPECT_EQ(r.status, c.status) << route.path << " body " << c.body.substr(0, 20) << ": "
                                        << r.body.substr(0, 200);
        }
        if (r.status != 413) {
          auto err = json::parse(r.body, nullptr, false);
          EXPECT_TRUE(err.contains("error") && err["error"].contains("message")) << r.body;
        }
        EXPECT_EQ(r.body.find("terminate"), std::string::npos);
      }
    }
    if (route.path.find("{id}") != std::string::npos) {
      for (const std::string& id : {unknown, std::string("not-a-uuid"), std::string("1%27%20OR%201%3D1")}) {
        auto r = s.Rest(route.method, Fill(route.path, {{"tenant", "acme"}, {"id", id}}),
                        route.method == "POST" ? R"({"name":"n","value":1})" : "");
        EXPECT_EQ(r.status, 404) << route.method << " " << route.path << " id " << id << ": " << r.body;
      }
    }
    (void)path;
  }
  // Query parameters.
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows?limit=0").status, 400);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows?limit=abc").status, 400);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows?status=DONE").status, 400);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows?cursor=zz").status, 400);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/tasks?status=nope").status, 400);
  EXPECT_EQ(s.Rest("GET", "/api/tenants/no-such-tenant/workflows", "", kAdminKey).status, 404);
  EXPECT_EQ(s.Rest("POST", "/api/tenants", R"({"slug":"Bad Slug!"})", kAdminKey).status, 400);
  EXPECT_EQ(s.Rest("POST", "/api/tenants", R"({"slug":"acme"})", kAdminKey).status, 409);
  EXPECT_EQ(RowCounts(s), before) << "bad input changed nothing";
  EXPECT_EQ(s.Rest("GET", "/_/health/ready", "", "").status, 200) << "and the server is still ready";
}

TEST(EngineApiTest, BadInputOnEveryGrpcCallIsInvalidArgumentOrNotFoundAndChangesNothing) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  std::string before = RowCounts(s);
  std::string unknown = "7f1e2d3c-0000-4000-8000-000000000000";
  using C = grpc::StatusCode;
  v1::StartWorkflowResponse started;
  EXPECT_EQ(client.StartWorkflow("", "1", &started).error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.StartWorkflow("k", "{broken", &started).error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.StartWorkflow("k", std::string(5 * 1024 * 1024, 'x'), &started).error_code(), C::RESOURCE_EXHAUSTED);
  auto utf8 = client.StartWorkflow("k\xff\xfe", "\"\xc3\x28\"", &started);
  EXPECT_EQ(utf8.error_code(), C::INVALID_ARGUMENT) << utf8.error_message();
  EXPECT_EQ(client.Signal(unknown, "s", "1").error_code(), C::NOT_FOUND);
  EXPECT_EQ(client.Signal("garbage", "s", "1").error_code(), C::NOT_FOUND);
  EXPECT_EQ(client.Signal(unknown, "", "1").error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.ResolvePromise(unknown, "1").error_code(), C::NOT_FOUND);
  EXPECT_EQ(client.ResolvePromise(unknown, "{x").error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.RejectPromise("nope", "e").error_code(), C::NOT_FOUND);
  std::vector<v1::WorkflowEvent> events;
  EXPECT_EQ(client.GetEvents(unknown, &events).error_code(), C::NOT_FOUND);
  std::map<std::string, std::string> state;
  EXPECT_EQ(client.GetState(unknown, &state).error_code(), C::NOT_FOUND);
  v1::SubmitTaskRequest task;
  std::string task_id;
  EXPECT_EQ(client.SubmitTask(task, &task_id).error_code(), C::INVALID_ARGUMENT);
  task.set_kind("k");
  task.set_input_json("[unclosed");
  EXPECT_EQ(client.SubmitTask(task, &task_id).error_code(), C::INVALID_ARGUMENT);
  task.set_input_json("1");
  task.set_max_attempts(-3);
  EXPECT_EQ(client.SubmitTask(task, &task_id).error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.CancelTask(unknown).error_code(), C::NOT_FOUND);
  v1::SignalWithStartRequest sws;
  v1::SignalWithStartResponse sws_res;
  EXPECT_EQ(client.SignalWithStart(sws, &sws_res).error_code(), C::INVALID_ARGUMENT);

  std::string worker;
  v1::RegisterWorkerRequest reg;
  EXPECT_EQ(client.RegisterWorker(reg, &worker).error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.WorkerHeartbeat(unknown).error_code(), C::NOT_FOUND);
  v1::PollWorkflowRequest pw;
  v1::PollWorkflowResponse pwr;
  EXPECT_EQ(client.PollWorkflow(pw, &pwr).error_code(), C::INVALID_ARGUMENT) << "worker_id and queue are required";
  v1::PollTaskRequest pt;
  pt.set_worker_id("w");
  v1::PollTaskResponse ptr;
  EXPECT_EQ(client.PollTask(pt, &ptr).error_code(), C::INVALID_ARGUMENT) << "queue is required";
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id("w");
  sub.set_execution_id(unknown);
  v1::SubmitWorkflowCommandsResponse subr;
  EXPECT_EQ(client.SubmitCommands(sub, &subr).error_code(), C::NOT_FOUND);
  v1::Task fake;
  fake.set_id(unknown);
  fake.set_attempt(1);
  EXPECT_EQ(client.CompleteTask("w", fake, "1").error_code(), C::NOT_FOUND);
  EXPECT_EQ(client.CompleteTask("w", fake, "{bad").error_code(), C::INVALID_ARGUMENT);
  EXPECT_EQ(client.FailTask("w", fake, "e").error_code(), C::NOT_FOUND);
  v1::TaskHeartbeatResponse hb;
  EXPECT_EQ(client.HeartbeatTask("w", fake, &hb).error_code(), C::NOT_FOUND);
  EXPECT_EQ(client.CompleteTask("", fake, "1").error_code(), C::INVALID_ARGUMENT);
  // Unauthenticated calls.
  sdk::ClientOptions anon = client.options();
  anon.token = "fwt_forged";
  sdk::Client forged(anon);
  EXPECT_EQ(forged.StartWorkflow("k", "1", &started).error_code(), C::UNAUTHENTICATED);
  anon.token.clear();
  sdk::Client nobody(anon);
  EXPECT_EQ(nobody.StartWorkflow("k", "1", &started).error_code(), C::UNAUTHENTICATED);

  EXPECT_EQ(RowCounts(s), before) << "bad input changed nothing";
  EXPECT_EQ(s.Rest("GET", "/_/health/ready", "", "").status, 200);
}

TEST(EngineApiTest, WorkflowCommandsAreValidatedAtomically) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  v1::StartWorkflowResponse started;
  ASSERT_TRUE(client.StartWorkflow("k", "1", &started).ok());
  auto [worker, claim] = ClaimNextWorkflow(client);
  ASSERT_TRUE(claim.has_work());
  std::string before = RowCounts(s);
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(worker);
  sub.set_execution_id(started.execution_id());
  sub.set_expected_sequence(1);
  *sub.add_commands() = sdk::ScheduleTask("ok", "1");
  *sub.add_commands() = sdk::ScheduleTask("bad", "{not json");
  v1::SubmitWorkflowCommandsResponse res;
  EXPECT_EQ(client.SubmitCommands(sub, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RowCounts(s), before) << "the first command was not applied either";
  sub.clear_commands();
  *sub.add_commands() = sdk::Complete("1");
  *sub.add_commands() = sdk::Suspend();
  EXPECT_EQ(client.SubmitCommands(sub, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A stale sequence is ABORTED and changes nothing.
  sub.clear_commands();
  *sub.add_commands() = sdk::Suspend();
  sub.set_expected_sequence(7);
  EXPECT_EQ(client.SubmitCommands(sub, &res).error_code(), grpc::StatusCode::ABORTED);
  // Another worker cannot submit for an execution it does not hold.
  sub.set_expected_sequence(1);
  sub.set_worker_id("someone-else");
  EXPECT_EQ(client.SubmitCommands(sub, &res).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(RowCounts(s), before);
  sub.set_worker_id(worker);
  EXPECT_TRUE(client.SubmitCommands(sub, &res).ok());
  EXPECT_EQ(res.status(), "WAITING");
}

TEST(EngineApiTest, WorkerTokensAreShownOnceStoredHashedAndRevocable) {
  EngineServer s;
  auto created = s.RestJson("POST", "/api/tenants/acme/worker-tokens", R"({"name":"ci"})");
  std::string token = created["token"];
  EXPECT_EQ(token.rfind("fwt_", 0), 0u);
  std::string db = s.database_url().substr(s.database_url().rfind('/') + 1);
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT count(*) FROM worker_tokens WHERE token_hash = '" + token + "'"), "0");
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT length(token_hash) FROM worker_tokens"), "64");
  auto list = s.RestJson("GET", "/api/tenants/acme/worker-tokens");
  EXPECT_EQ(list.dump().find(token), std::string::npos) << "the token is never shown again";
  sdk::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(s.server().grpc_port());
  o.token = token;
  sdk::Client client(o);
  v1::StartWorkflowResponse started;
  EXPECT_TRUE(client.StartWorkflow("k", "1", &started).ok());
  EXPECT_EQ(s.Rest("DELETE", "/api/tenants/acme/worker-tokens/" + created["id"].get<std::string>()).status, 200);
  EXPECT_EQ(client.StartWorkflow("k", "1", &started).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.RestJson("GET", "/api/tenants/acme/worker-tokens")["items"][0]["revokedAt"], nullptr);
}

TEST(EngineApiTest, ListingPaginatesWithACursorAndFilters) {
  EngineServer s;
  for (int i = 0; i < 7; ++i) {
    s.RestJson("POST", "/api/tenants/acme/workflows", json{{"kind", i % 2 ? "odd" : "even"}, {"input", i}}.dump());
  }
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto j = s.RestJson("GET", "/api/tenants/acme/workflows?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor));
    for (auto& w : j["items"]) seen.push_back(w["id"]);
    if (j["nextCursor"].is_null()) break;
    cursor = j["nextCursor"];
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 7u);
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows?kind=odd")["items"].size(), 3u);
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows?status=PENDING&kind=even")["items"].size(), 4u);
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows?status=COMPLETED")["items"].size(), 0u);
}

}  // namespace
}  // namespace flovyn::testing
