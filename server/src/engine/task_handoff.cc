#include "engine/task_handoff.h"

#include <algorithm>

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

StatusOr<TaskClaim> InsertHandedOver(Unit& u, const TaskHandoff::Offer& offer, db::Params params) {
  TaskHandoff::Poller* poller = offer.poller;
  u.OnRollback([poller] { poller->Resume(); });
  params.push_back(offer.worker);
  ASSIGN_OR_RETURN(auto r, u.Exec(sql::kInsertTaskClaimed, params));
  db::Row row(r, 0);
  TaskClaim claim{TaskFrom(row), row.Int("lease_expires_at_ms")};
  u.OnCommit([poller, claim] { poller->Deliver(claim); });
  u.AfterCommit([](EngineMetrics& m) { m.dispatch.With({"task"})->Observe(0); });
  return claim;
}

}  // namespace flovyn::engine
