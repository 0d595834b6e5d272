-- +goose Up
-- The health office's workspace. Times are unix microseconds UTC. It holds
-- no visitor data: that stays in the sealed bundles (files) and, opened,
-- only in memory while a result is built.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The registries the office works with.
CREATE TABLE registries (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    url              TEXT NOT NULL,
    token            BLOB NOT NULL,               -- sealed with the workspace key
    trust            BLOB NOT NULL,               -- the trust file as received
    trust_digest     TEXT NOT NULL,
    confirmed_digest TEXT NOT NULL DEFAULT '',    -- '' until a clerk compared it on the phone
    confirmed_by     TEXT NOT NULL DEFAULT '',
    confirmed_at     INTEGER,
    sites            TEXT NOT NULL DEFAULT '[]',  -- JSON, as GET /v1/sites answered
    sites_at         INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE TABLE cases (
    id          TEXT PRIMARY KEY,
    ref         TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    contact     TEXT NOT NULL,
    from_at     INTEGER NOT NULL,
    to_at       INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- One request to one registry; a case has one or more per registry.
CREATE TABLE requests (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    registry_id   TEXT NOT NULL REFERENCES registries (id),
    remote_id     TEXT NOT NULL DEFAULT '',
    sites         TEXT NOT NULL,   -- JSON lists
    areas         TEXT NOT NULL,
    hosts         TEXT NOT NULL,
    appointments  TEXT NOT NULL,
    status        TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    filed_at      INTEGER,
    checked_at    INTEGER,
    next_check    INTEGER NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    export_digest TEXT NOT NULL DEFAULT '',
    downloaded_at INTEGER,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX requests_case ON requests (case_id);
CREATE INDEX requests_next_check ON requests (next_check);

-- What changed, for the clerk's page.
CREATE TABLE notices (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    case_id TEXT NOT NULL DEFAULT '',
    text    TEXT NOT NULL
);

CREATE TABLE users (
    login         TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    hash       BLOB PRIMARY KEY,
    login      TEXT NOT NULL REFERENCES users (login) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);

-- The workspace's own append-only, hash-linked log, of the registry's
-- audit-log shape (registry.AuditEvent): audit.Verify checks it.
CREATE TABLE log (
    seq          INTEGER PRIMARY KEY,
    v            INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    actor_salt   BLOB NOT NULL,
    actor_commit BLOB NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
