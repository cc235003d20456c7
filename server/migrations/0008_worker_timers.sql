-- A timer the worker that keeps its execution cached fires itself (SubmitWorkflowCommandsRequest
-- .fires_timers): fire_at, when the server fires it, is held_ms past its deadline, so the
-- server fires it only when that worker has not. The deadline is fire_at - held_ms. Existing
-- rows, and rows written by a replica that predates this, hold nothing (0).
ALTER TABLE timers ADD COLUMN held_ms integer NOT NULL DEFAULT 0 CHECK (held_ms >= 0);
