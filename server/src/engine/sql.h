// Every statement the engine's store runs, named and kept together (the model is River's
// river_job.sql): a reader finds the SQL of an operation here, and rows are read by the column
// names these statements give them (engine/rows.h). All are parameterised; nothing is ever
// assembled from input. Arrays cross the boundary as JSON (`array_to_json`,
// `json_array_elements_text`), so no PostgreSQL array literal is written or parsed by hand.
// Search attributes and retention have theirs in engine/sql_search.h, timers in
// engine/sql_timers.h (included here).
//
// A row found by its id checks its tenant with `tenant_id IS NOT DISTINCT FROM $n`, which no
// index matches (tenant_id is never null, so it means `=`): the primary key is then the only
// index the plan can find the row by. With `=`, the lists' (tenant_id, ...) indexes cost as much
// as the key while the statistics say the table is empty, and a generic plan made then walks
// every row of the tenant on each lookup (QueryPlanTest).
#pragma once

namespace flovyn::engine::sql {

// ------------------------------------------------------------------------------ tenants

inline constexpr const char* kInsertTenant = R"sql(
INSERT INTO tenants (slug, name, owner) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING
RETURNING id, slug, name, created_at::text AS created_at, owner)sql";

// The same owner asking again gets its tenant.
inline constexpr const char* kTenantOfOwnerBySlug = R"sql(
SELECT id, slug, name, created_at::text AS created_at, owner FROM tenants WHERE slug = $1 AND owner = $2)sql";

// An organisation that predates owners claims its legacy tenant.
inline constexpr const char* kClaimLegacyTenant = R"sql(
UPDATE tenants SET owner = $2 WHERE slug = $1 AND owner IN ('legacy', $2)
RETURNING id, slug, name, created_at::text AS created_at, owner)sql";

inline constexpr const char* kTenantBySlug = R"sql(
SELECT id, slug, name, created_at::text AS created_at, owner FROM tenants WHERE slug = $1)sql";

inline constexpr const char* kTenantById = R"sql(
SELECT id, slug, name, created_at::text AS created_at, owner FROM tenants WHERE id = $1)sql";

inline constexpr const char* kTenantByOwner = R"sql(
SELECT id, slug, name, created_at::text AS created_at, owner FROM tenants WHERE owner = $1)sql";

inline constexpr const char* kListTenants = R"sql(
SELECT id, slug, name, created_at::text AS created_at, owner FROM tenants ORDER BY slug)sql";

// ------------------------------------------------------------------------------ executions

#define FLOVYN_WORKFLOW_COLUMNS                                                             \
  "id, kind, queue, status, coalesce(input::text, 'null') AS input, "                       \
  "coalesce(output::text, 'null') AS output, error, parent_id, idempotency_key, last_seq, " \
  "created_at::text AS created_at, updated_at::text AS updated_at, "                        \
  "completed_at::text AS completed_at, coalesce(traceparent, '') AS traceparent, problem, " \
  "problem_at::text AS problem_at"

inline constexpr const char* kWorkflowById =
    "SELECT " FLOVYN_WORKFLOW_COLUMNS " FROM workflow_executions WHERE id = $1";

inline constexpr const char* kWorkflowOfTenant =
    "SELECT " FLOVYN_WORKFLOW_COLUMNS " FROM workflow_executions WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2";

// The start of every workflow listing and search: the builder in Store::ListWorkflows appends
// the filters (fixed fragments, values as parameters: engine/search.h), the cursor, the order
// (created_at DESC, id DESC) and the limit.
inline constexpr const char* kListWorkflowsSelect =
    "SELECT " FLOVYN_WORKFLOW_COLUMNS " FROM workflow_executions e WHERE e.tenant_id = $1";

#undef FLOVYN_WORKFLOW_COLUMNS

inline constexpr const char* kCountWorkflows = R"sql(
SELECT status, count(*) AS n FROM workflow_executions WHERE tenant_id = $1 GROUP BY status)sql";

