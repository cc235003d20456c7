-- The engine's durable state. Every row belongs to a tenant; every query is scoped by tenant.

CREATE TABLE workflow_executions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    kind              text NOT NULL,
    queue             text NOT NULL,
    input             jsonb,
    output            jsonb,
    error             text,
    status            text NOT NULL DEFAULT 'PENDING'
                      CHECK (status IN ('PENDING','RUNNING','WAITING','COMPLETED','FAILED','CANCELLED')),
    parent_id         uuid REFERENCES workflow_executions(id),
    parent_name       text,
    idempotency_key   text,
    last_seq          bigint NOT NULL DEFAULT 0,
    lease_owner       text,
    lease_expires_at  timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    traceparent       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz
);
CREATE UNIQUE INDEX workflow_executions_idempotency ON workflow_executions (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Claiming: oldest PENDING on a queue.
CREATE INDEX workflow_executions_pending ON workflow_executions (tenant_id, queue, created_at)
    WHERE status = 'PENDING';
-- Lease expiry sweep.
CREATE INDEX workflow_executions_leased ON workflow_executions (lease_expires_at) WHERE status = 'RUNNING';
-- Listing newest first with cursor pagination, optionally by status or kind.
CREATE INDEX workflow_executions_list ON workflow_executions (tenant_id, created_at DESC, id DESC);
CREATE INDEX workflow_executions_list_status ON workflow_executions (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX workflow_executions_list_kind ON workflow_executions (tenant_id, kind, created_at DESC, id DESC);
CREATE INDEX workflow_executions_children ON workflow_executions (parent_id) WHERE parent_id IS NOT NULL;

-- Append-only, dense history: (execution, seq) is unique and seq runs 1..last_seq.
CREATE TABLE workflow_events (
    execution_id  uuid NOT NULL REFERENCES workflow_executions(id),
    seq           bigint NOT NULL CHECK (seq > 0),
    type          text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, seq)
);

-- Events that arrived while a worker held the execution; appended after its commands.
CREATE TABLE workflow_event_buffer (
    id            bigserial PRIMARY KEY,
    execution_id  uuid NOT NULL REFERENCES workflow_executions(id),
    type          text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    wakes         boolean NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_event_buffer_execution ON workflow_event_buffer (execution_id, id);

CREATE TABLE task_executions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    workflow_id         uuid REFERENCES workflow_executions(id),
    workflow_seq        bigint,
    kind                text NOT NULL,
    queue               text NOT NULL,
    input               jsonb,
    output              jsonb,
    error               text,
    status              text NOT NULL DEFAULT 'PENDING'
                        CHECK (status IN ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')),
    attempt             integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    initial_backoff_ms  bigint NOT NULL DEFAULT 1000,
    max_backoff_ms      bigint NOT NULL DEFAULT 60000,
    lease_ms            bigint NOT NULL DEFAULT 30000,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    progress            jsonb,
    heartbeat_at        timestamptz,
    lease_owner         text,
    lease_expires_at    timestamptz,
    cancel_requested    boolean NOT NULL DEFAULT false,
    completed_count     integer NOT NULL DEFAULT 0,
    traceparent         text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz
);
CREATE INDEX task_executions_pending ON task_executions (tenant_id, queue, next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX task_executions_leased ON task_executions (lease_expires_at) WHERE status = 'RUNNING';
CREATE INDEX task_executions_list ON task_executions (tenant_id, created_at DESC, id DESC);
CREATE INDEX task_executions_workflow ON task_executions (workflow_id) WHERE workflow_id IS NOT NULL;

CREATE TABLE timers (
    execution_id  uuid NOT NULL REFERENCES workflow_executions(id),
    name          text NOT NULL,
    fire_at       timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING','FIRED','CANCELLED')),
    fired_at      timestamptz,
    PRIMARY KEY (execution_id, name)
);
CREATE INDEX timers_due ON timers (fire_at) WHERE status = 'PENDING';

CREATE TABLE promises (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    execution_id  uuid NOT NULL REFERENCES workflow_executions(id),
    name          text NOT NULL,
    status        text NOT NULL DEFAULT 'PENDING'
                  CHECK (status IN ('PENDING','RESOLVED','REJECTED','TIMED_OUT')),
    value         jsonb,
    error         text,
    timeout_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    settled_at    timestamptz,
    UNIQUE (execution_id, name)
);
CREATE INDEX promises_timeout ON promises (timeout_at) WHERE status = 'PENDING' AND timeout_at IS NOT NULL;

CREATE TABLE workflow_state (
    execution_id  uuid NOT NULL REFERENCES workflow_executions(id),
    key           text NOT NULL,
    value         jsonb NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, key)
);

CREATE TABLE workers (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES tenants(id),
    name               text NOT NULL,
    version            text NOT NULL DEFAULT '',
    queues             text[] NOT NULL DEFAULT '{}',
    workflow_kinds     text[] NOT NULL DEFAULT '{}',
    task_kinds         text[] NOT NULL DEFAULT '{}',
    registered_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_tenant ON workers (tenant_id, last_heartbeat_at DESC);
