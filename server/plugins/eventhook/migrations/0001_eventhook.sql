-- Event hooks: sources that receive deliveries from the outside world, routes that turn them into
-- work, and the events received. An HMAC source's secret is sealed (AES-256-GCM under a key
-- derived from the server's secret); an API key or basic credential is kept only as a keyed hash.
CREATE TABLE eventhook_sources (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    slug              text NOT NULL,
    enabled           boolean NOT NULL DEFAULT true,
    verifier          jsonb NOT NULL,
    secret            text,
    idempotency_paths jsonb NOT NULL DEFAULT '[]',
    event_type_path   text,
    max_body_bytes    integer NOT NULL,
    rate_per_second   double precision NOT NULL,
    burst             integer NOT NULL,
    rejected          bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug)
);

CREATE TABLE eventhook_routes (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    source_id    uuid NOT NULL REFERENCES eventhook_sources(id) ON DELETE CASCADE,
    name         text NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    event_types  jsonb NOT NULL DEFAULT '[]',
    conditions   jsonb NOT NULL DEFAULT '[]',
    action       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, name)
);

-- One row per accepted delivery; the dedup key (from the source's idempotency paths) makes a
-- repeated delivery a no-op. Processing claims rows like tasks (SKIP LOCKED); a claim moves
-- next_attempt_at one lease ahead, so an event whose processor died is claimed again then.
CREATE TABLE eventhook_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    source_id        uuid NOT NULL REFERENCES eventhook_sources(id) ON DELETE CASCADE,
    dedup_key        text,
    event_type       text,
    headers          jsonb NOT NULL,
    body             text NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING','DONE','FAILED')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    actions          jsonb NOT NULL DEFAULT '[]',
    error            text,
    processed_at     timestamptz,
    UNIQUE (source_id, dedup_key)
);
CREATE INDEX eventhook_events_due ON eventhook_events (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX eventhook_events_recent ON eventhook_events (tenant_id, received_at DESC, id DESC);
