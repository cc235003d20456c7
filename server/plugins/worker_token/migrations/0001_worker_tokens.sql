-- Worker tokens: only an HMAC-SHA256 of the token (keyed with WORKER_TOKEN_SECRET) is stored.
CREATE TABLE worker_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    name          text NOT NULL,
    token_hash    text NOT NULL UNIQUE,
    prefix        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX worker_tokens_tenant ON worker_tokens (tenant_id, created_at DESC);
