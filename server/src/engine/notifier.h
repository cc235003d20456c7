// How work created in one transaction wakes pollers, here and on other replicas: the seam
// between the store and the transport (NATS when enabled, PostgreSQL LISTEN/NOTIFY otherwise).
// Whatever the transport, pollers also re-check on a timer, so a lost notification only delays.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "engine/work_hub.h"
#include "flovyn/db/pool.h"
#include "flovyn/db/transaction.h"

namespace flovyn::nats {
class Connection;
}

namespace flovyn::engine {

class WorkNotifier {
 public:
  virtual ~WorkNotifier() = default;
  // Inside the transaction that created the work (PostgreSQL NOTIFY is delivered on commit).
  virtual Status InTransaction(db::Tx&, const std::string& /*key*/) { return Status::Ok(); }
  // After commit.
  virtual void AfterCommit(const std::string& key) = 0;
  virtual void Start() {}
  virtual void Stop() {}
};

// Same-process pollers only.
class LocalNotifier : public WorkNotifier {
 public:
  explicit LocalNotifier(WorkHub& hub) : hub_(hub) {}
  void AfterCommit(const std::string& key) override { hub_.Notify(key); }

 protected:
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
