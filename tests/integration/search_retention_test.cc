// Search attributes, the search language and retention against a real flovyn-server and
// PostgreSQL: attributes set by a workflow's command and over REST, lists filtered by them and
// by built-in fields with cursor pagination, bad queries refused naming the problem, and the
// retention sweep deleting expired executions with everything they own (exported first).
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "engine_harness.h"
#include "flovyn/http/message.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string Start(EngineServer& s, const std::string& kind, const std::string& queue = "default") {
  auto r = s.Rest("POST", "/api/tenants/acme/workflows",
                  json{{"kind", kind}, {"queue", queue}, {"input", {{"n", 1}}}}.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body)["id"];
}

void SetAttributes(EngineServer& s, const std::string& id, const json& attributes) {
  auto r = s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/search-attributes",
                  json{{"attributes", attributes}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
}

// The ids a search returns, following every cursor (pages of `limit`).
std::vector<std::string> Search(EngineServer& s, const std::string& query, int limit = 100, int* pages = nullptr) {
  std::vector<std::string> ids;
  std::string cursor;
  int n = 0;
  do {
    std::string target = "/api/tenants/acme/workflows?limit=" + std::to_string(limit) + "&q=" + http::UrlEncode(query);
    if (!cursor.empty()) target += "&cursor=" + cursor;
    auto r = s.Rest("GET", target);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    if (r.status != 200) return ids;
    json page = json::parse(r.body);
    for (const auto& w : page["items"]) ids.push_back(w["id"]);
    cursor = page["nextCursor"].is_null() ? "" : page["nextCursor"].get<std::string>();
    ++n;
  } while (!cursor.empty());
  if (pages) *pages = n;
  return ids;
}

std::set<std::string> SearchSet(EngineServer& s, const std::string& query) {
  auto v = Search(s, query);
  return {v.begin(), v.end()};
}

// Claims the execution waiting on `queue` and submits `commands` for it (ASSERTs each step).
void ClaimAndSubmit(sdk::Client& client, const std::string& queue, const std::string& id,
                    const std::vector<v1::WorkflowCommand>& commands) {
  auto [worker, claim] = ClaimNextWorkflow(client, queue);
  ASSERT_TRUE(claim.has_work());
  ASSERT_EQ(claim.execution().id(), id);
  ASSERT_TRUE(SubmitAs(client, worker, id, claim.events(claim.events_size() - 1).sequence(), commands).ok());
}

TEST(SearchTest, AttributesFromAWorkflowCommandAndFromRestFilterTheList) {
  EngineServer s;
  sdk::Client client(s.ClientFor("acme"));
  // The workflow sets its own attributes with the SetSearchAttributes command.
  std::string own = Start(s, "order", "orders");
  ClaimAndSubmit(client, "orders", own,
                 {sdk::SetSearchAttributes(R"({"customer":"c-42","amount":120.5,"vip":true})"), sdk::Suspend()});
  auto events = s.Events("acme", own);
  EXPECT_EQ(events.back()["type"], "SEARCH_ATTRIBUTES_SET");
  EXPECT_EQ(events.back()["payload"]["attributes"]["customer"], "c-42");

  std::string a = Start(s, "order"), b = Start(s, "order"), c = Start(s, "invoice");
  SetAttributes(s, a, {{"customer", "c-42"}, {"amount", 10}, {"due", "2026-11-05T12:00:00Z"}});
  SetAttributes(s, b, {{"customer", "c-7"}, {"amount", 99.5}, {"vip", false}, {"due", "2026-12-01"}});
  SetAttributes(s, c, {{"customer", "c-42"}, {"region", "eu"}});
  // null removes a key; GET shows what is left.
  SetAttributes(s, c, {{"region", nullptr}});
  json got = s.RestJson("GET", "/api/tenants/acme/workflows/" + c);
  EXPECT_EQ(got["searchAttributes"], json({{"customer", "c-42"}})) << got.dump();
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + c + "/cancel").status, 202);

  using Set = std::set<std::string>;
  EXPECT_EQ(SearchSet(s, R"(customer = "c-42")"), (Set{own, a, c}));
  EXPECT_EQ(SearchSet(s, R"(kind = "order" AND customer = "c-42")"), (Set{own, a}));
  EXPECT_EQ(SearchSet(s, R"(amount > 50)"), (Set{own, b}));
  EXPECT_EQ(SearchSet(s, R"(amount >= 10 AND amount < 100)"), (Set{a, b}));
  EXPECT_EQ(SearchSet(s, R"(vip = true)"), (Set{own}));
  EXPECT_EQ(SearchSet(s, R"(vip != true)"), (Set{b}));
  EXPECT_EQ(SearchSet(s, R"(due < "2026-11-30")"), (Set{a}));
  EXPECT_EQ(SearchSet(s, R"(due >= "2026-11-30T00:00:00+01:00")"), (Set{b}));
  EXPECT_EQ(SearchSet(s, R"(customer IN ("c-7", "c-9") OR kind = "invoice")"), (Set{b, c}));
  EXPECT_EQ(SearchSet(s, R"(NOT (kind = "order") )"), (Set{c}));
  EXPECT_EQ(SearchSet(s, R"(status = "CANCELLED")"), (Set{c}));
  EXPECT_EQ(SearchSet(s, R"(queue = "orders" and status in ("RUNNING", "WAITING"))"), (Set{own}));
  EXPECT_EQ(SearchSet(s, R"(created > "2000-01-01" AND completed > "2000-01-01")"), (Set{c}));
  EXPECT_EQ(SearchSet(s, R"(id = ")" + a + "\""), (Set{a}));
  EXPECT_TRUE(SearchSet(s, R"(created > "2999-01-01")").empty());
  // The plain filters combine with the query.
  auto r = s.RestJson("GET", "/api/tenants/acme/workflows?queue=orders&q=" + http::UrlEncode("customer = \"c-42\""));
  ASSERT_EQ(r["items"].size(), 1u);
  EXPECT_EQ(r["items"][0]["id"], own);
}