// The execution row every change to an execution starts from, locked until commit.
// The buffered events a CTE `b` took, in the order they arrived (NULL when none).
#define FLOVYN_TAKEN_BUFFER                                                                        \
  "(SELECT json_agg(json_build_object('id', b.id, 'type', b.type, 'payload', b.payload, 'wakes', " \
  "b.wakes) ORDER BY b.id) FROM b)::text AS buffered"
// What Execution reads of the row it locks (`w`); now_ms is the transaction's start.
#define FLOVYN_LOCKED_EXECUTION_COLUMNS                                                                   \
  "w.id, w.tenant_id, w.kind, w.queue, w.status, w.last_seq, w.lease_owner, w.parent_id, w.parent_name, " \
  "w.cancel_requested, coalesce(w.lease_expires_at > now(), false) AS lease_valid, w.sticky_worker, "     \
  "w.sticky_seq, w.cancel_deadline IS NOT NULL AS cancel_pending, "                                       \
  "(extract(epoch from now()) * 1000)::bigint AS now_ms"

inline constexpr const char* kLockExecution = "SELECT " FLOVYN_LOCKED_EXECUTION_COLUMNS
                                              " FROM workflow_executions w"
                                              " WHERE w.id = $1 AND w.tenant_id IS NOT DISTINCT FROM $2 FOR UPDATE";

// Writes the mutable columns of a locked execution back; $5 keeps the lease of worker $7; $8,
// when set, is the worker that keeps it cached at sequence $3; $9 and $10, when set, are its
// output and error (an ended execution's, written with the rest: one row version, not two).
inline constexpr const char* kSaveExecution = R"sql(
UPDATE workflow_executions SET status = $2, last_seq = $3, cancel_requested = $4, problem = NULL, problem_at = NULL,
  output = coalesce($9::jsonb, output), error = coalesce($10::text, error),
  lease_owner = CASE WHEN $5 THEN $7 ELSE NULL END,
  sticky_worker = coalesce($8::text, sticky_worker),
  sticky_seq = CASE WHEN $8::text IS NULL THEN sticky_seq ELSE $3 END,
  lease_expires_at = CASE WHEN $5 THEN now() + $6 * interval '1 millisecond' ELSE NULL END,
  updated_at = now(),
  completed_at = CASE WHEN $2 IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN now() END
WHERE id = $1)sql";

// After an event from outside the workflow: status and sequence only (the lease is untouched).
inline constexpr const char* kSaveDelivery = R"sql(
UPDATE workflow_executions SET status = $2, last_seq = $3, updated_at = now() WHERE id = $1)sql";

// The holder could not apply its code to the history: the problem is recorded and the claim
// lapses in $3 ms, when the lease sweep hands the execution out again; the history is untouched.
inline constexpr const char* kReportProblem = R"sql(
UPDATE workflow_executions SET problem = $2, problem_at = now(), lease_owner = NULL,
  lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
WHERE id = $1)sql";

inline constexpr const char* kSaveSequence = R"sql(
UPDATE workflow_executions SET last_seq = $2 WHERE id = $1)sql";

inline constexpr const char* kMarkCancelRequested = R"sql(
UPDATE workflow_executions SET cancel_requested = true WHERE id = $1)sql";

// A graceful cancellation: the execution is cancelled outright at the deadline, $2 ms from now.
inline constexpr const char* kSetCancelDeadline = R"sql(
UPDATE workflow_executions SET cancel_deadline = now() + $2 * interval '1 millisecond' WHERE id = $1)sql";

inline constexpr const char* kOverdueCancellations = R"sql(
SELECT id, tenant_id FROM workflow_executions
WHERE cancel_deadline < now() AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') AND NOT cancel_requested
LIMIT $1 FOR UPDATE SKIP LOCKED)sql";

// A child of execution $1 by the name its parent gave it.
inline constexpr const char* kChildByName = R"sql(
SELECT id FROM workflow_executions WHERE parent_id = $1 AND parent_name = $2
ORDER BY created_at DESC LIMIT 1)sql";

