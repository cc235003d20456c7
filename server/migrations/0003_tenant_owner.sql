-- Who owns a tenant: the console organisation's immutable id, or 'static' for tenants made with
-- static API keys. Console credentials map to tenants by owner, never by slug alone, so an
-- organisation can never adopt a tenant it did not create. One tenant per console organisation.
-- Tenants that existed before owners were recorded are 'legacy': the console organisation of
-- the same slug that existed before the upgrade claims its tenant once (POST /api/tenants with
-- claimLegacy); a console sign-up never does.
ALTER TABLE tenants ADD COLUMN owner text NOT NULL DEFAULT 'legacy';
ALTER TABLE tenants ALTER COLUMN owner SET DEFAULT 'static';
CREATE UNIQUE INDEX tenants_owner ON tenants (owner) WHERE owner NOT IN ('static', 'legacy');
