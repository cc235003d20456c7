-- Statements that find rows by their key and also test their state (a task's result or release:
-- its id and status = 'RUNNING'; a workflow's timers: its id and status = 'PENDING') matched the
-- partial indexes of running tasks and of pending timers, whose predicate was that state alone.
-- In a busy queue such an index is mostly dead entries between vacuums while the statistics say
-- it is empty, so the generic plan of those statements scanned all of it, a heap visit per
-- entry, instead of the key. Each index now also requires its key column to be set, which a key
-- lookup does not imply; the sweeps that read them (expired leases, due timers, the scheduler's
-- next deadline) do.
DROP INDEX task_executions_leased;
CREATE INDEX task_executions_leased ON task_executions (lease_expires_at)
    WHERE status = 'RUNNING' AND lease_expires_at IS NOT NULL;
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (fire_at) WHERE status = 'PENDING' AND fire_at IS NOT NULL;
