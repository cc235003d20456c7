// The store's background work, safe on every replica at once: due timers, overdue promises and
// the queue-depth gauges. (Expired leases are swept beside their kind, in store_workflows.cc
// and store_tasks.cc.)
#include "engine/rows.h"
#include "engine/sql.h"
#include "engine/store.h"
#include "flovyn/core/status_macros.h"

namespace flovyn::engine {

using nlohmann::json;

StatusOr<int> Store::FireDueTimers(int limit) {
  return Sweep("timers", sql::kDueTimers, limit, [](Unit& u, const db::Result& r, int i) {
    db::Row row(r, i);
    std::string exec = row.Str("execution_id"), name = row.Str("name");
    RETURN_IF_ERROR(u.Defer(sql::kFireTimer, {exec, name}));
    // The row came locked with its timer; an execution with an earlier timer in this run has
    // changed since, so it is read again.
    bool again = false;
    for (int j = 0; j < i && !again; ++j) again = r.Get(j, 0) == r.Get(i, 0);
    auto e = again ? Execution::Lock(u, row.Str("tenant_id"), exec) : Execution::Locked(u, row);
    if (!e.ok()) return e.status();
    Status s = DeliverTo(u, *e, "TIMER_FIRED", {{"name", name}}, true);
    if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;  // an ended execution ignores it
    u.AfterCommit([lag = row.Double("lag")](EngineMetrics& m) {
      m.timer_lag.Observe(lag);
      m.timers_fired.Inc();
    });
    return Status::Ok();
  });
}

StatusOr<int> Store::TimeOutPromises(int limit) {
  return Sweep("promise-timeouts", sql::kOverduePromises, limit, [](Unit& u, const db::Result& r, int i) {
    db::Row row(r, i);
    Status st = SettlePromise(u, row.Str("tenant_id"), row.Str("id"), "TIMED_OUT", json("timed out"));
    return st.code() == StatusCode::kFailedPrecondition ? Status::Ok() : st;
  });
}

StatusOr<Store::Deadlines> Store::NextDeadlines(int timers) {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kNextDeadlines, {std::to_string(timers)}));
  Deadlines d;
  for (int i = 0; i < r.rows(); ++i) {
    db::Row row(r, i);
    if (row.Str("kind") == "timer") {
      d.timer_us.push_back(row.Int("due_in_us"));
    } else {
      d.promise_us = row.OptInt("due_in_us");
    }
  }
  return d;
}

Status Store::RefreshQueueDepth() {
  if (metrics_ == nullptr) return Status::Ok();
  // Queue names come from the network: the deepest kDepthQueues queues of each kind get their
  // own series and the rest are summed into queue="other", so the series stay bounded.
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kQueueDepth, {std::to_string(kDepthQueues)}));
  std::set<std::pair<std::string, std::string>> seen;
  for (int i = 0; i < r.rows(); ++i) {
    db::Row row(r, i);
    seen.emplace(row.Str("kind"), row.Str("queue"));
    metrics_->depth.With({row.Str("kind"), row.Str("queue")})->Set(static_cast<double>(row.Int("n")));
  }
  for (const auto& [kind, queue] : depth_labels_) {
    if (seen.count({kind, queue})) continue;
    // A queue that emptied reads 0 until the next refresh, then its series goes.
    if (queue == "other" || zeroed_.count({kind, queue})) {
      metrics_->depth.Remove({kind, queue});
    } else {
      metrics_->depth.With({kind, queue})->Set(0);
    }
  }
  std::set<std::pair<std::string, std::string>> zeroed;
  for (const auto& l : depth_labels_) {
    if (!seen.count(l) && !zeroed_.count(l) && l.second != "other") zeroed.insert(l);
  }
  zeroed_ = std::move(zeroed);
  depth_labels_ = seen;
  depth_labels_.insert(zeroed_.begin(), zeroed_.end());
  return Status::Ok();
}

}  // namespace flovyn::engine
