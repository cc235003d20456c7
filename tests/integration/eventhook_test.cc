// The eventhook plugin against a real flovyn-server and PostgreSQL: GitHub- and Stripe-style
// signatures (valid, invalid, replayed outside the tolerance), duplicate deliveries, each route
// action and condition, a failing action retried and then reprocessed by hand, limits, and two
// replicas processing 1000 events with each handled once.
#include <thread>

#include <gtest/gtest.h>

#include "engine_harness.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using sdk::History;

json Post(EngineServer& s, const std::string& path, const json& body, int expect) {
  auto r = s.Rest("POST", "/api/tenants/acme/eventhook/" + path, body.dump());
  EXPECT_EQ(r.status, expect) << path << ": " << r.body;
  return json::parse(r.body, nullptr, false);
}

HttpResult Deliver(EngineServer& s, const std::string& source, const std::string& body,
                   std::map<std::string, std::string> headers) {
  headers.emplace("Content-Type", "application/json");
  return HttpRequest("POST", s.http_port(), "/api/tenants/acme/eventhook/in/" + source, body, headers);
}

std::string Github(const std::string& secret, const std::string& body) {
  return "sha256=" + crypto::Hex(crypto::HmacSha256(secret, body));
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Stripe(const std::string& secret, const std::string& body, int64_t t) {
  return "t=" + std::to_string(t) + ",v1=" + crypto::Hex(crypto::HmacSha256(secret, std::to_string(t) + "." + body));
}

json WaitEvent(EngineServer& s, const std::string& id, const std::string& status) {
  json e;
  Eventually(
      [&] {
        e = s.RestJson("GET", "/api/tenants/acme/eventhook/events/" + id);
        return e.value("status", "") == status;
      },
      15s);
  return e;
}

json GithubSource(EngineServer& s, const std::string& slug) {
  return Post(s, "sources",
              {{"slug", slug},
               {"verifier", {{"type", "hmac"}, {"scheme", "github"}}},
               {"secret", "gh-secret-123"},
               {"idempotencyPaths", {"header.x-github-delivery"}},
               {"eventTypePath", "header.x-github-event"}},
              201);
}

TEST(EventhookTest, GithubSignaturesAreVerifiedAndADuplicateDeliveryIsOneWorkflow) {
  EngineServer s({.env = {{"METRICS__ENABLED", "true"}}});
  json source = GithubSource(s, "github");
  EXPECT_EQ(source["secret"], "gh-secret-123") << "the secret is shown on creation";
  EXPECT_FALSE(
      s.RestJson("GET", "/api/tenants/acme/eventhook/sources/" + source["id"].get<std::string>()).contains("secret"))
      << "and never again";
  EXPECT_EQ(Sql(s, "SELECT count(*) FROM eventhook_sources WHERE secret LIKE '%gh-secret%'"), "0")
      << "it is stored sealed";
  Post(s, "routes",
       {{"sourceId", source["id"]},
        {"name", "pushes-to-branches"},
        {"eventTypes", {"push"}},
        {"conditions", {{{"path", "body.ref"}, {"op", "prefix"}, {"value", "refs/heads/"}}}},
        {"action",
         {{"type", "start_workflow"}, {"kind", "on-push"}, {"input", {{"repo", "body.repository.full_name"}}}}}},
       201);
  std::string body = R"({"ref":"refs/heads/main","repository":{"full_name":"acme/api"}})";
  std::map<std::string, std::string> h = {
      {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d-1"}, {"X-Hub-Signature-256", Github("gh-secret-123", body)}};
  auto first = Deliver(s, "github", body, h);
  ASSERT_EQ(first.status, 202) << first.body;
  auto again = Deliver(s, "github", body, h);
  EXPECT_EQ(again.status, 200) << "a duplicate delivery";
  EXPECT_EQ(json::parse(again.body)["id"], json::parse(first.body)["id"]);
  auto forged = Deliver(s, "github", body,
                        {{"X-GitHub-Event", "push"},
                         {"X-GitHub-Delivery", "d-2"},
                         {"X-Hub-Signature-256", Github("wrong-secret", body)}});
  EXPECT_EQ(forged.status, 401) << forged.body;
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM eventhook_events"), 1) << "a bad signature stores nothing";
  EXPECT_EQ(SqlInt(s, "SELECT rejected FROM eventhook_sources"), 1) << "but a counter";

  json e = WaitEvent(s, json::parse(first.body)["id"], "DONE");
  ASSERT_EQ(e["actions"].size(), 1u) << e.dump();
  std::string wf = e["actions"][0]["executionId"];
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + wf)["input"], json({{"repo", "acme/api"}}));
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE kind = 'on-push'"), 1);
  EXPECT_EQ(ScrapeMetric(s.server().metrics_port(), "flovyn_eventhook_events_total", "outcome=\"rejected\""), 1);
  EXPECT_EQ(ScrapeMetric(s.server().metrics_port(), "flovyn_eventhook_events_total", "outcome=\"routed\""), 1);
  // A tag push does not match the route's condition: processed, nothing started.
  std::string tag = R"({"ref":"refs/tags/v1","repository":{"full_name":"acme/api"}})";
  auto t = Deliver(s, "github", tag,
                   {{"X-GitHub-Event", "push"},
                    {"X-GitHub-Delivery", "d-3"},
                    {"X-Hub-Signature-256", Github("gh-secret-123", tag)}});
  ASSERT_EQ(t.status, 202);
  EXPECT_TRUE(WaitEvent(s, json::parse(t.body)["id"], "DONE")["actions"].empty());
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE kind = 'on-push'"), 1);
}

TEST(EventhookTest, StripeSignaturesAreCheckedAgainstTheirTimestamp) {
  EngineServer s;
  Post(s, "sources",
       {{"slug", "stripe"},
        {"verifier", {{"type", "hmac"}, {"scheme", "stripe"}, {"toleranceSeconds", 300}}},
        {"secret", "whsec_abcdef"},
        {"idempotencyPaths", {"body.id"}},
        {"eventTypePath", "body.type"}},
       201);
  std::string body = R"({"id":"evt_1","type":"payment_intent.succeeded"})";
  auto ok = Deliver(s, "stripe", body, {{"Stripe-Signature", Stripe("whsec_abcdef", body, NowSeconds())}});
  EXPECT_EQ(ok.status, 202) << ok.body;
  std::string body2 = R"({"id":"evt_2","type":"payment_intent.succeeded"})";
  auto replayed =
      Deliver(s, "stripe", body2, {{"Stripe-Signature", Stripe("whsec_abcdef", body2, NowSeconds() - 400)}});
  EXPECT_EQ(replayed.status, 401);
  EXPECT_NE(replayed.body.find("tolerance"), std::string::npos) << replayed.body;
  auto altered = Deliver(s, "stripe", body2 + " ", {{"Stripe-Signature", Stripe("whsec_abcdef", body2, NowSeconds())}});
  EXPECT_EQ(altered.status, 401);
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM eventhook_events"), 1);
  EXPECT_EQ(Sql(s, "SELECT event_type || ' ' || dedup_key FROM eventhook_events"), "payment_intent.succeeded evt_1");
}

// A workflow that waits on a promise and completes with how it was settled.
std::vector<v1::WorkflowCommand> AwaitPromise(const History& h) {
  if (h.Count("PROMISE_CREATED") == 0) return {sdk::CreatePromise("approval", 0), sdk::Suspend()};
  if (!h.OfType("PROMISE_RESOLVED").empty()) return {sdk::Complete(R"("resolved")")};
  if (!h.OfType("PROMISE_REJECTED").empty()) return {sdk::Complete(R"("rejected")")};
  return {sdk::Suspend()};
}

TEST(EventhookTest, EachRouteActionTakesEffectOnce) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  sdk::Worker worker(client, {});
  worker.RegisterWorkflow("approval", AwaitPromise);
  ASSERT_TRUE(worker.Start().ok());
  json src =
      Post(s, "sources", {{"slug", "forms"}, {"verifier", {{"type", "none"}}}, {"eventTypePath", "body.kind"}}, 201);
  auto route = [&](const std::string& name, const std::string& type, json action) {
    action["type"] = type;
    Post(s, "routes", {{"sourceId", src["id"]}, {"name", name}, {"eventTypes", {name}}, {"action", action}}, 201);
  };
  route("task", "submit_task", {{"kind", "send-mail"}, {"queue", "mail"}, {"input", "body.to"}});
  route("signal", "signal",
        {{"signal", "paid"},
         {"idempotencyKeyPath", "body.order"},
         {"input", {{"amount", "body.amount"}}},
         {"workflow", {{"kind", "order"}, {"queue", "orders"}}}});
  route("resolve", "resolve_promise", {{"promiseIdPath", "body.promise"}, {"input", "body.answer"}});
  route("reject", "reject_promise", {{"promiseIdPath", "body.promise"}, {"errorPath", "body.why"}});

  auto deliver = [&](const json& body) {
    auto r = Deliver(s, "forms", body.dump(), {});
    EXPECT_EQ(r.status, 202) << r.body;
    return WaitEvent(s, json::parse(r.body)["id"], "DONE");
  };
  json task = deliver({{"kind", "task"}, {"to", "a@example.com"}});
  auto t = s.RestJson("GET", "/api/tenants/acme/tasks/" + task["actions"][0]["taskId"].get<std::string>());
  EXPECT_EQ(t["kind"], "send-mail");
  EXPECT_EQ(t["input"], "a@example.com");
  // Signal-with-start: the first signal starts the order workflow, the second finds it.
  json s1 = deliver({{"kind", "signal"}, {"order", "o-7"}, {"amount", 5}});
  json s2 = deliver({{"kind", "signal"}, {"order", "o-7"}, {"amount", 6}});
  EXPECT_EQ(s1["actions"][0]["executionId"], s2["actions"][0]["executionId"]);
  EXPECT_TRUE(s1["actions"][0]["created"].get<bool>());
  EXPECT_FALSE(s2["actions"][0]["created"].get<bool>());
  std::string order = s1["actions"][0]["executionId"];
  int signals = 0;
  for (const auto& ev : s.Events("acme", order)) signals += ev["type"] == "SIGNAL_RECEIVED" ? 1 : 0;
  EXPECT_EQ(signals, 2);
  // Promises: resolved by one event, rejected by another.
  for (const std::string how : {"resolve", "reject"}) {
    std::string wf = s.RestJson("POST", "/api/tenants/acme/workflows", R"({"kind":"approval"})")["id"];
    std::string promise;
    ASSERT_TRUE(Eventually([&] {
      for (auto& ev : s.Events("acme", wf)) {
        if (ev["type"] == "PROMISE_CREATED") promise = ev["payload"]["promiseId"];
      }
      return !promise.empty();
    }));
    deliver({{"kind", how}, {"promise", promise}, {"answer", {{"ok", true}}}, {"why", "no"}});
    EXPECT_EQ(s.WaitWorkflow("acme", wf)["output"], how == "resolve" ? "resolved" : "rejected") << how;
  }
}