// ON CONFLICT: a start with an idempotency key already used returns no row. $10, when set, is
// the worker whose waiting poller the execution goes to: it is inserted claimed for it, leased
// for $11 ms (one row version, not an insert and then a claim's update).
inline constexpr const char* kInsertExecution = R"sql(
INSERT INTO workflow_executions (id, tenant_id, kind, queue, input, idempotency_key, parent_id,
                                 parent_name, traceparent, last_seq, status, lease_owner, lease_expires_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, 1,
        CASE WHEN $10::text IS NULL THEN 'PENDING' ELSE 'RUNNING' END, $10::text,
        CASE WHEN $10::text IS NULL THEN NULL ELSE now() + $11::bigint * interval '1 millisecond' END)
ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id)sql";

inline constexpr const char* kExecutionByIdempotencyKey = R"sql(
SELECT id FROM workflow_executions WHERE tenant_id = $1 AND idempotency_key = $2)sql";

inline constexpr const char* kOpenChildren = R"sql(
SELECT id FROM workflow_executions
WHERE parent_id = $1 AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))sql";

// The oldest pending execution of the queue (and kinds, a JSON array or NULL), leased to $4,
// with its row as kLockExecution reads it and its buffered events taken: claim and lock in one.
// An execution another worker keeps cached is left to it for $6 ms after it became pending.
// history_after: the sequence this worker holds when the execution is its own sticky one.
// `more`: another execution of the queue is runnable (for this worker or another).
inline constexpr const char* kClaimWorkflow =
    "WITH c AS ("
    " SELECT id, updated_at AS pending_since, sticky_worker, sticky_seq FROM workflow_executions"
    " WHERE tenant_id = $1 AND queue = $2 AND status = 'PENDING'"
    "  AND ($3::json IS NULL OR kind IN (SELECT json_array_elements_text($3::json)))"
    "  AND (sticky_worker IS NULL OR sticky_worker = $4 OR updated_at < now() - $6 * interval '1 millisecond')"
    " ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED),"
    " w AS (UPDATE workflow_executions w SET status = 'RUNNING', lease_owner = $4, updated_at = now(),"
    "  lease_expires_at = now() + $5 * interval '1 millisecond', sticky_worker = NULL, sticky_seq = NULL"
    " FROM c WHERE w.id = c.id"
    " RETURNING w.id, w.tenant_id, w.kind, w.queue, w.status, w.last_seq, w.lease_owner, w.parent_id,"
    "  w.parent_name, w.cancel_requested, w.lease_expires_at, w.sticky_worker, w.sticky_seq, w.cancel_deadline),"
    " b AS (DELETE FROM workflow_event_buffer WHERE execution_id = (SELECT id FROM c) RETURNING *)"
    " SELECT " FLOVYN_LOCKED_EXECUTION_COLUMNS
    ", greatest(extract(epoch from clock_timestamp() - c.pending_since), 0) AS waited,"
    " CASE WHEN c.sticky_worker = $4 THEN c.sticky_seq ELSE 0 END AS history_after,"
    " EXISTS (SELECT 1 FROM workflow_executions o"
    "  WHERE o.tenant_id = $1 AND o.queue = $2 AND o.status = 'PENDING' AND o.id <> c.id) AS more,"
    " " FLOVYN_TAKEN_BUFFER " FROM w, c";

// A runnable execution claimed for the waiting poller of worker $2 as it is made runnable
// (eager dispatch), its history at $4; what that worker has cached, as kClaimWorkflow says.
// The history the worker keeps cached is known from the locked row (sticky_worker, sticky_seq),
// so nothing is returned and the claim goes out with the reads that follow it.
inline constexpr const char* kClaimHandedOver = R"sql(
UPDATE workflow_executions SET status = 'RUNNING', lease_owner = $2,
  lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now(), last_seq = $4,
  sticky_worker = NULL, sticky_seq = NULL
WHERE id = $1)sql";

// ------------------------------------------------------------------------------ history

