// How work created in one transaction wakes pollers, here and on other replicas: the seam
// between the store and the transport (NATS when enabled, PostgreSQL LISTEN/NOTIFY otherwise).
// Whatever the transport, pollers also re-check on a timer, so a lost notification only delays.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "engine/work_hub.h"
#include "flovyn/core/mutex.h"
#include "flovyn/db/pool.h"
#include "flovyn/db/transaction.h"

namespace flovyn::nats {
class Connection;
}

namespace flovyn::engine {

// A deadline travels as a key of its own: when a timer or a promise timeout created by a commit
// falls due (Unix microseconds, the database's own precision, so the scheduler's run is at the
// deadline and not after it), so every replica's scheduler wakes for it (Scheduler::Hint).
std::string DeadlineKey(int64_t unix_us);
std::optional<int64_t> ParseDeadlineKey(const std::string& key);

class WorkNotifier {
 public:
  virtual ~WorkNotifier() = default;
  // Where the deadlines this notifier delivers go (the scheduler); set before Start.
  void SetDeadlineSink(std::function<void(int64_t unix_us)> sink) {
    MutexLock l(sink_mu_);
    sink_ = std::move(sink);
  }
  // Inside the transaction that created the work (PostgreSQL NOTIFY is delivered on commit).
  virtual Status InTransaction(db::Tx&, const std::string& /*key*/) { return Status::Ok(); }
  // After commit.
  virtual void AfterCommit(const std::string& key) = 0;
  virtual void Start() {}
  virtual void Stop() {}

 protected:
  // True when `key` is a deadline, handed to the sink (if any) rather than to pollers.
  bool DeliverDeadline(const std::string& key) {
    auto at = ParseDeadlineKey(key);
    if (!at) return false;
    MutexLock l(sink_mu_);
    if (sink_) sink_(*at);
    return true;
  }

 private:
  Mutex sink_mu_;
  std::function<void(int64_t)> sink_ GUARDED_BY(sink_mu_);
};

// Same-process pollers only.
class LocalNotifier : public WorkNotifier {
 public:
  explicit LocalNotifier(WorkHub& hub) : hub_(hub) {}
  void AfterCommit(const std::string& key) override { Deliver(key); }

 protected:
  // A deadline to the scheduler, anything else to the pollers.
  void Deliver(const std::string& key) {
    if (!DeliverDeadline(key)) hub_.Notify(key);
  }
  WorkHub& hub_;
};

// NOTIFY in the transaction; a LISTEN connection delivers other replicas' notifications.
class PostgresNotifier final : public LocalNotifier {
 public:
  PostgresNotifier(WorkHub& hub, db::Pool& pool);
  ~PostgresNotifier() override { Stop(); }
  Status InTransaction(db::Tx& tx, const std::string& key) override;
  void Start() override;
  void Stop() override;

 private:
  void Listen();
  db::Pool& pool_;
  std::string instance_;  // prefixes our payloads so the listener skips its own (already delivered)
  std::atomic<bool> stop_{false};
  std::thread listener_;
};

// Publishes on NATS after commit and delivers what NATS brings from any replica.
class NatsNotifier final : public LocalNotifier {
 public:
  NatsNotifier(WorkHub& hub, nats::Connection& nats) : LocalNotifier(hub), nats_(nats) {}
  void AfterCommit(const std::string& key) override;
  void Start() override;

 private:
  nats::Connection& nats_;
};

}  // namespace flovyn::engine
