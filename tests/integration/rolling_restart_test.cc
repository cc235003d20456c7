// A rolling restart under load: two flovyn-server replicas on one database, clients starting
// workflows through both (as a Service would spread them) and workers attached to each. One
// replica gets SIGTERM and is replaced on the same ports, as a pod behind a Service is. Clients
// may see UNAVAILABLE (and retry on the other replica with the same idempotency key) and nothing
// else; every workflow started completes exactly once.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/sdk/client.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using sdk::History;

std::vector<v1::WorkflowCommand> OneTask(const History& h) {
  if (h.Count("TASK_SCHEDULED") == 0) {
    auto c = sdk::ScheduleTask("double", h.Input());
    c.mutable_schedule_task()->set_lease_ms(1500);
    return {c, sdk::Suspend()};
  }
  auto done = h.OfType("TASK_COMPLETED");
  if (!done.empty()) return {sdk::Complete(json::parse(done[0]->payload_json())["output"].dump())};
  return {sdk::Suspend()};
}

std::string Double(const v1::Task& t) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // work that can be caught mid-flight
  return std::to_string(json::parse(t.input_json()).get<int>() * 2);
}

TEST(RollingRestartTest, AReplicaReplacedUnderLoadLosesNoWorkAndClientsSeeOnlyUnavailable) {
  std::string db = Postgres::Shared().CreateDatabase("rolling");
  std::string config = WriteEngineConfig({"acme"});
  std::map<std::string, std::string> env{{"CONFIG_FILE", config},
                                         {"ENGINE__WORKFLOW_LEASE_MS", "2000"},
                                         {"SHUTDOWN__DELAY_SECS", "1"},
                                         {"SHUTDOWN__TIMEOUT_SECS", "10"}};
  auto a = std::make_unique<ServerProcess>(ServerProcess::Options{.database_url = db, .env = env});
  ServerProcess b({.database_url = db, .env = env});
  ASSERT_TRUE(a->WaitReady()) << a->process().Log();
  ASSERT_TRUE(b.WaitReady()) << b.process().Log();
  const int a_http = a->http_port(), a_grpc = a->grpc_port();
  ASSERT_EQ(HttpRequest("POST", b.http_port(), "/api/tenants", R"({"slug":"acme"})",
                        {{"Authorization", std::string("Bearer ") + kAdminKey}})
                .status,
            201);
  auto token = HttpRequest("POST", b.http_port(), "/api/tenants/acme/worker-tokens", R"({"name":"rolling"})",
                           {{"Authorization", "Bearer " + TenantKey("acme")}, {"Content-Type", "application/json"}});
  ASSERT_EQ(token.status, 201) << token.body;
  std::string worker_token = json::parse(token.body)["token"];

  std::vector<std::string> targets = {"127.0.0.1:" + std::to_string(a_grpc),
                                      "127.0.0.1:" + std::to_string(b.grpc_port())};
  // Workers: two on each replica.
  std::vector<std::unique_ptr<sdk::Client>> worker_clients;
  std::vector<std::unique_ptr<sdk::Worker>> workers;
  for (int i = 0; i < 4; ++i) {
    worker_clients.push_back(
        std::make_unique<sdk::Client>(sdk::ClientOptions{.target = targets[i % 2], .token = worker_token}));
    workers.push_back(std::make_unique<sdk::Worker>(
        *worker_clients.back(),
        sdk::WorkerOptions{.name = "w" + std::to_string(i), .poll_timeout = std::chrono::milliseconds(2000)}));
    workers.back()->RegisterWorkflow("one-task", OneTask);
    workers.back()->RegisterTask("double", Double);
    ASSERT_TRUE(workers.back()->Start().ok());
  }

  // Clients: four threads starting workflows, alternating replicas; UNAVAILABLE is retried on the
  // other replica with the same idempotency key. Any other failure is counted.
  std::vector<std::unique_ptr<sdk::Client>> clients;
  for (const auto& t : targets) {
    clients.push_back(
        std::make_unique<sdk::Client>(sdk::ClientOptions{.target = t, .token = TenantKey("acme"), .tenant = "acme"}));
  }
  constexpr int kPerThread = 200;
  std::atomic<int> started{0}, unavailable{0};
  std::mutex mu;
  std::set<std::string> ids;
  std::vector<std::string> other_errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "c" + std::to_string(t) + "-" + std::to_string(i);
        for (int attempt = 0;; ++attempt) {
          v1::StartWorkflowResponse out;
          auto s = clients[(i + t + attempt) % 2]->StartWorkflow("one-task", std::to_string(i), &out, "default", key);
          if (s.ok()) {
            std::lock_guard<std::mutex> l(mu);
            ids.insert(out.execution_id());
            break;
          }
          if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
            ++unavailable;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
          }
          std::lock_guard<std::mutex> l(mu);
          other_errors.push_back(std::to_string(s.error_code()) + " " + s.error_message());
          break;
        }
        ++started;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }

  // Midway: SIGTERM replica A, wait for its clean exit, replace it on the same ports.
  while (started < 100) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  a->process().Signal(SIGTERM);
  EXPECT_EQ(a->process().Wait(std::chrono::seconds(30)), 0) << a->process().Log();
  int started_while_down = started;
  a = std::make_unique<ServerProcess>(
      ServerProcess::Options{.database_url = db, .env = env, .http_port = a_http, .grpc_port = a_grpc});
  ASSERT_TRUE(a->WaitReady()) << a->process().Log();
  int started_when_replaced = started;
  for (auto& th : threads) th.join();
  EXPECT_LT(started_when_replaced, 4 * kPerThread) << "the replacement must happen while clients are running";
  std::printf("rolling restart: SIGTERM after 100 starts, replica gone after %d, replaced after %d, of %d\n",
              started_while_down, started_when_replaced, 4 * kPerThread);

  EXPECT_TRUE(other_errors.empty()) << other_errors.size()
                                    << " non-retryable failures, first: " << other_errors.front();
  EXPECT_EQ(ids.size(), static_cast<size_t>(4 * kPerThread)) << "every start got its own execution";

  // Every workflow completes, exactly once, with the right output.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::set<std::string> pending = ids;
  while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
    for (auto it = pending.begin(); it != pending.end();) {
      auto r = HttpRequest("GET", b.http_port(), "/api/tenants/acme/workflows/" + *it, "",
                           {{"Authorization", "Bearer " + TenantKey("acme")}});
      if (r.status == 200 && json::parse(r.body)["status"] == "COMPLETED") {
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    if (!pending.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(pending.empty()) << pending.size() << " workflows did not complete";
  std::string dup = Postgres::Shared().Psql(
      db.substr(db.rfind('/') + 1),
      "SELECT count(*) FROM (SELECT execution_id FROM workflow_events WHERE type = 'WORKFLOW_COMPLETED' "
      "GROUP BY execution_id HAVING count(*) > 1) d");
  EXPECT_EQ(dup, "0") << "a workflow completed twice";
  std::printf("rolling restart: %zu workflows, %d UNAVAILABLE answers retried on the other replica\n", ids.size(),
              unavailable.load());
  for (auto& w : workers) w->Stop();
}

}  // namespace
}  // namespace flovyn::testing