TEST(SearchTest, CursorPagesWalkEveryMatchOnceAndChildrenFilterByParent) {
  EngineServer s;
  std::set<std::string> even;
  for (int i = 0; i < 25; ++i) {
    std::string id = Start(s, "batch");
    SetAttributes(s, id, {{"n", i}, {"parity", i % 2 == 0 ? "even" : "odd"}});
    if (i % 2 == 0) even.insert(id);
  }
  int pages = 0;
  auto ids = Search(s, R"(parity = "even")", 4, &pages);
  EXPECT_EQ(ids.size(), 13u);
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), even) << "each match once across the pages";
  // A parent's children, through ?parent= and through the query's parent field.
  sdk::Client client(s.ClientFor("acme"));
  std::string parent = Start(s, "parent", "pq");
  v1::WorkflowCommand child;
  child.mutable_schedule_child_workflow()->set_name("c1");
  child.mutable_schedule_child_workflow()->set_kind("child");
  child.mutable_schedule_child_workflow()->set_input_json("{}");
  ClaimAndSubmit(client, "pq", parent, {child, sdk::Suspend()});
  auto kids = s.RestJson("GET", "/api/tenants/acme/workflows?parent=" + parent);
  ASSERT_EQ(kids["items"].size(), 1u);
  EXPECT_EQ(kids["items"][0]["kind"], "child");
  EXPECT_EQ(Search(s, "parent = \"" + parent + "\""), std::vector<std::string>{kids["items"][0]["id"]});
}

