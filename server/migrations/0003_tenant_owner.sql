-- Who owns a tenant: the console organisation's immutable id, or 'static' for tenants made with
-- static API keys (and every tenant that existed before owners were recorded). Console
-- credentials map to tenants by owner, never by slug alone, so an organisation can never adopt a
-- tenant it did not create. One tenant per console organisation.
ALTER TABLE tenants ADD COLUMN owner text NOT NULL DEFAULT 'static';
CREATE UNIQUE INDEX tenants_owner ON tenants (owner) WHERE owner <> 'static';
