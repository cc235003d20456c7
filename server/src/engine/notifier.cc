#include "engine/notifier.h"

#include <charconv>

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "flovyn/nats/connection.h"

namespace flovyn::engine {
namespace {
constexpr const char* kChannel = "flovyn_work";
constexpr const char* kSubject = "flovyn.work";
// Work keys start with a tenant id (a UUID), so these prefixes are never one of them. A deadline
// goes in microseconds; a replica of an earlier version sends milliseconds under the older one.
constexpr std::string_view kDeadlinePrefix = "@due/";
constexpr std::string_view kDeadlineMsPrefix = "@deadline/";
}  // namespace

std::string DeadlineKey(int64_t unix_us) { return std::string(kDeadlinePrefix) + std::to_string(unix_us); }

std::optional<int64_t> ParseDeadlineKey(const std::string& key) {
  int64_t scale = 1;
  size_t skip = kDeadlinePrefix.size();
  if (key.compare(0, kDeadlinePrefix.size(), kDeadlinePrefix) != 0) {
    if (key.compare(0, kDeadlineMsPrefix.size(), kDeadlineMsPrefix) != 0) return std::nullopt;
    scale = 1000;
    skip = kDeadlineMsPrefix.size();
  }
  int64_t at = 0;
  const char* first = key.data() + skip;
  const char* last = key.data() + key.size();
  auto [end, ec] = std::from_chars(first, last, at);
  if (ec != std::errc() || end != last || first == last) return std::nullopt;
  return at * scale;
}

PostgresNotifier::PostgresNotifier(WorkHub& hub, db::Pool& pool) : LocalNotifier(hub), pool_(pool) {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : b) {
    instance_ += hex[c >> 4];
    instance_ += hex[c & 15];
  }
}

Status PostgresNotifier::InTransaction(db::Tx& tx, const std::string& key) {
  return tx.Defer("SELECT pg_notify($1, $2)", {std::string(kChannel), instance_ + "/" + key});  // goes with COMMIT
}

void PostgresNotifier::Start() {
  listener_ = std::thread([this] { Listen(); });
}

void PostgresNotifier::Stop() {
  stop_ = true;
  if (listener_.joinable()) listener_.join();
}

void PostgresNotifier::Listen() {
  while (!stop_) {
    auto conn = pool_.Connect(db::Clock::now() + pool_.options().connect_timeout);
    if (!conn.ok()) {
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    auto& c = **conn;
    if (!c.ExecSimple(std::string("LISTEN ") + kChannel, db::Clock::now() + std::chrono::seconds(5)).ok()) continue;
    // Anything missed while not listening: wake every waiter once so it re-checks.
    hub_.Notify("*");
    while (!stop_ && !c.broken()) {
      Status s = c.WaitReadable(db::Clock::now() + std::chrono::milliseconds(200));
      if (!s.ok() && s.code() != StatusCode::kDeadlineExceeded) break;
      while (PGnotify* n = PQnotifies(c.raw())) {
        std::string payload = n->extra;
        PQfreemem(n);
        auto slash = payload.find('/');
        if (slash == std::string::npos || payload.compare(0, slash, instance_) == 0) continue;  // ours
        Deliver(payload.substr(slash + 1));
      }
    }
  }
}

void NatsNotifier::AfterCommit(const std::string& key) {
  Deliver(key);
  // Best effort: other replicas still find the work on their next sweep.
  (void)nats_.Publish(kSubject, key);
}

void NatsNotifier::Start() {
  Status s = nats_.Subscribe(kSubject, [this](const std::string&, const std::string& key) { Deliver(key); });
  if (!s.ok()) spdlog::warn("cannot subscribe to NATS work notifications: {}", s.message());
}

}  // namespace flovyn::engine
