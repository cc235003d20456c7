#include "schedule_store.h"

#include "flovyn/db/row.h"

namespace flovyn::plugins {

namespace sql {
constexpr const char* kColumns = R"sql(
  id, tenant_id, name, cron, timezone, interval_ms,
  (extract(epoch FROM start_at) * 1000)::bigint AS start_ms,
  (extract(epoch FROM end_at) * 1000)::bigint AS end_ms,
  workflow_kind, workflow_queue, workflow_input, overlap, catchup_window_ms, catchup_max, paused,
  (extract(epoch FROM next_fire_at) * 1000)::bigint AS next_ms,
  (extract(epoch FROM buffered_fire_at) * 1000)::bigint AS buffered_ms,
  last_execution_id, fires, skips,
  (extract(epoch FROM created_at) * 1000)::bigint AS created_ms, updated_at::text AS updated_at)sql";

constexpr const char* kCreate = R"sql(
  INSERT INTO schedules (tenant_id, name, cron, timezone, interval_ms, start_at, end_at, workflow_kind,
                         workflow_queue, workflow_input, overlap, catchup_window_ms, catchup_max, paused,
                         next_fire_at)
  VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint / 1000.0), to_timestamp($7::bigint / 1000.0), $8, $9, $10,
          $11, $12, $13, $14, to_timestamp($15::bigint / 1000.0))
  ON CONFLICT (tenant_id, name) DO NOTHING
  RETURNING )sql";

constexpr const char* kList = " FROM schedules WHERE tenant_id = $1 ORDER BY name LIMIT $2";
constexpr const char* kGet = " FROM schedules WHERE tenant_id = $1 AND id = $2";
constexpr const char* kDelete = "DELETE FROM schedules WHERE tenant_id = $1 AND id = $2";
constexpr const char* kCount = "SELECT count(*) AS n FROM schedules WHERE tenant_id = $1";

constexpr const char* kPause = R"sql(
  UPDATE schedules SET paused = $3, updated_at = now(),
         next_fire_at = CASE WHEN $3 THEN next_fire_at ELSE to_timestamp($4::bigint / 1000.0) END
  WHERE tenant_id = $1 AND id = $2)sql";

constexpr const char* kRuns = R"sql(
  SELECT (extract(epoch FROM fire_at) * 1000)::bigint AS fire_ms, trigger, outcome, execution_id, lateness_ms,
         recorded_at::text AS recorded_at
  FROM schedule_runs WHERE schedule_id = $1 ORDER BY recorded_at DESC, fire_at DESC LIMIT $2)sql";

constexpr const char* kClaimDue = R"sql(
  FROM schedules
  WHERE NOT paused AND (next_fire_at <= now() OR buffered_fire_at IS NOT NULL)
  ORDER BY next_fire_at NULLS LAST
  LIMIT $1
  FOR UPDATE SKIP LOCKED)sql";

constexpr const char* kLock = " FROM schedules WHERE tenant_id = $1 AND id = $2 FOR UPDATE";

constexpr const char* kApply = R"sql(
  UPDATE schedules SET next_fire_at = to_timestamp($2::bigint / 1000.0),
         buffered_fire_at = to_timestamp($3::bigint / 1000.0),
         last_execution_id = coalesce($4::uuid, last_execution_id),
         fires = fires + $5, skips = skips + $6, updated_at = now()
  WHERE id = $1)sql";

constexpr const char* kRecordRun = R"sql(
  INSERT INTO schedule_runs (schedule_id, fire_at, trigger, outcome, execution_id, lateness_ms)
  VALUES ($1, to_timestamp($2::bigint / 1000.0), $3, $4, $5, $6)
  ON CONFLICT (schedule_id, fire_at, trigger) DO NOTHING)sql";

constexpr const char* kRunning = R"sql(
  SELECT status NOT IN ('COMPLETED','FAILED','CANCELLED') AS running FROM workflow_executions WHERE id = $1)sql";

