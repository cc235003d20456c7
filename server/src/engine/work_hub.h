// Where long-polls and notification streams wait for work, keyed by tenant, queue and kind.
// Notifiers (in-process, PostgreSQL LISTEN/NOTIFY, NATS) deliver into it; a drain releases
// every waiter at once. Nothing waits on a thread: a waiter is a callback the hub runs exactly
// once, when news arrives, at a sweep, at its deadline or at the drain. One timer thread serves
// every deadline and sweep. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "flovyn/core/mutex.h"
#include "flovyn/core/time_source.h"

namespace flovyn::engine {

enum class WorkKind { kWorkflow, kTask };

std::string WorkKey(const std::string& tenant_id, const std::string& queue, WorkKind kind);
// Bumped whenever either kind of work on the queue is notified (notification streams wait on it).
std::string AnyKindKey(const std::string& tenant_id, const std::string& queue);
// A notification of `key` meant for one waiter first: the one parked with `tag` (a worker's id,
// for the execution it keeps cached), any other when that one is not waiting.
std::string TaggedKey(const std::string& key, const std::string& tag);

class WorkHub {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Wake {
    kNews,      // the key was notified: claim again
    kSweep,     // periodic re-check (work that became due without a notification)
    kDeadline,  // the waiter's deadline passed
    kDrain,     // the server is shutting down
  };
  using WakeFn = std::function<void(Wake)>;

  // `sweep`: how often one waiter per polled key is woken to re-check without a notification.
  // `time`: deadlines, sweeps and evictions follow it (default: the real time, on a timer thread
  // of the hub's own; tests pass a ManualTime).
  explicit WorkHub(std::chrono::milliseconds sweep = std::chrono::milliseconds(1000), TimeSource* time = nullptr);
  ~WorkHub();
  WorkHub(const WorkHub&) = delete;
  WorkHub& operator=(const WorkHub&) = delete;

  // The hub's current time: deadlines given to Park are on this clock.
  Clock::time_point Now() const { return time_.Now(); }

  // The key's news counter. A poller reads it before claiming and parks with it, so news that
  // arrives while it claims is not lost.
  uint64_t Observe(const std::string& key);

  struct Parked {
    uint64_t ticket = 0;  // 0: not parked; `immediate` says why
    Wake immediate = Wake::kNews;
  };
  // Parks a one-shot waiter on `key`. When the key has had news since `seen`, or the hub is
  // draining, nothing is parked and `immediate` says why (the caller acts on it itself).
  // Otherwise `fn` runs exactly once, on the hub's timer thread or a notifier's thread, never
  // under the hub's lock, unless Cancel removes it first. On a poll key one notification wakes
  // one waiter (a tagged one, TaggedKey, the waiter parked with that tag if there is one); on an
  // any-kind key (streams) it wakes them all.
  Parked Park(const std::string& key, uint64_t seen, Clock::time_point deadline, WakeFn fn, std::string tag = {});
  // A claim of `scope`'s work on `key` (a poller's kinds) that began at `seen` found nothing:
  // until the key's next news or sweep, KnownEmpty says so, and new pollers of that scope park
  // without claiming (work that becomes due without news is found at the sweep, as by parked
  // waiters). Remembers at most kEmptyScopes scopes per key.
  void FoundEmpty(const std::string& key, uint64_t seen, const std::string& scope);
  bool KnownEmpty(const std::string& key, uint64_t seen, const std::string& scope) const;
  static constexpr size_t kEmptyScopes = 16;

  // True when the waiter was removed before waking (its callback will not run).
  bool Cancel(uint64_t ticket);

  void Notify(const std::string& key);
  void Drain();
  bool draining() const;
  int waiting() const;
  size_t keys() const;  // keys held in memory (waited on, or news within two sweeps)

 private:
  struct Slot {
    uint64_t version = 0;
    std::list<uint64_t> waiters;                  // tickets, oldest first
    std::multimap<std::string, uint64_t> tagged;  // the waiters parked with a tag, by tag
    Clock::time_point touched;
    std::set<std::string> empty;  // scopes whose claim at `version` found nothing (FoundEmpty)
  };
  struct Waiter {
    std::string key;
    std::list<uint64_t>::iterator in_slot;
    std::multimap<Clock::time_point, uint64_t>::iterator in_deadlines;
    WakeFn fn;
    std::optional<std::multimap<std::string, uint64_t>::iterator> in_tagged;
  };
  using Ready = std::vector<std::pair<WakeFn, Wake>>;

  Slot& SlotFor(const std::string& key) REQUIRES(mu_);
  void WakeOne(Slot& slot, Wake why, Ready& out, const std::string& tag = {}) REQUIRES(mu_);
  void WakeAll(Slot& slot, Wake why, Ready& out) REQUIRES(mu_);
  void Take(uint64_t ticket, Wake why, Ready& out) REQUIRES(mu_);
  void Unlink(const Waiter& w) REQUIRES(mu_);  // out of its slot (and tag) and the deadlines
  void NotifyLocked(const std::string& key, Ready& out, const std::string& tag = {}) REQUIRES(mu_);
  void Tick();  // deadlines, sweeps and eviction; reschedules itself
  static void Run(Ready& ready);

  const std::chrono::milliseconds sweep_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Slot> slots_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Waiter> waiters_ GUARDED_BY(mu_);
  std::multimap<Clock::time_point, uint64_t> deadlines_ GUARDED_BY(mu_);
  uint64_t next_ticket_ GUARDED_BY(mu_) = 1;
  uint64_t news_ GUARDED_BY(mu_) = 0;
  bool draining_ GUARDED_BY(mu_) = false;
  Clock::time_point next_sweep_ GUARDED_BY(mu_);
  uint64_t tick_timer_ GUARDED_BY(mu_) = 0;
  Clock::time_point tick_at_ GUARDED_BY(mu_) = Clock::time_point::max();
  std::unique_ptr<TimeSource> own_time_;
  TimeSource& time_;
};

}  // namespace flovyn::engine
