// Group commit under a crash: workers complete tasks concurrently (so completions share
// transactions), some completions are refused inside those groups, and the server is killed
// (SIGKILL, no drain) while completions are in flight. After a restart on the same database:
// every acknowledged result is there, exactly as acknowledged; no refused completion left a
// trace; a task whose completion was never answered is either still open or holds the result
// its worker sent, never another.
#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "flovyn/sdk/client.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;

std::string OutputFor(const std::string& task_id) { return json{{"done", task_id}}.dump(); }

TEST(GroupCommitTest, AKilledServerKeepsEveryAcknowledgedResultAndNoRefusedOne) {
  // Each group waits 2 ms for company, so completions arriving together share a commit.
  EngineServer s({.env = {{"ENGINE__GROUP_COMMIT_WINDOW_US", "2000"}}});
  sdk::Client submitter(
      {.target = "127.0.0.1:" + std::to_string(s.server().grpc_port()), .token = TenantKey("acme"), .tenant = "acme"});
  constexpr int kTasks = 600;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) {
    v1::SubmitTaskRequest req;
    req.set_kind("work");
    req.set_input_json(std::to_string(i));  // the default lease (30 s) outlasts the test
    std::string id;
    ASSERT_TRUE(submitter.SubmitTask(req, &id).ok());
    ids.push_back(id);
  }

  std::mutex mu;
  std::map<std::string, std::string> acknowledged;  // task id -> output the server acknowledged
  std::map<std::string, std::string> sent;          // every output sent for a task
  std::atomic<int> refused{0}, done_calls{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  sdk::ClientOptions worker_options = s.ClientFor("acme");
  for (int w = 0; w < 8; ++w) {
    workers.emplace_back([&, w] {
      sdk::Client c(worker_options);
      v1::RegisterWorkerRequest reg;
      reg.set_name("w" + std::to_string(w));
      reg.add_task_kinds("work");
      std::string worker_id;
      if (!c.RegisterWorker(reg, &worker_id).ok()) return;
      while (!stop) {
        v1::PollTaskRequest poll;
        poll.set_worker_id(worker_id);
        poll.set_queue("default");
        poll.add_kinds("work");
        poll.set_timeout_ms(500);
        v1::PollTaskResponse got;
        if (!c.PollTask(poll, &got).ok()) return;  // the server is gone
        if (!got.has_work()) continue;
        const v1::Task& t = got.task();
        // Every third task first gets a completion for an attempt it is not at: refused
        // (ABORTED) inside whatever group it joins, and it must leave nothing behind.
        if (std::stoi(t.input_json()) % 3 == 0) {
          v1::Task wrong = t;
          wrong.set_attempt(t.attempt() + 1);
          auto r = c.CompleteTask(worker_id, wrong, json{{"refused", t.id()}}.dump());
          if (r.error_code() == grpc::StatusCode::UNAVAILABLE) return;
          EXPECT_EQ(r.error_code(), grpc::StatusCode::ABORTED) << r.error_message();
          ++refused;
        }
        std::string output = OutputFor(t.id());
        {
          std::lock_guard<std::mutex> l(mu);
          sent[t.id()] = output;
        }
        auto r = c.CompleteTask(worker_id, t, output);
        if (r.ok()) {
          std::lock_guard<std::mutex> l(mu);
          acknowledged[t.id()] = output;
          ++done_calls;
        } else if (r.error_code() == grpc::StatusCode::UNAVAILABLE) {
          return;  // unknown outcome: checked below
        } else {
          ADD_FAILURE() << "completion refused: " << r.error_message();
        }
      }
    });
  }
  // Kill the server mid-stream, without warning.
  while (done_calls < kTasks / 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.server().process().Signal(SIGKILL);
  s.server().process().Wait(std::chrono::seconds(10));
  stop = true;
  for (auto& t : workers) t.join();
  size_t acked = acknowledged.size();
  ASSERT_GE(acked, static_cast<size_t>(kTasks / 2));
  ASSERT_LT(acked, static_cast<size_t>(kTasks)) << "the kill must land while completions are in flight";

  s.Restart();
  int completed = 0, completed_unacknowledged = 0;
  for (const auto& id : ids) {
    auto task = s.RestJson("GET", "/api/tenants/acme/tasks/" + id);
    std::string status = task["status"];
    std::string output = task.contains("output") && !task["output"].is_null() ? task["output"].dump() : "";
    if (acknowledged.count(id) > 0) {
      EXPECT_EQ(status, "COMPLETED") << "acknowledged result of " << id << " lost";
      EXPECT_EQ(output, acknowledged[id]) << id;
    }
    EXPECT_EQ(output.find("refused"), std::string::npos) << "a refused completion of " << id << " was kept";
    if (status == "COMPLETED") {
      ++completed;
      if (acknowledged.count(id) == 0) {
        ++completed_unacknowledged;
        // Committed just before the kill, its answer lost: it holds its own worker's result.
        ASSERT_EQ(sent.count(id), 1u) << id << " completed without any worker completing it";
        EXPECT_EQ(output, sent[id]);
      }
    } else {
      EXPECT_TRUE(status == "RUNNING" || status == "PENDING") << id << " is " << status;
    }
  }
  EXPECT_GT(refused.load(), 0);
  std::printf(
      "group commit crash: %d tasks, %zu acknowledged, %d completed after restart (%d unanswered), %d "
      "refused completions\n",
      kTasks, acked, completed, completed_unacknowledged, refused.load());
}

}  // namespace
}  // namespace flovyn::testing