TEST(EventhookTest, AFailingActionIsRetriedWithBackoffThenReprocessedByHand) {
  EngineServer s({.env = {{"EVENTHOOK__MAX_ATTEMPTS", "2"}}});
  json src = Post(
      s, "sources",
      {{"slug", "hooks"}, {"verifier", {{"type", "api_key"}, {"header", "X-Key"}}}, {"secret", "key-0123456789"}}, 201);
  // The route resolves a promise that does not exist: the action fails on every attempt.
  Post(s, "routes",
       {{"sourceId", src["id"]},
        {"name", "settle"},
        {"action", {{"type", "resolve_promise"}, {"promiseIdPath", "body.promise"}}}},
       201);
  EXPECT_EQ(Deliver(s, "hooks", "{}", {{"X-Key", "wrong-key-000"}}).status, 401);
  auto r = Deliver(s, "hooks", R"({"promise":"7f1e2d3c-0000-4000-8000-000000000000"})", {{"X-Key", "key-0123456789"}});
  ASSERT_EQ(r.status, 202);
  std::string id = json::parse(r.body)["id"];
  json failed = WaitEvent(s, id, "FAILED");
  EXPECT_EQ(failed["attempts"], 2) << "tried, then retried once after the backoff";
  EXPECT_NE(failed["error"].get<std::string>().find("promise not found"), std::string::npos) << failed.dump();
  // Fix the route, then reprocess the event by hand.
  std::string route = s.RestJson("GET", "/api/tenants/acme/eventhook/routes")["items"][0]["id"];
  ASSERT_EQ(s.Rest("DELETE", "/api/tenants/acme/eventhook/routes/" + route).status, 200);
  Post(s, "routes",
       {{"sourceId", src["id"]}, {"name", "fixed"}, {"action", {{"type", "start_workflow"}, {"kind", "k"}}}}, 201);
  auto again = s.Rest("POST", "/api/tenants/acme/eventhook/events/" + id + "/reprocess", "{}");
  ASSERT_EQ(again.status, 200) << again.body;
  json done = WaitEvent(s, id, "DONE");
  EXPECT_EQ(done["actions"][0]["ok"], true);
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE kind = 'k'"), 1);
}

