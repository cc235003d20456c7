// The schedules plugin's tables: schedules and the runs of their fire times. Every statement is
// scoped by tenant except the runner's claim of due schedules, which spans tenants.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cron.h"
#include "flovyn/db/pool.h"
#include "flovyn/db/transaction.h"

namespace flovyn::plugins {

enum class Overlap { kSkip, kBufferOne, kAllowAll, kCancelPrevious };
const char* OverlapName(Overlap o);
std::optional<Overlap> OverlapFrom(const std::string& name);

// What a user sets.
struct ScheduleSpec {
  std::string name;
  std::optional<std::string> cron;
  std::string timezone = "UTC";
  int64_t interval_ms = 0;
  std::optional<Instant> start_at, end_at;
  std::string kind, queue = "default", input_json = "null";
  Overlap overlap = Overlap::kSkip;
  int64_t catchup_window_ms = 60000;
  int catchup_max = 1;
  bool paused = false;

  // The rule the fields describe (the zone loaded, the cron parsed).
  StatusOr<FireRule> Rule(Instant created) const;
};

struct Schedule {
  std::string id, tenant_id;
  ScheduleSpec spec;
  std::optional<Instant> next_fire_at, buffered_fire_at;
  std::optional<std::string> last_execution_id;
  int64_t fires = 0, skips = 0;
  Instant created_at{};
  std::string updated_at;
};

struct ScheduleRun {
  Instant fire_at{};
  std::string trigger, outcome;
  std::optional<std::string> execution_id;
  int64_t lateness_ms = 0;
  std::string recorded_at;
};

// A change the runner makes to a claimed schedule.
struct Advance {
  std::optional<Instant> next_fire_at, buffered_fire_at;
  std::optional<std::string> last_execution_id;
  int64_t fires = 0, skips = 0;
};

class ScheduleStore {
 public:
  explicit ScheduleStore(db::Pool& pool) : pool_(pool) {}

  // ALREADY_EXISTS when the tenant has a schedule of that name.
  StatusOr<Schedule> Create(const std::string& tenant, const ScheduleSpec& spec, std::optional<Instant> next);
  StatusOr<int64_t> Count(const std::string& tenant);
  StatusOr<std::vector<Schedule>> List(const std::string& tenant, int limit);
  StatusOr<std::optional<Schedule>> Get(const std::string& tenant, const std::string& id);
  StatusOr<bool> Delete(const std::string& tenant, const std::string& id);
  // Pausing keeps the next fire time; resuming sets it from now (missed times are not run).
  StatusOr<bool> SetPaused(const std::string& tenant, const std::string& id, bool paused, std::optional<Instant> next);
  StatusOr<std::vector<ScheduleRun>> Runs(const std::string& schedule_id, int limit);

  // The runner's side, inside its transaction.
  static StatusOr<std::vector<Schedule>> ClaimDue(db::Tx& tx, int limit);
  static StatusOr<Schedule> Lock(db::Tx& tx, const std::string& tenant, const std::string& id);
  static Status Apply(db::Tx& tx, const std::string& id, const Advance& a);
  static Status RecordRun(db::Tx& tx, const std::string& schedule_id, const ScheduleRun& run);
  // Whether the execution is still going (not COMPLETED, FAILED or CANCELLED).
  static StatusOr<bool> Running(db::Tx& tx, const std::string& execution_id);
  // The earliest next fire time of any unpaused schedule, to sleep until.
  StatusOr<std::optional<Instant>> EarliestDue();

 private:
  db::Pool& pool_;
};

}  // namespace flovyn::plugins