inline constexpr const char* kInsertEvent = R"sql(
INSERT INTO workflow_events (execution_id, seq, type, payload) VALUES ($1, $2, $3, $4::jsonb)
RETURNING (extract(epoch from created_at) * 1000)::bigint AS created_at_ms)sql";

// Events stamped ms since the epoch (the time the worker's code saw for each), as arrays, one
// element per event (Unit::DeferRow): the events a unit appends one after another are one
// statement.
inline constexpr const char* kInsertEventsAt = R"sql(
INSERT INTO workflow_events (execution_id, seq, type, payload, created_at)
SELECT e, s, t, p::jsonb, timestamptz 'epoch' + ms * interval '1 millisecond'
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS x(e, s, t, p, ms))sql";

inline constexpr const char* kEventsOfExecution = R"sql(
SELECT seq, type, payload::text AS payload,
       (extract(epoch from created_at) * 1000)::bigint AS created_at_ms
FROM workflow_events WHERE execution_id = $1 ORDER BY seq)sql";

inline constexpr const char* kEventsOfExecutionAfter = R"sql(
SELECT seq, type, payload::text AS payload,
       (extract(epoch from created_at) * 1000)::bigint AS created_at_ms
FROM workflow_events WHERE execution_id = $1 AND seq > $2 ORDER BY seq)sql";

inline constexpr const char* kEventsOfTenantAfter = R"sql(
SELECT e.seq, e.type, e.payload::text AS payload,
       (extract(epoch from e.created_at) * 1000)::bigint AS created_at_ms
FROM workflow_events e JOIN workflow_executions w ON w.id = e.execution_id
WHERE w.id = $1 AND w.tenant_id IS NOT DISTINCT FROM $2 AND e.seq > $3 ORDER BY e.seq)sql";

// Events that arrived while a worker held the execution.
inline constexpr const char* kBufferEvent = R"sql(
INSERT INTO workflow_event_buffer (execution_id, type, payload, wakes)
VALUES ($1, $2, $3::jsonb, $4))sql";

inline constexpr const char* kTakeBufferedEvents =
    "WITH b AS (DELETE FROM workflow_event_buffer WHERE execution_id = $1 RETURNING *) SELECT " FLOVYN_TAKEN_BUFFER;

inline constexpr const char* kDropBufferedEvents = R"sql(
DELETE FROM workflow_event_buffer WHERE execution_id = $1)sql";

// ------------------------------------------------------------------------------ state

inline constexpr const char* kStateOfExecution = R"sql(
SELECT key, value::text AS value FROM workflow_state WHERE execution_id = $1 ORDER BY key)sql";

inline constexpr const char* kPutState = R"sql(
INSERT INTO workflow_state (execution_id, key, value) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (execution_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now())sql";

inline constexpr const char* kDeleteState = R"sql(
DELETE FROM workflow_state WHERE execution_id = $1 AND key = $2)sql";

// ------------------------------------------------------------------------------ promises

// Nothing inserted when the execution has a promise of that name already.
inline constexpr const char* kInsertPromise = R"sql(
INSERT INTO promises (id, tenant_id, execution_id, name, timeout_at)
VALUES ($1, $2, $3, $4,
        CASE WHEN $5::bigint > 0 THEN now() + $5::bigint * interval '1 millisecond' END)
ON CONFLICT DO NOTHING
RETURNING ceil(extract(epoch from timeout_at - clock_timestamp()) * 1000000)::bigint AS due_in_us)sql";

inline constexpr const char* kLockPromise = R"sql(
SELECT execution_id, name, status FROM promises WHERE id = $1 AND tenant_id = $2 FOR UPDATE)sql";

inline constexpr const char* kResolvePromise = R"sql(
UPDATE promises SET status = 'RESOLVED', value = $2::jsonb, settled_at = now() WHERE id = $1)sql";

// $3: REJECTED or TIMED_OUT.
inline constexpr const char* kSettlePromiseWithError = R"sql(
UPDATE promises SET status = $3, error = $2, settled_at = now() WHERE id = $1)sql";

