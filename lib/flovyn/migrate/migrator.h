// Applies embedded migrations under a PostgreSQL advisory lock so that replicas starting
// together apply each migration exactly once. Each migration runs in its own transaction and is
// recorded with its checksum; a changed checksum stops startup. Not thread-safe: one call at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "flovyn/core/status.h"
#include "flovyn/db/pool.h"
#include "flovyn/migrate/migration.h"

namespace flovyn::migrate {

std::string Checksum(const std::string& sql);  // lower-case hex SHA-256

enum class State { kApplied, kPending, kChecksumMismatch, kUnknownToBinary };

struct MigrationStatus {
  std::string component;
  int version = 0;
  std::string name;
  State state = State::kPending;
  std::string applied_at;
};

struct RunReport {
  int applied = 0;  // applied by this run
  int already_applied = 0;
  std::vector<MigrationStatus> unknown;  // in the database, not in this binary (db is newer)
  std::chrono::milliseconds duration{0};
};

class Migrator {
 public:
  // `migrations`: core first, then each enabled plugin, in the order they must run.
  Migrator(db::Pool& pool, std::vector<Migration> migrations, int64_t lock_key,
           std::string history_table = "flovyn_schema_migrations");

  StatusOr<RunReport> Run();
  StatusOr<std::vector<MigrationStatus>> Inspect();
  // Human-readable table for `migrate --status`.
  static std::string Format(const std::vector<MigrationStatus>& s);

 private:
  db::Pool& pool_;
  std::vector<Migration> migrations_;
  int64_t lock_key_;
  std::string table_;
};

}  // namespace flovyn::migrate