TEST(SearchTest, BadQueriesAndAttributesAreRefusedNamingTheProblemAndChangeNothing) {
  EngineServer s;
  std::string id = Start(s, "k");
  std::string before = RowCounts(s);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"(kind = )", "expected a value after '='"},
      {R"(kind "x")", "expected an operator"},
      {R"(kind = "x" AND)", "expected a field name"},
      {R"((kind = "x")", "expected ')'"},
      {R"(kind = "x)", "unterminated string"},
      {R"(status = "DONE")", "is not a workflow status"},
      {R"(created > "yesterday")", "is not a time"},
      {R"(created > "2026-02-30")", "is not a time"},
      {R"(kind > "a")", "compares only with =, != and IN"},
      {R"(vip < true)", "true and false compare only"},
      {R"(parent = "nope")", "takes a UUID"},
      {R"(kind = "x" ; DROP TABLE tenants)", "unexpected ';'"},
      {R"(amount = 1e999)", "is not a number"},
      {"", ""},
  };
  for (const auto& [q, message] : bad) {
    if (q.empty()) continue;
    auto r = s.Rest("GET", "/api/tenants/acme/workflows?q=" + http::UrlEncode(q));
    EXPECT_EQ(r.status, 400) << q << ": " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << q << ": " << r.body;
  }
  std::string many;
  for (int i = 0; i < 33; ++i) many += (i ? " OR " : "") + std::string("n = ") + std::to_string(i);
  auto r = s.Rest("GET", "/api/tenants/acme/workflows?q=" + http::UrlEncode(many));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("search_query_max_terms"), std::string::npos) << r.body;
  r = s.Rest("GET", "/api/tenants/acme/workflows?q=" + http::UrlEncode("k = \"" + std::string(5000, 'x') + "\""));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("search_query_max_bytes"), std::string::npos) << r.body;

  const std::vector<std::pair<json, std::string>> bad_attributes = {
      {{{"kind", "x"}}, "built-in search field"},
      {{{"has space", 1}}, "must start with a letter"},
      {{{"nested", {{"a", 1}}}}, "must be a string, number, boolean or null"},
      {{{"long", std::string(1001, 'x')}}, "search_value_max_bytes"},
  };
  for (const auto& [attributes, message] : bad_attributes) {
    auto res = s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/search-attributes",
                      json{{"attributes", attributes}}.dump());
    EXPECT_EQ(res.status, 400) << attributes.dump() << ": " << res.body;
    EXPECT_NE(res.body.find(message), std::string::npos) << res.body;
  }
  json fifty = json::object();
  for (int i = 0; i < 50; ++i) fifty["a" + std::to_string(i)] = i;
  SetAttributes(s, id, fifty);
  auto over = s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/search-attributes",
                     json{{"attributes", {{"one_more", 1}}}}.dump());
  EXPECT_EQ(over.status, 400);
  EXPECT_NE(over.body.find("search_attributes"), std::string::npos) << over.body;
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM workflow_search_attributes"), 50) << "the refused change rolled back";
  // Another tenant's execution is not found, and its attributes cannot be set.
  EngineServer& same = s;
  auto other = same.Rest("POST", "/api/tenants/acme/workflows/00000000-0000-0000-0000-000000000000/search-attributes",
                         json{{"attributes", {{"x", 1}}}}.dump());
  EXPECT_EQ(other.status, 404);
  Sql(s, "DELETE FROM workflow_search_attributes");
  EXPECT_EQ(RowCounts(s), before);
}

// A finished execution backdated past the retention period, with a task, a timer, a promise,
// state, attributes and buffered events of its own.
std::string ExpiredWorkflowWithEverything(EngineServer& s, sdk::Client& client, const std::string& queue) {
  std::string id = Start(s, "old", queue);
  v1::WorkflowCommand timer, promise;
  timer.mutable_start_timer()->set_name("t1");
  timer.mutable_start_timer()->set_duration_ms(3600000);
  promise.mutable_create_promise()->set_name("p1");
  ClaimAndSubmit(client, queue, id,
                 {sdk::ScheduleTask("t", "{}"), sdk::SetState("k", R"("v")"),
                  sdk::SetSearchAttributes(R"({"customer":"gone"})"), timer, promise, sdk::Suspend()});
  EXPECT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel").status, 202);
  EXPECT_TRUE(Eventually([&] {
    return s.RestJson("GET", "/api/tenants/acme/workflows/" + id)["status"] == "CANCELLED";
  })) << s.RestJson("GET", "/api/tenants/acme/workflows/" + id).dump();
  Sql(s, "UPDATE workflow_executions SET completed_at = now() - interval '3 days' WHERE id = '" + id + "'");
  return id;
}

int64_t Owned(EngineServer& s, const std::string& id) {
  std::string in = "('" + id + "')";
  return SqlInt(s, "SELECT (SELECT count(*) FROM workflow_events WHERE execution_id IN " + in +
                       ") + (SELECT count(*) FROM task_executions WHERE workflow_id IN " + in +
                       ") + (SELECT count(*) FROM timers WHERE execution_id IN " + in +
                       ") + (SELECT count(*) FROM promises WHERE execution_id IN " + in +
                       ") + (SELECT count(*) FROM workflow_state WHERE execution_id IN " + in +
                       ") + (SELECT count(*) FROM workflow_search_attributes WHERE execution_id IN " + in +
                       ") + (SELECT count(*) FROM workflow_executions WHERE id IN " + in + ")");
}

