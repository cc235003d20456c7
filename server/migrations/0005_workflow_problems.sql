-- A worker that cannot apply its code to an execution's history (a determinism violation)
-- reports the problem instead of submitting: the history stays as it is, the problem is shown
-- with the execution until a worker submits again, and the execution is handed out again later.
ALTER TABLE workflow_executions ADD COLUMN problem text, ADD COLUMN problem_at timestamptz;