inline constexpr const char* kOverduePromises = R"sql(
SELECT id, tenant_id FROM promises WHERE status = 'PENDING' AND timeout_at <= now()
ORDER BY timeout_at LIMIT $1 FOR UPDATE SKIP LOCKED)sql";

// ------------------------------------------------------------------------------ tasks

#define FLOVYN_TASK_COLUMNS                                                                   \
  "id, kind, queue, status, coalesce(input::text, 'null') AS input, "                         \
  "coalesce(output::text, 'null') AS output, coalesce(progress::text, 'null') AS progress, "  \
  "error, workflow_id, workflow_seq, attempt, max_attempts, created_at::text AS created_at, " \
  "updated_at::text AS updated_at, completed_at::text AS completed_at, "                      \
  "lease_expires_at::text AS lease_expires_at, coalesce(traceparent, '') AS traceparent"

inline constexpr const char* kTaskById = "SELECT " FLOVYN_TASK_COLUMNS " FROM task_executions WHERE id = $1";

inline constexpr const char* kTaskOfTenant =
    "SELECT " FLOVYN_TASK_COLUMNS " FROM task_executions WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2";

inline constexpr const char* kListTasks =
    "SELECT " FLOVYN_TASK_COLUMNS
    " FROM task_executions "
    "WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR kind = $3) "
    "AND ($4::timestamptz IS NULL OR (created_at, id) < ($4::timestamptz, $5::uuid)) "
    "ORDER BY created_at DESC, id DESC LIMIT $6";

// A task inserted already claimed by worker $13 (eager dispatch); its lease lasts $11 ms, at most
// a year (limits::kMaxDurationMs).
inline constexpr const char* kInsertTaskClaimed = R"sql(
INSERT INTO task_executions (id, tenant_id, workflow_id, workflow_seq, kind, queue, input, max_attempts,
  initial_backoff_ms, max_backoff_ms, lease_ms, traceparent, status, attempt, lease_owner, lease_expires_at,
  heartbeat_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, 'RUNNING', 1, $13,
  now() + least($11::bigint, 31536000000) * interval '1 millisecond', now()))sql";

#undef FLOVYN_TASK_COLUMNS

// A task scheduled by a workflow ($3, $4: the execution and the sequence of TASK_SCHEDULED) or
// submitted on its own ($3, $4 NULL).
inline constexpr const char* kInsertTask = R"sql(
INSERT INTO task_executions (id, tenant_id, workflow_id, workflow_seq, kind, queue, input,
                             max_attempts, initial_backoff_ms, max_backoff_ms, lease_ms, traceparent)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12))sql";

// A standalone task with a caller-chosen id: a repeat of the same id inserts nothing.
inline constexpr const char* kInsertTaskOnce = R"sql(
INSERT INTO task_executions (id, tenant_id, workflow_id, workflow_seq, kind, queue, input,
                             max_attempts, initial_backoff_ms, max_backoff_ms, lease_ms, traceparent)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12)
ON CONFLICT (id) DO NOTHING)sql";
inline constexpr const char* kTaskTenant = "SELECT tenant_id FROM task_executions WHERE id = $1";

// The task that has waited longest on the queue (and kinds, a JSON array or NULL), leased to $4.
inline constexpr const char* kClaimTask = R"sql(
WITH c AS (
  SELECT id, next_attempt_at AS available_since FROM task_executions
  WHERE tenant_id = $1 AND queue = $2 AND status = 'PENDING' AND next_attempt_at <= now()
    AND ($3::json IS NULL OR kind IN (SELECT json_array_elements_text($3::json)))
  ORDER BY next_attempt_at LIMIT $5::int + 1 FOR UPDATE SKIP LOCKED),
p AS (SELECT id, available_since FROM c ORDER BY available_since LIMIT $5::int)
UPDATE task_executions t SET status = 'RUNNING', attempt = t.attempt + 1, lease_owner = $4,
  lease_expires_at = now() + least(t.lease_ms, 31536000000) * interval '1 millisecond',
  heartbeat_at = now(), updated_at = now()
