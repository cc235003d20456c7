// The engine's statements for timers (engine/sql.h includes this, after the column lists these
// use).
#pragma once

namespace flovyn::engine::sql {

// ------------------------------------------------------------------------------ timers

// No row when the execution has a timer of that name already. The deadline is $3 ms from now;
// the server fires it $4 ms later (held by the worker that fires it itself). fire_at_ms, the
// deadline in ms since the epoch, is rounded up: a worker that waits for it never wakes early.
inline constexpr const char* kInsertTimer = R"sql(
INSERT INTO timers (execution_id, name, fire_at, held_ms)
VALUES ($1, $2, now() + ($3::bigint + $4::int) * interval '1 millisecond', $4::int) ON CONFLICT DO NOTHING
RETURNING ceil(extract(epoch from fire_at - held_ms * interval '1 millisecond') * 1000)::bigint AS fire_at_ms,
          ceil(extract(epoch from fire_at - clock_timestamp()) * 1000000)::bigint AS due_in_us)sql";

inline constexpr const char* kCancelTimer = R"sql(
UPDATE timers SET status = 'CANCELLED'
WHERE execution_id = $1 AND name = $2 AND status = 'PENDING')sql";

inline constexpr const char* kTimerFired = R"sql(
SELECT 1 FROM timers WHERE execution_id = $1 AND name = $2 AND status = 'FIRED')sql";

inline constexpr const char* kCancelTimersOfExecution = R"sql(
UPDATE timers SET status = 'CANCELLED' WHERE execution_id = $1 AND status = 'PENDING')sql";

// Time skipping (tests): the execution's pending timers and promise timeouts become due now.
inline constexpr const char* kSkipTimers = R"sql(
UPDATE timers SET fire_at = now(), held_ms = 0
WHERE execution_id = $1 AND status = 'PENDING' AND fire_at > now())sql";
inline constexpr const char* kSkipPromiseTimeouts = R"sql(
UPDATE promises SET timeout_at = now()
WHERE execution_id = $1 AND status = 'PENDING' AND timeout_at IS NOT NULL AND timeout_at > now())sql";

// The next $1 pending timers, earliest first, and the next promise timeout (a row whose
// due_in_us is null when none is pending), in microseconds from now by the database's clock.
// (fire_at is never null: saying so lets the plan read timers_due.)
inline constexpr const char* kNextDeadlines = R"sql(
WITH c AS (SELECT clock_timestamp() AS now)
(SELECT 'timer' AS kind, ceil(extract(epoch from t.fire_at - c.now) * 1000000)::bigint AS due_in_us
 FROM timers t, c WHERE t.status = 'PENDING' AND t.fire_at IS NOT NULL ORDER BY t.fire_at LIMIT $1)
UNION ALL
SELECT 'promise', ceil(extract(epoch from (SELECT min(timeout_at) FROM promises
                                           WHERE status = 'PENDING' AND timeout_at IS NOT NULL) - c.now)
                       * 1000000)::bigint
FROM c)sql";

// Due by the transaction's start, so the TIMER_FIRED it records (stamped with that start) is
// never before the deadline; what falls due during the run is fired by the next one at once.
// Each due timer with its execution, both locked; a timer whose execution another transaction
// holds is skipped this run (the run never waits, so it cannot deadlock with one that locked
// the execution first).
inline constexpr const char* kDueTimers =
    "SELECT t.execution_id, t.name, extract(epoch from clock_timestamp() - t.fire_at) AS "
    "lag, " FLOVYN_LOCKED_EXECUTION_COLUMNS
    " FROM timers t JOIN workflow_executions w ON w.id = t.execution_id"
    " WHERE t.status = 'PENDING' AND t.fire_at <= now()"
    " ORDER BY t.fire_at LIMIT $1 FOR UPDATE OF t, w SKIP LOCKED";

// A timer the worker fires itself (FireTimer), locked: whether it is pending, and whether its
// deadline is at most a second ahead of the database's clock (the worker's may run ahead), with
// how late it fires.
inline constexpr const char* kLockWorkerTimer = R"sql(
SELECT status = 'PENDING' AS pending,
       fire_at - held_ms * interval '1 millisecond' <= clock_timestamp() + interval '1 second' AS due,
       greatest(0, extract(epoch from clock_timestamp() - (fire_at - held_ms * interval '1 millisecond'))) AS lag
FROM timers WHERE execution_id = $1 AND name = $2 FOR UPDATE)sql";

inline constexpr const char* kFireTimer = R"sql(
UPDATE timers SET status = 'FIRED', fired_at = now() WHERE execution_id = $1 AND name = $2)sql";

}  // namespace flovyn::engine::sql
