#include "engine_harness.h"

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace flovyn::testing {

using nlohmann::json;

std::string WriteEngineConfig(const std::vector<std::string>& slugs) {
  std::string dir = MakeTempDir("flovyn-engine-config");
  std::ofstream f(dir + "/server.toml");
  f << "[auth.static_api_key]\nkeys = [\n";
  f << "  { key = \"" << kAdminKey
    << "\", org_id = \"*\", principal_type = \"service\", principal_id = \"admin\", role = \"admin\" },\n";
  for (const auto& s : slugs) {
    f << "  { key = \"" << TenantKey(s) << "\", org_id = \"" << s
      << "\", principal_type = \"user\", principal_id = \"user-" << s << "\", role = \"admin\" },\n";
    f << "  { key = \"" << MemberKey(s) << "\", org_id = \"" << s
      << "\", principal_type = \"user\", principal_id = \"member-" << s << "\", role = \"member\" },\n";
  }
  f << "]\n";
  return dir + "/server.toml";
}

EngineServer::EngineServer(EngineServerOptions o) : options_(std::move(o)) {
  url_ = options_.database_url.empty() ? Postgres::Shared().CreateDatabase("engine") : options_.database_url;
  config_ = WriteEngineConfig(options_.tenants);
  Restart();
  if (options_.create_tenants) {
    for (const auto& slug : options_.tenants) {
      auto r = Rest("POST", "/api/tenants", json{{"slug", slug}, {"name", slug}}.dump(), kAdminKey);
      if (r.status != 201 && r.status != 409)
        ADD_FAILURE() << "create tenant " << slug << ": " << r.status << " " << r.body;
    }
  }
}

void EngineServer::Restart(std::map<std::string, std::string> extra_env, bool same_ports) {
  std::map<std::string, std::string> env = options_.env;
  env["CONFIG_FILE"] = config_;
  for (auto& [k, v] : extra_env) env[k] = v;
  ServerProcess::Options so{.database_url = url_, .env = env, .launcher = options_.launcher};
  if (same_ports) {  // the ports of the last process, running or stopped
    so.http_port = last_http_port_;
    so.grpc_port = last_grpc_port_;
  }
  server_.reset();
  server_ = std::make_unique<ServerProcess>(so);
  last_http_port_ = server_->http_port();
  last_grpc_port_ = server_->grpc_port();
  if (!server_->WaitReady()) ADD_FAILURE() << "server not ready:\n" << server_->process().Log();
}

HttpResult EngineServer::Rest(const std::string& method, const std::string& target, const std::string& body,
                              const std::string& key) {
  std::map<std::string, std::string> headers;
  if (!key.empty()) headers["Authorization"] = "Bearer " + key;
  return HttpRequest(method, server_->http_port(), target, body, headers);
}

json EngineServer::RestJson(const std::string& method, const std::string& target, const std::string& body,
                            const std::string& key) {
  auto r = Rest(method, target, body, key);
  if (r.status < 200 || r.status >= 300) {
    ADD_FAILURE() << method << " " << target << " -> " << r.status << " " << r.body;
    return json::object();
  }
  return json::parse(r.body);
}

std::string EngineServer::CreateWorkerToken(const std::string& slug) {
  auto j = RestJson("POST", "/api/tenants/" + slug + "/worker-tokens", json{{"name", "test"}}.dump(), TenantKey(slug));
  return j.value("token", "");
}

sdk::ClientOptions EngineServer::ClientFor(const std::string& slug) {
  sdk::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(server_->grpc_port());
  o.token = CreateWorkerToken(slug);
  return o;
}

json EngineServer::WaitWorkflow(const std::string& slug, const std::string& id, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  json w;
  while (std::chrono::steady_clock::now() < end) {
    auto r = Rest("GET", "/api/tenants/" + slug + "/workflows/" + id, "", TenantKey(slug));
    if (r.status == 200) {
      w = json::parse(r.body);
      std::string st = w["status"];
      if (st == "COMPLETED" || st == "FAILED" || st == "CANCELLED") return w;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return w;
}

std::vector<json> EngineServer::Events(const std::string& slug, const std::string& id) {
  auto j = RestJson("GET", "/api/tenants/" + slug + "/workflows/" + id + "/events", "", TenantKey(slug));
  std::vector<json> out;
  for (auto& e : j["items"]) out.push_back(e);
  return out;
}

std::string StartWorkflow(EngineServer& s, const std::string& kind, const json& input, const std::string& slug) {
  json body = {{"kind", kind}, {"input", input}};
  return s.RestJson("POST", "/api/tenants/" + slug + "/workflows", body.dump(), TenantKey(slug)).value("id", "");
}

std::vector<json> PayloadsOf(const std::vector<json>& events, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : events) {
    if (e["type"] == type) out.push_back(e["payload"]);
  }
  return out;
}

json WaitForEvent(EngineServer& s, const std::string& id, const std::string& type, const std::string& slug) {
  for (int i = 0; i < 200; ++i) {
    auto found = PayloadsOf(s.Events(slug, id), type);
    if (!found.empty()) return found.front();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return nullptr;
}

::testing::AssertionResult DenseHistory(const std::vector<json>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i]["sequence"] != static_cast<int64_t>(i + 1)) {
      return ::testing::AssertionFailure() << "event " << i << " has sequence " << events[i]["sequence"];
    }
  }
  return ::testing::AssertionSuccess();
}

