// Eager dispatch: the long-polls parked on this replica, offered to whoever makes work for them
// (a task submitted or scheduled; a workflow made runnable by a task's result, a timer, a
// signal), so the work is claimed for one of them in that transaction and handed over after its
// commit, with no claim transaction of its own. One instance holds task polls, another
// workflow polls. Who gets a parked poller
// is decided by the WorkHub: taking an offer cancels the poller's ticket there, which fails when
// the hub has woken it already (news, deadline, drain, its caller gone), so a poller is either
// woken by the hub or handed work, never both. Thread-safe.
#pragma once

#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model.h"
#include "engine/work_hub.h"
#include "flovyn/core/mutex.h"
#include "flovyn/db/pool.h"

namespace flovyn::engine {

class Unit;

class TaskHandoff {
 public:
  // A parked task poller, as its long-poll sees it.
  class Poller {
   public:
    virtual ~Poller() = default;
    // The claim committed for it: answer the poll (or give the work back when its caller left).
    virtual void Deliver(const TaskClaim& claim) = 0;
    virtual void Deliver(const WorkflowClaim& claim) = 0;
    // The transaction that claimed for it rolled back: poll on as if woken by news.
    virtual void Resume() = 0;
  };
  struct Offer {
    std::string worker;
    Poller* poller = nullptr;
  };

  explicit TaskHandoff(WorkHub& hub) : hub_(hub) {}

  // The poller parked on `key` (WorkKey of a task queue) with `ticket`, for `kinds` (empty: any).
  void Add(const std::string& key, uint64_t ticket, std::string worker, std::vector<std::string> kinds, Poller* p);
  // It was woken or cancelled: no longer offered (nothing when it was taken already).
  void Remove(const std::string& key, uint64_t ticket);
  // A poller on `key` that takes `kind` (and is `worker`'s, when given), now out of the hub: it
  // is the caller's to Deliver to or Resume, exactly once. None when no such poller waits.
  std::optional<Offer> Take(const std::string& key, const std::string& kind,
                            const std::optional<std::string>& worker = std::nullopt);
  // Workflow polls: the lease a claim handed over gets (the store's workflow lease).
  std::chrono::milliseconds lease{60000};
  size_t offered() const;

 private:
  struct Entry {
    uint64_t ticket;
    std::string worker;
    std::vector<std::string> kinds;
    Poller* poller;
  };
  WorkHub& hub_;
  mutable Mutex mu_;
  std::unordered_map<std::string, std::list<Entry>> parked_ GUARDED_BY(mu_);
};

// A task as it is inserted already claimed (kInsertTaskClaimed).
struct NewTask {
  std::string id, tenant;
  std::optional<std::string> workflow_id;  // and the sequence of its TASK_SCHEDULED
  std::optional<int64_t> workflow_seq;
  TaskSpec spec;
  std::optional<std::string> traceparent;
};

// Inserts `t` already claimed for `offer`'s poller and hands it over when `u` commits; when `u`
// does not commit, the poller polls on. The insert goes out with the unit's next statement (no
// round trip of its own), so the claim is made here: its lease ends `spec.lease_ms` after
// `db_now_ms` (the transaction's now(), as the row has it) when known, else after this
// server's clock reading.
StatusOr<TaskClaim> InsertHandedOver(Unit& u, const TaskHandoff::Offer& offer, const NewTask& t,
                                     std::optional<int64_t> db_now_ms);

}  // namespace flovyn::engine