constexpr const char* kEarliest = R"sql(
  SELECT (extract(epoch FROM min(next_fire_at)) * 1000)::bigint AS next_ms FROM schedules WHERE NOT paused)sql";
}  // namespace sql

namespace {

constexpr std::pair<Overlap, const char*> kOverlaps[] = {{Overlap::kSkip, "skip"},
                                                         {Overlap::kBufferOne, "buffer_one"},
                                                         {Overlap::kAllowAll, "allow_all"},
                                                         {Overlap::kCancelPrevious, "cancel_previous"}};

std::optional<std::string> Ms(const std::optional<Instant>& t) {
  if (!t) return std::nullopt;
  return std::to_string(t->time_since_epoch().count());
}

std::optional<Instant> OptInstant(const db::Row& r, const char* column) {
  auto v = r.OptInt(column);
  if (!v) return std::nullopt;
  return Instant(std::chrono::milliseconds(*v));
}

Schedule ScheduleOf(const db::Row& r) {
  Schedule s;
  s.id = r.Str("id");
  s.tenant_id = r.Str("tenant_id");
  s.spec.name = r.Str("name");
  s.spec.cron = r.Opt("cron");
  s.spec.timezone = r.Str("timezone");
  s.spec.interval_ms = r.Int("interval_ms");
  s.spec.start_at = OptInstant(r, "start_ms");
  s.spec.end_at = OptInstant(r, "end_ms");
  s.spec.kind = r.Str("workflow_kind");
  s.spec.queue = r.Str("workflow_queue");
  s.spec.input_json = r.Str("workflow_input");
  s.spec.overlap = OverlapFrom(r.Str("overlap")).value_or(Overlap::kSkip);
  s.spec.catchup_window_ms = r.Int("catchup_window_ms");
  s.spec.catchup_max = static_cast<int>(r.Int("catchup_max"));
  s.spec.paused = r.Bool("paused");
  s.next_fire_at = OptInstant(r, "next_ms");
  s.buffered_fire_at = OptInstant(r, "buffered_ms");
  s.last_execution_id = r.Opt("last_execution_id");
  s.fires = r.Int("fires");
  s.skips = r.Int("skips");
  s.created_at = Instant(std::chrono::milliseconds(r.Int("created_ms")));
  s.updated_at = r.Str("updated_at");
  return s;
}

std::vector<Schedule> SchedulesOf(const db::Result& r) {
  std::vector<Schedule> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(ScheduleOf(db::Row(r, i)));
  return out;
}

std::string Select(const char* rest) { return std::string("SELECT ") + sql::kColumns + rest; }

}  // namespace

const char* OverlapName(Overlap o) {
  for (const auto& [v, name] : kOverlaps) {
    if (v == o) return name;
  }
  return "skip";
}

std::optional<Overlap> OverlapFrom(const std::string& name) {
  for (const auto& [v, n] : kOverlaps) {
    if (name == n) return v;
  }
  return std::nullopt;
}

StatusOr<FireRule> ScheduleSpec::Rule(Instant created) const {
  FireRule rule;
  auto zone = LoadZone(timezone);
  if (!zone.ok()) return zone.status();
  rule.zone = *zone;
  if (cron) {
    auto c = CronExpression::Parse(*cron);
    if (!c.ok()) return c.status();
    rule.cron = *c;
  } else {
    rule.interval = std::chrono::milliseconds(interval_ms);
    rule.anchor = start_at.value_or(created);
  }
  return rule;
}

