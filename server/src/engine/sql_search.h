// The engine's statements for search attributes and retention (the rest are in engine/sql.h,
// which includes this).
#pragma once

namespace flovyn::engine::sql {

// ------------------------------------------------------------------------------ search attributes

inline constexpr const char* kUpsertSearchAttribute = R"sql(
INSERT INTO workflow_search_attributes (execution_id, tenant_id, key, value, text_value, num_value, bool_value,
                                        time_value)
VALUES ($1, $2, $3, $4::jsonb, $5, $6::float8, $7::boolean, $8::timestamptz)
ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value, text_value = excluded.text_value,
  num_value = excluded.num_value, bool_value = excluded.bool_value, time_value = excluded.time_value)sql";

inline constexpr const char* kDeleteSearchAttribute = R"sql(
DELETE FROM workflow_search_attributes WHERE execution_id = $1 AND key = $2)sql";

inline constexpr const char* kCountSearchAttributes = R"sql(
SELECT count(*) AS n FROM workflow_search_attributes WHERE execution_id = $1)sql";

inline constexpr const char* kSearchAttributesOf = R"sql(
SELECT key, value::text AS value FROM workflow_search_attributes WHERE execution_id = $1 ORDER BY key)sql";

// ------------------------------------------------------------------------------ retention

inline constexpr const char* kRetentionOfTenant = R"sql(
SELECT retention_days FROM tenants WHERE id = $1)sql";

inline constexpr const char* kSetRetention = R"sql(
UPDATE tenants SET retention_days = $2 WHERE id = $1)sql";

// Up to $1 finished executions past their tenant's retention, oldest first per tenant, locked
// (SKIP LOCKED: replicas purge different rows). Reads only the finished-rows index.
inline constexpr const char* kExpiredExecutions = R"sql(
SELECT x.id FROM tenants t CROSS JOIN LATERAL (
  SELECT e.id FROM workflow_executions e
  WHERE e.tenant_id = t.id AND e.completed_at IS NOT NULL
    AND e.completed_at < now() - t.retention_days * interval '1 day'
  ORDER BY e.completed_at LIMIT $1 FOR UPDATE OF e SKIP LOCKED) x
LIMIT $1)sql";

// Each execution of $1 (a JSON array of ids) as one JSON document: the row, its tenant's slug,
// its history, state and search attributes; what the export directory receives.
inline constexpr const char* kExportExecutions = R"sql(
SELECT json_build_object(
  'id', e.id, 'tenant', t.slug, 'kind', e.kind, 'queue', e.queue, 'status', e.status,
  'input', e.input, 'output', e.output, 'error', e.error, 'parentId', e.parent_id,
  'idempotencyKey', e.idempotency_key, 'createdAt', e.created_at, 'completedAt', e.completed_at,
  'events', (SELECT coalesce(json_agg(json_build_object('sequence', v.seq, 'type', v.type,
                                                        'payload', v.payload, 'createdAt', v.created_at)
                                      ORDER BY v.seq), '[]'::json)
             FROM workflow_events v WHERE v.execution_id = e.id),
  'state', (SELECT coalesce(json_object_agg(s.key, s.value), '{}'::json) FROM workflow_state s
            WHERE s.execution_id = e.id),
  'searchAttributes', (SELECT coalesce(json_object_agg(a.key, a.value), '{}'::json)
                       FROM workflow_search_attributes a WHERE a.execution_id = e.id))::text AS line
FROM workflow_executions e JOIN tenants t ON t.id = e.tenant_id
WHERE e.id IN (SELECT json_array_elements_text($1::json)::uuid) ORDER BY e.completed_at)sql";

// Deletes the executions of $1 (a JSON array of ids) with everything that belongs to them, in
// one statement, and counts what went, table by table.
inline constexpr const char* kPurgeExecutions = R"sql(
WITH doomed AS (SELECT json_array_elements_text($1::json)::uuid AS id),
ev AS (DELETE FROM workflow_events WHERE execution_id IN (SELECT id FROM doomed) RETURNING 1),
buf AS (DELETE FROM workflow_event_buffer WHERE execution_id IN (SELECT id FROM doomed) RETURNING 1),
tk AS (DELETE FROM task_executions WHERE workflow_id IN (SELECT id FROM doomed) RETURNING 1),
tm AS (DELETE FROM timers WHERE execution_id IN (SELECT id FROM doomed) RETURNING 1),
pr AS (DELETE FROM promises WHERE execution_id IN (SELECT id FROM doomed) RETURNING 1),
st AS (DELETE FROM workflow_state WHERE execution_id IN (SELECT id FROM doomed) RETURNING 1),
sa AS (DELETE FROM workflow_search_attributes WHERE execution_id IN (SELECT id FROM doomed) RETURNING 1),
ex AS (DELETE FROM workflow_executions WHERE id IN (SELECT id FROM doomed) RETURNING 1)
SELECT (SELECT count(*) FROM ex) AS executions, (SELECT count(*) FROM ev) + (SELECT count(*) FROM buf) AS events,
       (SELECT count(*) FROM tk) AS tasks, (SELECT count(*) FROM tm) AS timers,
       (SELECT count(*) FROM pr) AS promises, (SELECT count(*) FROM st) AS state,
       (SELECT count(*) FROM sa) AS attributes)sql";

// Standalone tasks past their tenant's retention, up to $1, deleted.
inline constexpr const char* kPurgeStandaloneTasks = R"sql(
WITH doomed AS (
  SELECT x.id FROM tenants t CROSS JOIN LATERAL (
    SELECT k.id FROM task_executions k
    WHERE k.tenant_id = t.id AND k.workflow_id IS NULL AND k.completed_at IS NOT NULL
      AND k.completed_at < now() - t.retention_days * interval '1 day'
    ORDER BY k.completed_at LIMIT $1 FOR UPDATE OF k SKIP LOCKED) x
  LIMIT $1)
DELETE FROM task_executions WHERE id IN (SELECT id FROM doomed))sql";

// How far the purge is behind: the oldest finished execution past its tenant's retention, in
// seconds past that point (0 when none is).
inline constexpr const char* kRetentionLag = R"sql(
SELECT coalesce(max(extract(epoch FROM (now() - t.retention_days * interval '1 day') - o.oldest)), 0)::float8 AS lag
FROM tenants t CROSS JOIN LATERAL (
  SELECT min(e.completed_at) AS oldest FROM workflow_executions e
  WHERE e.tenant_id = t.id AND e.completed_at IS NOT NULL) o
WHERE o.oldest < now() - t.retention_days * interval '1 day')sql";

}  // namespace flovyn::engine::sql