TEST(RetentionTest, ExpiredExecutionsGoWithEverythingTheyOwnAfterBeingExported) {
  auto dir = std::filesystem::temp_directory_path() / ("flovyn-export-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  EngineServer s({.env = {{"RETENTION__INTERVAL_MS", "3600000"}, {"METRICS__ENABLED", "true"}}});
  // Retention is per tenant: the default is 30 days; members may read it, only admins change it.
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/retention")["retentionDays"], 30);
  EXPECT_EQ(s.Rest("PUT", "/api/tenants/acme/retention", R"({"retentionDays":1})", MemberKey("acme")).status, 403);
  EXPECT_EQ(s.Rest("PUT", "/api/tenants/acme/retention", R"({"retentionDays":0})").status, 400);
  ASSERT_EQ(s.Rest("PUT", "/api/tenants/acme/retention", R"({"retentionDays":2})").status, 200);
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/retention", "", MemberKey("acme"))["retentionDays"], 2);

  sdk::Client client(s.ClientFor("acme"));
  std::string old1 = ExpiredWorkflowWithEverything(s, client, "q1");
  std::string old2 = ExpiredWorkflowWithEverything(s, client, "q2");
  EXPECT_GT(Owned(s, old1), 8);
  // Kept: finished one day ago (inside two days), and still running though created long ago.
  std::string recent = Start(s, "recent");
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + recent + "/cancel").status, 202);
  Sql(s, "UPDATE workflow_executions SET completed_at = now() - interval '1 day' WHERE id = '" + recent + "'");
  std::string running = Start(s, "running");
  Sql(s, "UPDATE workflow_executions SET created_at = now() - interval '90 days' WHERE id = '" + running + "'");
  // A child whose expired parent goes keeps running, parentless.
  Sql(s, "UPDATE workflow_executions SET parent_id = '" + old1 + "' WHERE id = '" + running + "'");

  s.Restart(
      {{"RETENTION__INTERVAL_MS", "200"}, {"RETENTION__BATCH_SIZE", "1"}, {"RETENTION__EXPORT_DIR", dir.string()}});
  ASSERT_TRUE(Eventually([&] { return Owned(s, old1) + Owned(s, old2) == 0; }, 20s))
      << Owned(s, old1) << " " << Owned(s, old2);
  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE id IN ('" + recent + "', '" + running + "')"), 2);
  EXPECT_EQ(Sql(s, "SELECT coalesce(parent_id::text, 'none') FROM workflow_executions WHERE id = '" + running + "'"),
            "none");
  EXPECT_EQ(s.RestJson("GET", "/api/tenants/acme/workflows/" + running)["status"], "PENDING");

  // Each execution was exported whole, one JSON line, before it went.
  std::vector<json> lines;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(f.path());
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  }
  ASSERT_EQ(lines.size(), 2u);
  std::set<std::string> exported;
  for (const auto& l : lines) {
    exported.insert(l["id"].get<std::string>());
    EXPECT_EQ(l["tenant"], "acme");
    EXPECT_EQ(l["status"], "CANCELLED");
    EXPECT_EQ(l["state"]["k"], "v");
    EXPECT_EQ(l["searchAttributes"]["customer"], "gone");
    EXPECT_EQ(l["events"][0]["type"], "WORKFLOW_STARTED");
    EXPECT_EQ(l["events"].back()["type"], "WORKFLOW_CANCELLED");
  }
  EXPECT_EQ(exported, (std::set<std::string>{old1, old2}));
  int port = s.server().metrics_port();
  EXPECT_EQ(ScrapeMetric(port, "flovyn_retention_deleted_total", "table=\"executions\""), 2);
  EXPECT_GE(ScrapeMetric(port, "flovyn_retention_deleted_total", "table=\"events\""), 10);
  EXPECT_EQ(ScrapeMetric(port, "flovyn_retention_deleted_total", "table=\"timers\""), 2);
  EXPECT_EQ(ScrapeMetric(port, "flovyn_retention_exported_total"), 2);
  EXPECT_EQ(ScrapeMetric(port, "flovyn_retention_lag_seconds"), 0);
  std::filesystem::remove_all(dir);
}

TEST(RetentionTest, AnExportThatCannotBeWrittenDeletesNothingAndTheLagShows) {
  EngineServer s({.env = {{"RETENTION__INTERVAL_MS", "200"},
                          {"METRICS__ENABLED", "true"},
                          {"RETENTION__EXPORT_DIR", "/nonexistent/flovyn-export"}}});
  ASSERT_EQ(s.Rest("PUT", "/api/tenants/acme/retention", R"({"retentionDays":1})").status, 200);
  std::string id = Start(s, "k");
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel").status, 202);
  Sql(s, "UPDATE workflow_executions SET completed_at = now() - interval '2 days' WHERE id = '" + id + "'");
  int port = s.server().metrics_port();
  ASSERT_TRUE(Eventually([&] { return ScrapeMetric(port, "flovyn_retention_errors_total") >= 2; }));

  EXPECT_EQ(SqlInt(s, "SELECT count(*) FROM workflow_executions WHERE id = '" + id + "'"), 1);
  EXPECT_EQ(ScrapeMetric(port, "flovyn_retention_deleted_total", "table=\"executions\""), 0);
  EXPECT_GT(ScrapeMetric(port, "flovyn_retention_lag_seconds"), 3600) << "a day past its retention";
}

}  // namespace
}  // namespace flovyn::testing