TEST(EventhookTest, LimitsAndUnknownSourcesAnswerClearlyAndStoreNothing) {
  EngineServer s;
  Post(s, "sources",
       {{"slug", "small"}, {"verifier", {{"type", "none"}}}, {"maxBodyBytes", 100}, {"ratePerSecond", 1}, {"burst", 2}},
       201);
  auto big = Deliver(s, "small", std::string(200, ' '), {});
  EXPECT_EQ(big.status, 429);
  EXPECT_NE(big.body.find("maxBodyBytes"), std::string::npos) << big.body;
  EXPECT_EQ(Deliver(s, "small", "{}", {}).status, 202);
  EXPECT_EQ(Deliver(s, "small", "{}", {}).status, 202);
  auto limited = Deliver(s, "small", "{}", {});
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.body.find("ratePerSecond"), std::string::npos) << limited.body;
  EXPECT_EQ(Deliver(s, "nowhere", "{}", {}).status, 404);
  EXPECT_EQ(HttpRequest("POST", s.http_port(), "/api/tenants/no-tenant/eventhook/in/small", "{}").status, 404);
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM eventhook_events"), 2);
  // Management needs a credential and the right role.
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/eventhook/sources", "", "no-such-key-0000000").status, 401);
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/eventhook/sources", R"({"slug":"m","verifier":{"type":"none"}})",
                   MemberKey("acme"))
                .status,
            403);
}