FROM p WHERE t.id = p.id
RETURNING t.id, (extract(epoch from t.lease_expires_at) * 1000)::bigint AS lease_expires_at_ms,
          greatest(extract(epoch from clock_timestamp() - p.available_since), 0) AS waited,
          extract(epoch from p.available_since) AS available_since,
          (SELECT count(*) FROM c) > $5::int AS more)sql";

// A claim nobody received (its poll was cancelled): back to the queue as if never claimed.
inline constexpr const char* kReleaseTask = R"sql(
UPDATE task_executions SET status = 'PENDING', attempt = attempt - 1, lease_owner = NULL,
  lease_expires_at = NULL, heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND status = 'RUNNING' AND lease_owner = $3 AND attempt = $4
RETURNING queue)sql";

inline constexpr const char* kLockTask = R"sql(
SELECT status, attempt, lease_owner, workflow_id, coalesce(workflow_seq, 0) AS workflow_seq,
       max_attempts, initial_backoff_ms, max_backoff_ms
FROM task_executions WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 FOR UPDATE)sql";

// A result of the worker that holds the task ($4) at attempt $3; no row when it does not.
inline constexpr const char* kCompleteHeldTask = R"sql(
UPDATE task_executions SET status = 'COMPLETED', output = $5::jsonb, error = NULL,
  lease_owner = NULL, lease_expires_at = NULL, completed_count = completed_count + 1,
  updated_at = now(), completed_at = now()
WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND status = 'RUNNING' AND attempt = $3 AND lease_owner = $4
RETURNING workflow_id, coalesce(workflow_seq, 0) AS workflow_seq)sql";

// kCompleteHeldTask, and when the task is of execution $6 (the worker's continuation), that
// execution locked in the same statement (task row first, then the execution's, as apart).
inline constexpr const char* kCompleteHeldTaskLockingExecution =
    "WITH t AS (UPDATE task_executions SET status = 'COMPLETED', output = $5::jsonb, error = NULL,"
    " lease_owner = NULL, lease_expires_at = NULL, completed_count = completed_count + 1,"
    " updated_at = now(), completed_at = now()"
    " WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND status = 'RUNNING' AND attempt = $3 AND lease_owner = $4"
    " RETURNING workflow_id, coalesce(workflow_seq, 0) AS workflow_seq)"
    " SELECT t.workflow_id AS task_workflow_id, t.workflow_seq, w.* FROM t LEFT JOIN LATERAL"
    " (SELECT " FLOVYN_LOCKED_EXECUTION_COLUMNS
    " FROM workflow_executions w"
    " WHERE w.id = t.workflow_id AND w.id = $6::uuid AND w.tenant_id IS NOT DISTINCT FROM $2 FOR UPDATE) w ON true";

inline constexpr const char* kRetryTask = R"sql(
UPDATE task_executions SET status = 'PENDING', error = $2, lease_owner = NULL,
  lease_expires_at = NULL, next_attempt_at = now() + $3 * interval '1 millisecond',
  updated_at = now()
WHERE id = $1
RETURNING (extract(epoch from next_attempt_at) * 1000)::bigint AS next_attempt_at_ms)sql";

inline constexpr const char* kFailTask = R"sql(
UPDATE task_executions SET status = 'FAILED', error = $2, lease_owner = NULL,
  lease_expires_at = NULL, updated_at = now(), completed_at = now()
WHERE id = $1)sql";

inline constexpr const char* kHeartbeatTask = R"sql(
UPDATE task_executions SET heartbeat_at = now(),
  lease_expires_at = now() + least(lease_ms, 31536000000) * interval '1 millisecond',
  progress = coalesce($2::jsonb, progress), updated_at = now()
WHERE id = $1
RETURNING (extract(epoch from lease_expires_at) * 1000)::bigint AS lease_expires_at_ms)sql";

