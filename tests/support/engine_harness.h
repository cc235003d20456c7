// A flovyn-server with security on, static API keys (a platform admin and one key per test
// tenant), helpers to create tenants and worker tokens over REST, and SDK clients.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "flovyn/sdk/client.h"
#include "harness.h"

namespace flovyn::testing {

constexpr const char* kAdminKey = "admin-key-0123456789abcdef";
// The tenant's admin key, and a key of the member role.
inline std::string TenantKey(const std::string& slug) { return "tenant-key-" + slug + "-0123456789"; }
inline std::string MemberKey(const std::string& slug) { return "member-key-" + slug + "-0123456789"; }

// Writes the TOML configuration with the static API keys for `tenant_slugs`.
std::string WriteEngineConfig(const std::vector<std::string>& tenant_slugs);

struct EngineServerOptions {
  std::string database_url;  // empty: a fresh database
  std::vector<std::string> tenants = {"acme"};
  std::map<std::string, std::string> env;
  bool create_tenants = true;
  std::vector<std::string> launcher;  // see ServerProcess::Options::launcher
};

class EngineServer {
 public:
  explicit EngineServer(EngineServerOptions o = {});
  ServerProcess& server() { return *server_; }
  int http_port() const { return server_->http_port(); }
  const std::string& database_url() const { return url_; }
  // REST call with the given key (default: the tenant's key for slug "acme").
  HttpResult Rest(const std::string& method, const std::string& target, const std::string& body = "",
                  const std::string& key = TenantKey("acme"));
  nlohmann::json RestJson(const std::string& method, const std::string& target, const std::string& body = "",
                          const std::string& key = TenantKey("acme"));
  std::string CreateWorkerToken(const std::string& slug);
  sdk::ClientOptions ClientFor(const std::string& slug);  // with a fresh worker token
  // Polls GET workflow until its status is terminal or the timeout passes.
  nlohmann::json WaitWorkflow(const std::string& slug, const std::string& id,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::vector<nlohmann::json> Events(const std::string& slug, const std::string& id);
  // Starts the server again (on the same ports when `same_ports`).
  void Restart(std::map<std::string, std::string> extra_env = {}, bool same_ports = false);
  void Stop() { server_.reset(); }

 private:
  EngineServerOptions options_;
  std::string url_, config_;
  std::unique_ptr<ServerProcess> server_;
  int last_http_port_ = 0, last_grpc_port_ = 0;
};

// One statement on the server's database, as psql prints its result; the same as a number.
std::string Sql(EngineServer& s, const std::string& sql);
int64_t SqlInt(EngineServer& s, const std::string& sql);

// The count of calls of one flovyn.v1 gRPC method ("TaskExecution/CompleteTask") that answered
// OK, from /metrics (0 when none; the server runs with METRICS__ENABLED=true).
int GrpcCalls(EngineServer& s, const std::string& method);

// Row counts of every engine table, to prove that a refused request changed nothing.
std::string RowCounts(EngineServer& s);

// A registered worker holding the next workflow claimed on `queue` (ASSERTs that one was claimed).
struct HeldWorkflow {
  std::string worker_id;
  v1::PollWorkflowResponse claim;
};
HeldWorkflow ClaimNextWorkflow(sdk::Client& client, const std::string& queue = "default");
// Submits `commands` for execution `id` as `worker`, expecting the history at `expected_sequence`.
grpc::Status SubmitAs(sdk::Client& client, const std::string& worker, const std::string& id, int64_t expected_sequence,
                      const std::vector<v1::WorkflowCommand>& commands,
                      v1::SubmitWorkflowCommandsResponse* out = nullptr);

// Starts a workflow over REST as tenant `slug`; returns its id ("" when refused).
std::string StartWorkflow(EngineServer& s, const std::string& kind, const nlohmann::json& input,
                          const std::string& slug = "acme");
// The execution's events of `type`, their payloads in order.
std::vector<nlohmann::json> PayloadsOf(const std::vector<nlohmann::json>& events, const std::string& type);
// Waits (up to 10 s) until the history holds an event of `type`; its payload, or null.
nlohmann::json WaitForEvent(EngineServer& s, const std::string& id, const std::string& type,
                            const std::string& slug = "acme");
// Asserts that a history is dense: sequences 1..n in order.
::testing::AssertionResult DenseHistory(const std::vector<nlohmann::json>& events);

}  // namespace flovyn::testing
