-- +goose Up
-- Issue 10: sites are configured (registry sites), desk staff sign in with
-- accounts of their own, and a visit remembers its party and who ended it.

-- A site's configuration is its registry.Site as JSON: public texts only.
CREATE TABLE sites (
    code       TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Every site named so far (by a visit or a token) becomes a site whose
-- display name is its code, until IT names it (README: upgrading).
INSERT INTO sites (code, config, created_at, updated_at)
SELECT code, '{"code":"' || code || '","name":"' || code || '"}',
       (extract(epoch FROM now()) * 1000000)::bigint, (extract(epoch FROM now()) * 1000000)::bigint
FROM (SELECT site AS code FROM visits UNION SELECT site FROM tokens WHERE site <> '') s;

CREATE TABLE users (
    login           TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    sites           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    must_change     BOOLEAN NOT NULL DEFAULT FALSE,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT
);
ALTER TABLE users ALTER COLUMN password_hash SET STATISTICS 0;

-- Sessions hold the SHA-256 of the cookie's secret, never the secret.
CREATE TABLE sessions (
    hash       BYTEA PRIMARY KEY,
    login      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_login ON sessions (login);
ALTER TABLE sessions ALTER COLUMN hash SET STATISTICS 0;

-- A party names its first visit's id: never sampled, like the ids.
ALTER TABLE visits ADD COLUMN checkout_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE visits ADD COLUMN party TEXT NOT NULL DEFAULT '';
UPDATE visits SET checkout_reason = 'max-stay' WHERE checkout_auto;
-- +goose StatementBegin
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'visits'::regclass LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN party SET STATISTICS 0', p);
    END LOOP;
END
$$;
-- +goose StatementEnd
ALTER TABLE ONLY visits ALTER COLUMN party SET STATISTICS 0;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION registry_add_visit_partition(day date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := 'visits_d' || to_char(day, 'YYYYMMDD');
    lo bigint := (extract(epoch FROM day::timestamp) * 1000000)::bigint;
BEGIN
    -- Nodes that add the same day at once: one creates it, the others
    -- wait for its commit and then find it (a query, not to_regclass,
    -- so that it reads the catalogs after the lock).
    PERFORM pg_advisory_xact_lock(8243108395577799290);
    IF EXISTS (SELECT 1 FROM pg_class WHERE relname = name AND relnamespace = current_schema()::regnamespace) THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE visits INCLUDING DEFAULTS)', name);
    EXECUTE format('ALTER TABLE %I ALTER COLUMN id SET STATISTICS 0, ALTER COLUMN sealed SET STATISTICS 0, ALTER COLUMN party SET STATISTICS 0', name);
    EXECUTE format('ALTER TABLE %I ADD CHECK (check_in >= %s AND check_in < %s)', name, lo, lo + 86400000000);
    EXECUTE format('ALTER TABLE visits ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, lo + 86400000000);
END
$$;
-- +goose StatementEnd
