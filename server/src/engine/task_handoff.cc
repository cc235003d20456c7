#include "engine/task_handoff.h"

#include <algorithm>
#include <chrono>

#include "engine/limits.h"
#include "engine/rows.h"
#include "engine/sql.h"
#include "engine/unit.h"
#include "flovyn/core/status_macros.h"

namespace flovyn::engine {

void TaskHandoff::Add(const std::string& key, uint64_t ticket, std::string worker, std::vector<std::string> kinds,
                      Poller* p) {
  MutexLock l(mu_);
  parked_[key].push_back({ticket, std::move(worker), std::move(kinds), p});
}

void TaskHandoff::Remove(const std::string& key, uint64_t ticket) {
  MutexLock l(mu_);
  auto it = parked_.find(key);
  if (it == parked_.end()) return;
  it->second.remove_if([ticket](const Entry& e) { return e.ticket == ticket; });
  if (it->second.empty()) parked_.erase(it);
}

std::optional<TaskHandoff::Offer> TaskHandoff::Take(const std::string& key, const std::string& kind,
                                                    const std::optional<std::string>& worker) {
  while (true) {
    Entry taken{};
    {
      MutexLock l(mu_);
      auto it = parked_.find(key);
      if (it == parked_.end()) return std::nullopt;
      auto& list = it->second;
      auto e = std::find_if(list.begin(), list.end(), [&](const Entry& x) {
        if (worker && x.worker != *worker) return false;
        return x.kinds.empty() || std::find(x.kinds.begin(), x.kinds.end(), kind) != x.kinds.end();
      });
      if (e == list.end()) return std::nullopt;
      taken = std::move(*e);
      list.erase(e);
      if (list.empty()) parked_.erase(it);
    }
    // The hub decides: when it has woken this poller already, the poller is on its own way.
    if (hub_.Cancel(taken.ticket)) return Offer{std::move(taken.worker), taken.poller};
  }
}

size_t TaskHandoff::offered() const {
  MutexLock l(mu_);
  size_t n = 0;
  for (const auto& [_, list] : parked_) n += list.size();
  return n;
}

StatusOr<TaskClaim> InsertHandedOver(Unit& u, const TaskHandoff::Offer& offer, const NewTask& t,
                                     std::optional<int64_t> db_now_ms) {
  RETURN_IF_ERROR(u.Defer(
      sql::kInsertTaskClaimed,
      {t.id, t.tenant, t.workflow_id,
       t.workflow_seq ? std::optional<std::string>(std::to_string(*t.workflow_seq)) : std::nullopt, t.spec.kind,
       t.spec.queue, t.spec.input_json, std::to_string(t.spec.max_attempts), std::to_string(t.spec.initial_backoff_ms),
       std::to_string(t.spec.max_backoff_ms), std::to_string(t.spec.lease_ms), t.traceparent, offer.worker}));
  TaskHandoff::Poller* poller = offer.poller;
  u.OnRollback([poller] { poller->Resume(); });
  TaskClaim claim;
  claim.task.id = t.id;
  claim.task.kind = t.spec.kind;
  claim.task.queue = t.spec.queue;
  claim.task.status = "RUNNING";
  claim.task.input_json = t.spec.input_json;
  claim.task.output_json = claim.task.progress_json = "null";
  claim.task.workflow_id = t.workflow_id;
  claim.task.workflow_sequence = t.workflow_seq;
  claim.task.attempt = 1;
  claim.task.max_attempts = t.spec.max_attempts;
  claim.task.traceparent = t.traceparent.value_or("");
  int64_t now_ms = db_now_ms.value_or(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  claim.lease_expires_at_ms = now_ms + std::min<int64_t>(t.spec.lease_ms, limits::kMaxDurationMs.value);
  u.OnCommit([poller, claim] { poller->Deliver(claim); });
  u.AfterCommit([](EngineMetrics& m) { m.dispatch.With({"task"})->Observe(0); });
  return claim;
}

}  // namespace flovyn::engine
