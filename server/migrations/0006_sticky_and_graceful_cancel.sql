-- Sticky execution: the worker that submitted an execution's last batch keeps it in memory and
-- gets its next activation with only the new events, if it claims it within engine.sticky_ms of
-- it becoming pending; other workers leave it alone until then. sticky_seq is the last sequence
-- that worker holds.
-- Graceful cancellation: a cancel with a grace period delivers CANCELLATION_REQUESTED to the
-- workflow's code and cancels the execution outright at cancel_deadline if it has not ended.
ALTER TABLE workflow_executions
  ADD COLUMN sticky_worker text,
  ADD COLUMN sticky_seq bigint,
  ADD COLUMN cancel_deadline timestamptz;
CREATE INDEX workflow_executions_cancel_deadline ON workflow_executions (cancel_deadline)
  WHERE cancel_deadline IS NOT NULL AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');