StatusOr<Schedule> ScheduleStore::Create(const std::string& tenant, const ScheduleSpec& s,
                                         std::optional<Instant> next) {
  auto r = pool_.Query(std::string(sql::kCreate) + sql::kColumns,
                       {tenant, s.name, s.cron, s.timezone, std::to_string(s.interval_ms), Ms(s.start_at), Ms(s.end_at),
                        s.kind, s.queue, s.input_json, OverlapName(s.overlap), std::to_string(s.catchup_window_ms),
                        std::to_string(s.catchup_max), s.paused ? "t" : "f", Ms(next)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status(StatusCode::kAlreadyExists, "a schedule named '" + s.name + "' exists");
  return ScheduleOf(db::Row(*r, 0));
}

StatusOr<int64_t> ScheduleStore::Count(const std::string& tenant) {
  auto r = pool_.Query(sql::kCount, {tenant});
  if (!r.ok()) return r.status();
  return db::Row(*r, 0).Int("n");
}

StatusOr<std::vector<Schedule>> ScheduleStore::List(const std::string& tenant, int limit) {
  auto r = pool_.Query(Select(sql::kList), {tenant, std::to_string(limit)});
  if (!r.ok()) return r.status();
  return SchedulesOf(*r);
}

StatusOr<std::optional<Schedule>> ScheduleStore::Get(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query(Select(sql::kGet), {tenant, id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<Schedule>();
  return std::optional<Schedule>(ScheduleOf(db::Row(*r, 0)));
}

StatusOr<bool> ScheduleStore::Delete(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query(sql::kDelete, {tenant, id});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

StatusOr<bool> ScheduleStore::SetPaused(const std::string& tenant, const std::string& id, bool paused,
                                        std::optional<Instant> next) {
  auto r = pool_.Query(sql::kPause, {tenant, id, paused ? "t" : "f", Ms(next)});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

StatusOr<std::vector<ScheduleRun>> ScheduleStore::Runs(const std::string& schedule_id, int limit) {
  auto r = pool_.Query(sql::kRuns, {schedule_id, std::to_string(limit)});
  if (!r.ok()) return r.status();
  std::vector<ScheduleRun> out;
  for (int i = 0; i < r->rows(); ++i) {
    db::Row row(*r, i);
    out.push_back({Instant(std::chrono::milliseconds(row.Int("fire_ms"))), row.Str("trigger"), row.Str("outcome"),
                   row.Opt("execution_id"), row.Int("lateness_ms"), row.Str("recorded_at")});
  }
  return out;
}

StatusOr<std::vector<Schedule>> ScheduleStore::ClaimDue(db::Tx& tx, int limit) {
  auto r = tx.Exec(Select(sql::kClaimDue), {std::to_string(limit)});
  if (!r.ok()) return r.status();
  return SchedulesOf(*r);
}

StatusOr<Schedule> ScheduleStore::Lock(db::Tx& tx, const std::string& tenant, const std::string& id) {
  auto r = tx.Exec(Select(sql::kLock), {tenant, id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("schedule not found");
  return ScheduleOf(db::Row(*r, 0));
}

Status ScheduleStore::Apply(db::Tx& tx, const std::string& id, const Advance& a) {
  auto r = tx.Exec(sql::kApply, {id, Ms(a.next_fire_at), Ms(a.buffered_fire_at), a.last_execution_id,
                                 std::to_string(a.fires), std::to_string(a.skips)});
  return r.ok() ? Status::Ok() : r.status();
}

Status ScheduleStore::RecordRun(db::Tx& tx, const std::string& schedule_id, const ScheduleRun& run) {
  auto r = tx.Exec(sql::kRecordRun, {schedule_id, Ms(run.fire_at), run.trigger, run.outcome, run.execution_id,
                                     std::to_string(run.lateness_ms)});
  return r.ok() ? Status::Ok() : r.status();
}

StatusOr<bool> ScheduleStore::Running(db::Tx& tx, const std::string& execution_id) {
  auto r = tx.Exec(sql::kRunning, {execution_id});
  if (!r.ok()) return r.status();
  return r->rows() > 0 && db::Row(*r, 0).Bool("running");
}

StatusOr<std::optional<Instant>> ScheduleStore::EarliestDue() {
  auto r = pool_.Query(sql::kEarliest);
  if (!r.ok()) return r.status();
  return OptInstant(db::Row(*r, 0), "next_ms");
}

}  // namespace flovyn::plugins
