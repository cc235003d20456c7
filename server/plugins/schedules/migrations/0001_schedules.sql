-- Schedules: a cron expression in a time zone, or a fixed interval, and the workflow each fire
-- time starts. next_fire_at is the next time to run (NULL: none left); a replica claims a due
-- schedule with FOR UPDATE SKIP LOCKED, and each fire time starts its workflow with the
-- idempotency key schedule:<id>:<fire time>, so a fire time starts one workflow at most.
CREATE TABLE schedules (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES tenants(id),
    name               text NOT NULL,
    cron               text,
    timezone           text NOT NULL DEFAULT 'UTC',
    interval_ms        bigint NOT NULL DEFAULT 0,
    start_at           timestamptz,
    end_at             timestamptz,
    workflow_kind      text NOT NULL,
    workflow_queue     text NOT NULL,
    workflow_input     text NOT NULL,
    overlap            text NOT NULL CHECK (overlap IN ('skip','buffer_one','allow_all','cancel_previous')),
    catchup_window_ms  bigint NOT NULL,
    catchup_max        integer NOT NULL,
    paused             boolean NOT NULL DEFAULT false,
    next_fire_at       timestamptz,
    buffered_fire_at   timestamptz,
    last_execution_id  uuid,
    fires              bigint NOT NULL DEFAULT 0,
    skips              bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CHECK ((cron IS NULL) <> (interval_ms = 0))
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE NOT paused;
CREATE INDEX schedules_buffered ON schedules (buffered_fire_at) WHERE buffered_fire_at IS NOT NULL;

-- What each fire time did: started (with its execution), skipped because the previous run was
-- still going, buffered, or the previous run cancelled. Manual triggers and backfills too.
CREATE TABLE schedule_runs (
    schedule_id   uuid NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    fire_at       timestamptz NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('schedule','manual','backfill')),
    outcome       text NOT NULL,
    execution_id  uuid,
    lateness_ms   bigint NOT NULL DEFAULT 0,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, fire_at, trigger)
);
CREATE INDEX schedule_runs_recent ON schedule_runs (schedule_id, recorded_at DESC);
