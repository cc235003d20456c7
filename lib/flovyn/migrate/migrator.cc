#include "flovyn/migrate/migrator.h"

#include <map>
#include <sstream>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

namespace flovyn::migrate {
namespace {

using db::Clock;
constexpr auto kLockWait = std::chrono::minutes(10);
constexpr auto kMigrationTimeout = std::chrono::minutes(30);

struct Applied {
  std::string name, checksum, applied_at;
};

std::string Key(const std::string& component, int version) { return component + "/" + std::to_string(version); }

}  // namespace

std::string Checksum(const std::string& sql) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(sql.data(), sql.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

Migrator::Migrator(db::Pool& pool, std::vector<Migration> migrations, int64_t lock_key, std::string history_table)
    : pool_(pool), migrations_(std::move(migrations)), lock_key_(lock_key), table_(std::move(history_table)) {}

StatusOr<RunReport> Migrator::Run() {
  auto start = Clock::now();
  auto conn_or = pool_.Connect(Clock::now() + pool_.options().connect_timeout);
  if (!conn_or.ok()) return conn_or.status();
  auto& conn = *conn_or.value();

  // Session-level lock: released when this connection closes, whatever happens.
  Status s = conn.Exec("SELECT pg_advisory_lock($1)", {std::to_string(lock_key_)}, Clock::now() + kLockWait).status();
  if (!s.ok()) return Status(s.code(), "cannot take the migration lock: " + s.message());

  s = conn.ExecSimple("CREATE TABLE IF NOT EXISTS " + table_ +
                          " (component text NOT NULL, version integer NOT NULL, name text NOT NULL,"
                          " checksum text NOT NULL, duration_ms double precision NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now(),"
                          " PRIMARY KEY (component, version))",
                      Clock::now() + kMigrationTimeout);
  if (!s.ok()) return Status(s.code(), "cannot create migration history: " + s.message());

  auto rows = conn.Exec("SELECT component, version, name, checksum, applied_at::text FROM " + table_, {},
                        Clock::now() + kMigrationTimeout);
  if (!rows.ok()) return rows.status();
  std::map<std::string, Applied> applied;
  for (int i = 0; i < rows->rows(); ++i) {
    applied[Key(std::string(rows->Get(i, 0)), static_cast<int>(rows->GetInt(i, 1)))] =
        Applied{std::string(rows->Get(i, 2)), std::string(rows->Get(i, 3)), std::string(rows->Get(i, 4))};
  }

  RunReport report;
  for (const auto& m : migrations_) {
    std::string key = Key(m.component, m.version);
    std::string sum = Checksum(m.sql);
    auto it = applied.find(key);
    if (it != applied.end()) {
      if (it->second.checksum != sum) {
        return FailedPrecondition("migration " + m.component + " " + std::to_string(m.version) + "_" + m.name +
                                  " was changed after it was applied (checksum " + it->second.checksum.substr(0, 12) +
                                  " in the database, " + sum.substr(0, 12) +
                                  " in this binary); restore the original migration and add a new one instead");
      }
      ++report.already_applied;
      applied.erase(it);
      continue;
    }
    auto t0 = Clock::now();
    auto deadline = t0 + kMigrationTimeout;
    s = conn.ExecSimple("BEGIN", deadline);
    if (s.ok()) s = conn.ExecSimple(m.sql, deadline);
    if (s.ok()) {
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      s = conn.Exec("INSERT INTO " + table_ +
                        " (component, version, name, checksum, duration_ms) VALUES ($1,$2,$3,$4,$5)",
                    {m.component, std::to_string(m.version), m.name, sum, std::to_string(ms)}, deadline)
              .status();
    }
    if (s.ok()) s = conn.ExecSimple("COMMIT", deadline);
    if (!s.ok()) {
      (void)conn.ExecSimple("ROLLBACK", Clock::now() + std::chrono::seconds(5));
      return Status(s.code(), "migration " + m.component + " " + std::to_string(m.version) + "_" + m.name +
                                  " failed and was rolled back: " + s.message());
    }
    spdlog::info("applied migration {} {}_{} in {:.1f} ms", m.component, m.version, m.name,
                 std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ++report.applied;
  }
  for (const auto& [key, a] : applied) {
    auto slash = key.find('/');
    report.unknown.push_back(
        {key.substr(0, slash), std::stoi(key.substr(slash + 1)), a.name, State::kUnknownToBinary, a.applied_at});
  }
  (void)conn.Exec("SELECT pg_advisory_unlock($1)", {std::to_string(lock_key_)}, Clock::now() + std::chrono::seconds(5));
  report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return report;
}

StatusOr<std::vector<MigrationStatus>> Migrator::Inspect() {
  std::map<std::string, Applied> applied;
  auto exists = pool_.Query("SELECT to_regclass($1) IS NOT NULL", {table_});
  if (!exists.ok()) return exists.status();
  if (exists->Get(0, 0) == "t") {
    auto rows = pool_.Query("SELECT component, version, name, checksum, applied_at::text FROM " + table_);
    if (!rows.ok()) return rows.status();
    for (int i = 0; i < rows->rows(); ++i) {
      applied[Key(std::string(rows->Get(i, 0)), static_cast<int>(rows->GetInt(i, 1)))] =
          Applied{std::string(rows->Get(i, 2)), std::string(rows->Get(i, 3)), std::string(rows->Get(i, 4))};
    }
  }
  std::vector<MigrationStatus> out;
  for (const auto& m : migrations_) {
    MigrationStatus st{m.component, m.version, m.name, State::kPending, ""};
    auto it = applied.find(Key(m.component, m.version));
    if (it != applied.end()) {
      st.state = it->second.checksum == Checksum(m.sql) ? State::kApplied : State::kChecksumMismatch;
      st.applied_at = it->second.applied_at;
      applied.erase(it);
    }
    out.push_back(st);
  }
  for (const auto& [key, a] : applied) {
    auto slash = key.find('/');
    out.push_back(
        {key.substr(0, slash), std::stoi(key.substr(slash + 1)), a.name, State::kUnknownToBinary, a.applied_at});
  }
  return out;
}

std::string Migrator::Format(const std::vector<MigrationStatus>& list) {
  std::ostringstream o;
  o << "component  version  state              name\n";
  for (const auto& m : list) {
    const char* st = "pending";
    switch (m.state) {
      case State::kApplied:
        st = "applied";
        break;
      case State::kPending:
        st = "pending";
        break;
      case State::kChecksumMismatch:
        st = "CHECKSUM MISMATCH";
        break;
      case State::kUnknownToBinary:
        st = "unknown (newer)";
        break;
    }
    char line[256];
    std::snprintf(line, sizeof line, "%-10s %7d  %-18s %s%s%s\n", m.component.c_str(), m.version, st, m.name.c_str(),
                  m.applied_at.empty() ? "" : "  @ ", m.applied_at.c_str());
    o << line;
  }
  return o.str();
}

}  // namespace flovyn::migrate
