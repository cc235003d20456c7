// Where long-polls and notification streams wait for work, keyed by tenant, queue and kind.
// Notifiers (in-process, PostgreSQL LISTEN/NOTIFY, NATS) deliver into it; a drain releases
// every waiter at once. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace flovyn::engine {

enum class WorkKind { kWorkflow, kTask };

std::string WorkKey(const std::string& tenant_id, const std::string& queue, WorkKind kind);
// Bumped whenever either kind of work on the queue is notified (notification streams wait on it).
std::string AnyKindKey(const std::string& tenant_id, const std::string& queue);

class WorkHub {
 public:
  using Clock = std::chrono::steady_clock;
  // Pollers: takes one wake-up token for the key, waiting for one until the deadline or a
  // drain. Each notification adds a token (capped), so news that arrives while a poller is busy
  // claiming is not lost, and news is consumed once rather than waking every poller.
  // Returns true when a token was taken.
  bool Take(const std::string& key, Clock::time_point deadline);
  // Streams: the key's version, and a wait until it differs from `seen` (or deadline, drain).
  uint64_t Version(const std::string& key);
  void Wait(const std::string& key, uint64_t seen, Clock::time_point deadline);
  void Notify(const std::string& key);
  void Drain();
  bool draining() const;
  int waiting() const;

 private:
  struct Slot {
    uint64_t version = 0;
    int tokens = 0;
    std::condition_variable cv;
  };
  static constexpr int kMaxTokens = 64;
  std::shared_ptr<Slot> SlotFor(const std::string& key);  // requires mu_

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> slots_;  // guarded by mu_
  bool draining_ = false;                               // guarded by mu_
  int waiting_ = 0;                                     // guarded by mu_
};

}  // namespace flovyn::engine