std::string Sql(EngineServer& s, const std::string& sql) {
  return Postgres::Shared().Psql(s.database_url().substr(s.database_url().rfind('/') + 1), sql);
}

int64_t SqlInt(EngineServer& s, const std::string& sql) { return std::stoll(Sql(s, sql)); }

int GrpcCalls(EngineServer& s, const std::string& method) {
  std::string body = HttpGet(s.server().metrics_port(), "/metrics").body;
  std::string key = "flovyn_grpc_requests_total{method=\"/flovyn.v1." + method + "\",code=\"OK\"} ";
  auto at = body.find(key);
  return at == std::string::npos ? 0 : std::stoi(body.substr(at + key.size()));
}

std::string RowCounts(EngineServer& s) {
  std::string db = s.database_url().substr(s.database_url().rfind('/') + 1);
  std::string sql = "SELECT ''";
  for (const char* table :
       {"tenants", "workflow_executions", "workflow_events", "task_executions", "promises", "worker_tokens",
        "workflow_event_buffer", "workflow_state", "timers", "workflow_search_attributes"}) {
    sql += std::string(" || ',' || (SELECT count(*) FROM ") + table + ")";
  }
  return Postgres::Shared().Psql(db, sql);
}

HeldWorkflow ClaimNextWorkflow(sdk::Client& client, const std::string& queue) {
  HeldWorkflow held;
  v1::RegisterWorkerRequest reg;
  reg.set_name("w");
  EXPECT_TRUE(client.RegisterWorker(reg, &held.worker_id).ok());
  v1::PollWorkflowRequest poll;
  poll.set_worker_id(held.worker_id);
  poll.set_queue(queue);
  poll.set_timeout_ms(5000);
  EXPECT_TRUE(client.PollWorkflow(poll, &held.claim).ok());
  EXPECT_TRUE(held.claim.has_work());
  return held;
}

grpc::Status SubmitAs(sdk::Client& client, const std::string& worker, const std::string& id, int64_t expected_sequence,
                      const std::vector<v1::WorkflowCommand>& commands, v1::SubmitWorkflowCommandsResponse* out) {
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(worker);
  sub.set_execution_id(id);
  sub.set_expected_sequence(expected_sequence);
  for (const auto& c : commands) *sub.add_commands() = c;
  v1::SubmitWorkflowCommandsResponse own;
  return client.SubmitCommands(sub, out != nullptr ? out : &own);
}

}  // namespace flovyn::testing