// The task execution $1 scheduled at sequence $2.
inline constexpr const char* kTaskOfExecutionSeq = R"sql(
SELECT id, status FROM task_executions WHERE workflow_id = $1 AND workflow_seq = $2 FOR UPDATE)sql";

inline constexpr const char* kCancelTask = R"sql(
UPDATE task_executions SET status = 'CANCELLED', cancel_requested = true, error = $2,
  lease_expires_at = NULL, updated_at = now(), completed_at = now()
WHERE id = $1)sql";

// The task was cancelled while worker $3 held attempt $4: its heartbeat says so.
inline constexpr const char* kTaskCancelledWhileHeld = R"sql(
SELECT 1 FROM task_executions
WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND status = 'CANCELLED' AND lease_owner = $3 AND attempt = $4)sql";

inline constexpr const char* kCancelTasksOfExecution = R"sql(
UPDATE task_executions SET status = 'CANCELLED', cancel_requested = true, updated_at = now(),
  completed_at = now()
WHERE workflow_id = $1 AND status IN ('PENDING', 'RUNNING'))sql";

inline constexpr const char* kExpiredTaskLeases = R"sql(
SELECT id, tenant_id, queue, attempt, lease_owner FROM task_executions
WHERE status = 'RUNNING' AND lease_expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)sql";

inline constexpr const char* kExpiredWorkflowLeases = R"sql(
SELECT id, tenant_id FROM workflow_executions
WHERE status = 'RUNNING' AND lease_expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)sql";

// Pending work by kind and queue: the deepest $1 queues of each kind by name, the rest as 'other'.
inline constexpr const char* kQueueDepth = R"sql(
WITH d AS (
  SELECT 'task' AS kind, queue, count(*) AS n FROM task_executions
  WHERE status = 'PENDING' AND next_attempt_at <= now() GROUP BY queue
  UNION ALL
  SELECT 'workflow', queue, count(*) FROM workflow_executions WHERE status = 'PENDING' GROUP BY queue),
r AS (SELECT kind, queue, n, row_number() OVER (PARTITION BY kind ORDER BY n DESC, queue) AS rank FROM d)
SELECT kind, CASE WHEN rank <= $1 THEN queue ELSE 'other' END AS queue, sum(n)::bigint AS n
FROM r GROUP BY 1, 2)sql";

// ------------------------------------------------------------------------------ workers

// $4 to $6: JSON arrays of names.
inline constexpr const char* kInsertWorker = R"sql(
INSERT INTO workers (tenant_id, name, version, queues, workflow_kinds, task_kinds)
VALUES ($1, $2, $3, ARRAY(SELECT json_array_elements_text($4::json)),
        ARRAY(SELECT json_array_elements_text($5::json)),
        ARRAY(SELECT json_array_elements_text($6::json)))
RETURNING id)sql";

inline constexpr const char* kWorkerHeartbeat = R"sql(
UPDATE workers SET last_heartbeat_at = now() WHERE id = $1 AND tenant_id = $2)sql";

inline constexpr const char* kListWorkers = R"sql(
SELECT id, name, version, array_to_json(queues)::text AS queues,
       array_to_json(workflow_kinds)::text AS workflow_kinds,
       array_to_json(task_kinds)::text AS task_kinds, registered_at::text AS registered_at,
       last_heartbeat_at::text AS last_heartbeat_at,
       extract(epoch from now() - last_heartbeat_at) AS heartbeat_age
FROM workers WHERE tenant_id = $1 ORDER BY last_heartbeat_at DESC LIMIT 1000)sql";

// ------------------------------------------------------------------------------ sweeps

inline constexpr const char* kSavepoint = "SAVEPOINT sweep_row";
inline constexpr const char* kReleaseSavepoint = "RELEASE SAVEPOINT sweep_row";
inline constexpr const char* kRollbackToSavepoint = "ROLLBACK TO SAVEPOINT sweep_row";

}  // namespace flovyn::engine::sql

#include "engine/sql_timers.h"  // IWYU pragma: export

#undef FLOVYN_LOCKED_EXECUTION_COLUMNS