TEST(EventhookTest, TwoReplicasProcessAThousandEventsEachOnce) {
  EngineServer a;
  EngineServer b({.database_url = a.database_url(), .create_tenants = false});
  json src = Post(a, "sources",
                  {{"slug", "bulk"},
                   {"verifier", {{"type", "none"}}},
                   {"idempotencyPaths", {"body.n"}},
                   {"ratePerSecond", 100000},
                   {"burst", 100000}},
                  201);
  Post(a, "routes",
       {{"sourceId", src["id"]},
        {"name", "start"},
        {"action", {{"type", "start_workflow"}, {"kind", "bulk"}, {"input", "body"}}}},
       201);
  std::vector<std::thread> senders;
  std::atomic<int> accepted{0};
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = t; i < 1000; i += 4) {
        EngineServer& to = i % 2 ? a : b;
        auto r = Deliver(to, "bulk", json{{"n", i}}.dump(), {});
        accepted += r.status == 202 ? 1 : 0;
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(accepted.load(), 1000);
  ASSERT_TRUE(Eventually(
      [&] { return SqlInt(a, "SELECT count(*) FROM eventhook_events WHERE status = 'DONE'") == 1000; }, 60s));
  EXPECT_EQ(SqlInt(a, "SELECT count(*) FROM workflow_executions WHERE kind = 'bulk'"), 1000);
  EXPECT_EQ(SqlInt(a, "SELECT count(*) FROM eventhook_events WHERE attempts <> 1"), 0) << "each handled once";
}

}  // namespace
}  // namespace flovyn::testing
