-- +goose Up
-- Issue 10: sites are configured (registry sites), desk staff sign in with
-- accounts of their own, and a visit remembers its party and who ended it.

-- A site's configuration is its registry.Site as JSON: public texts only.
CREATE TABLE sites (
    code       TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- Every site named so far (by a visit or a token) becomes a site whose
-- display name is its code, until IT names it (README: upgrading).
INSERT INTO sites (code, config, created_at, updated_at)
SELECT code, '{"code":"' || code || '","name":"' || code || '"}',
       CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
       CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
FROM (SELECT site AS code FROM visits UNION SELECT site FROM tokens WHERE site <> '');

CREATE TABLE users (
    login           TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    sites           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    must_change     INTEGER NOT NULL DEFAULT 0,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER
);

-- Sessions hold the SHA-256 of the cookie's secret, never the secret.
CREATE TABLE sessions (
    hash       BLOB PRIMARY KEY,
    login      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_login ON sessions (login);

ALTER TABLE visits ADD COLUMN checkout_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE visits ADD COLUMN party TEXT NOT NULL DEFAULT '';
UPDATE visits SET checkout_reason = 'max-stay' WHERE checkout_auto = 1;
