// One unit of the store's work: a transaction, the pollers it will wake and the metrics it will
// count, both only after commit (rolled-back work must neither wake nor count). Used by one
// thread, inside Store::Run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/engine_metrics.h"
#include "engine/task_handoff.h"
#include "engine/work_hub.h"
#include "flovyn/db/transaction.h"

namespace flovyn::engine {

// Where work a unit makes may go at once (eager dispatch); null: through the queue.
struct UnitHandoffs {
  TaskHandoff* tasks = nullptr;
  TaskHandoff* workflows = nullptr;
};

// A worker completing a task that runs its workflow's next activation itself
// (CompleteTaskRequest.take_workflow): that workflow, made runnable by this unit while sticky to
// the worker, is claimed for it (with `lease`) into `claim` instead of going to a poller.
struct WorkflowTaker {
  std::string worker;
  std::string execution;
  std::chrono::milliseconds lease{0};
  std::optional<WorkflowClaim>* claim = nullptr;
  bool served = false;  // claimed for it in this unit; `claim` is filled when the unit commits
};

// A worker submitting commands that runs some of the tasks they schedule itself
// (SubmitWorkflowCommandsRequest.take_tasks): up to `room` tasks of `kinds` on `queue` are
// claimed for it, handed to `taker` when the unit commits.
struct TaskTaker {
  std::string worker;
  std::string queue;
  std::vector<std::string> kinds;
  int room = 0;
  TaskHandoff::Poller* taker = nullptr;
  bool Wants(const std::string& q, const std::string& kind) const {
    return room > 0 && q == queue && std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  }
};

class Unit {
 public:
  using Handoffs = UnitHandoffs;
  Unit(db::Tx& tx, EngineMetrics* metrics, Handoffs handoffs = {}) : tx_(tx), metrics_(metrics), handoffs_(handoffs) {}
  TaskHandoff* handoff() const { return handoffs_.tasks; }
  TaskHandoff* workflow_handoff() const { return handoffs_.workflows; }
  void SetTaker(WorkflowTaker t) { taker_ = std::move(t); }
  void SetTaskTaker(TaskTaker t) { task_taker_ = std::move(t); }
  TaskTaker* task_taker() { return task_taker_ ? &*task_taker_ : nullptr; }
  // The taker still waiting for its workflow; null when none asked or it has it.
  WorkflowTaker* taker() { return taker_ && taker_->claim && !taker_->served ? &*taker_ : nullptr; }
  // A unit that never committed undoes what it promised (OnRollback).
  ~Unit() {
    if (!committed_) RunRollback(0);
  }
  Unit(const Unit&) = delete;
  Unit& operator=(const Unit&) = delete;
  StatusOr<db::Result> Exec(std::string_view sql, const db::Params& params = {}) { return tx_.Exec(sql, params); }
  // A statement whose result nobody reads: sent with the next one, its error that one's.
  Status Defer(std::string_view sql, const db::Params& params = {}) { return tx_.Defer(sql, params); }
  // A read that goes out with the next statement (Exec), its result in `*into` after that.
  Status DeferInto(std::string_view sql, const db::Params& params, db::Result* into) {
    return tx_.DeferInto(sql, params, into);
  }
  // One row of a statement over arrays; rows deferred one after another go out as one statement.
  Status DeferRow(std::string_view sql, db::Params row) { return tx_.DeferRow(sql, std::move(row)); }
  // The transaction itself, for a plugin's own statements in the same commit.
  db::Tx& tx() { return tx_; }
  // Runs after a successful commit.
  void AfterCommit(std::function<void(EngineMetrics&)> f) {
    if (metrics_) after_.push_back(std::move(f));
  }
  // Runs after a successful commit (a claim handed to a waiting poller).
  void OnCommit(std::function<void()> f) { on_commit_.push_back(std::move(f)); }
  // Kept as long as the unit (the target of a DeferInto, which is written when it goes out),
  // even when a savepoint is rolled back.
  void Keep(std::shared_ptr<void> p) { kept_.push_back(std::move(p)); }
  // Runs when this unit's work does not commit: its transaction rolled back, its savepoint was
  // rolled back, or it is discarded to run again.
  void OnRollback(std::function<void()> f) { on_rollback_.push_back(std::move(f)); }
  // `tag`: the worker that keeps the execution cached, woken first when it waits (TaggedKey).
  void Wake(const std::string& tenant, const std::string& queue, WorkKind kind, const std::string& tag = {}) {
    wake_.insert(tag.empty() ? WorkKey(tenant, queue, kind) : TaggedKey(WorkKey(tenant, queue, kind), tag));
  }
  // A timer or promise timeout this unit creates falls due in `due_in_us` (measured by the
  // database's clock when it was written): after commit the schedulers wake for the earliest.
  void Deadline(int64_t due_in_us) {
    auto at = std::chrono::system_clock::now() + std::chrono::microseconds(std::max<int64_t>(due_in_us, 0));
    if (!deadline_ || at < *deadline_) deadline_ = at;
  }
  // What a rolled-back savepoint must forget: its wake-ups, deadlines and after-commit work.
  struct Mark {
    std::set<std::string> wakes;
    std::optional<std::chrono::system_clock::time_point> deadline;
    size_t after = 0, on_commit = 0, on_rollback = 0;
  };
  Mark Checkpoint() const { return {wake_, deadline_, after_.size(), on_commit_.size(), on_rollback_.size()}; }
  void Rewind(Mark m) {
    wake_ = std::move(m.wakes);
    deadline_ = m.deadline;
    after_.resize(m.after);
    on_commit_.resize(m.on_commit);
    RunRollback(m.on_rollback);
  }
  const std::set<std::string>& wakes() const { return wake_; }
  const std::optional<std::chrono::system_clock::time_point>& deadline() const { return deadline_; }
  void RunAfterCommit() {
    committed_ = true;
    for (auto& f : on_commit_) f();
    for (auto& f : after_) f(*metrics_);
  }

 private:
  db::Tx& tx_;
  EngineMetrics* metrics_;
  Handoffs handoffs_;
  std::optional<WorkflowTaker> taker_;
  std::optional<TaskTaker> task_taker_;
  std::set<std::string> wake_;
  std::optional<std::chrono::system_clock::time_point> deadline_;
  std::vector<std::function<void(EngineMetrics&)>> after_;
  std::vector<std::function<void()>> on_commit_, on_rollback_;
  std::vector<std::shared_ptr<void>> kept_;
  bool committed_ = false;

  // The rollback work registered after the first `keep`, newest first; then forgotten.
  void RunRollback(size_t keep) {
    while (on_rollback_.size() > keep) {
      auto f = std::move(on_rollback_.back());
      on_rollback_.pop_back();
      f();
    }
  }
};

}  // namespace flovyn::engine
