-- Failed sign-ins counted per (email, client address) and per client address, so that guessing
-- from one place is slowed without letting anyone lock a user out from everywhere. Each attempt
-- is counted before the password is checked (one atomic statement), so parallel guesses cannot
-- slip past the count.
DROP TABLE sign_in_failures;
CREATE TABLE sign_in_throttle (
    key        text PRIMARY KEY,  -- "pair:<email>|<address>" or "addr:<address>"
    failures   integer NOT NULL,
    last_at    timestamptz NOT NULL
);
CREATE INDEX sign_in_throttle_age ON sign_in_throttle (last_at);

-- Organisations made before tenants recorded their owner ensure their tenant once more on the
-- next visit: the server hands each its own 'legacy' tenant (see the server's migration 0003).
UPDATE organizations SET tenant_ready = false;
