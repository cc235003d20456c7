// The engine's store in-process against the shared PostgreSQL: a fresh database with the
// server's migrations, a Store over it, a tenant, and a workflow execution held by a worker, so
// store operations and command handlers are tested without a server process.
#pragma once

#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "engine/store.h"
#include "flovyn/db/pool.h"

namespace flovyn::testing {

// Records the keys the store wakes after each commit (the seam to NATS or LISTEN/NOTIFY) and
// hands deadlines to its sink, as the real notifiers do.
class RecordingNotifier : public engine::WorkNotifier {
 public:
  void AfterCommit(const std::string& key) override {
    if (DeliverDeadline(key)) return;
    std::lock_guard<std::mutex> l(mu_);
    woken_.insert(key);
  }
  bool Woke(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    return woken_.count(key) > 0;
  }
  void Clear() {
    std::lock_guard<std::mutex> l(mu_);
    woken_.clear();
  }

 private:
  std::mutex mu_;
  std::set<std::string> woken_;
};

class StoreTest : public ::testing::Test {
 public:
  // A single value from SQL run on the test database ("" for no row).
  std::string Sql(const std::string& sql, const db::Params& params = {});

 protected:
  void SetUp() override;

  // Starts a workflow of `kind` on `queue` and claims it as the worker; returns its id.
  engine::ExecutionId StartAndClaim(const std::string& queue = "q", const std::string& kind = "order");
  // Submits commands for the held execution at its current sequence.
  StatusOr<engine::SubmitResult> Submit(const engine::ExecutionId& execution,
                                        std::vector<engine::WorkflowCommand> commands);
  // Event types of an execution, in order.
  std::vector<std::string> EventTypes(const engine::ExecutionId& execution);
  int64_t Count(const std::string& table, const std::string& execution);
  // From now on, a trigger notes every update of a workflow_executions row; ExecutionUpdates
  // says how many `execution`'s row has had since (every row's, when empty).
  void NoteExecutionUpdates();
  int ExecutionUpdates(const std::string& execution = "");

  // A pool of one connection to the test database through a proxy on `proxy_port` (a
  // TcpProxy, which counts the flights of statements).
  std::unique_ptr<db::Pool> PoolThrough(int proxy_port);

  std::unique_ptr<db::Pool> pool_;
  RecordingNotifier notifier_;
  std::unique_ptr<engine::Store> store_;
  engine::TenantId tenant_;
  engine::WorkerId worker_;
};

}  // namespace flovyn::testing
