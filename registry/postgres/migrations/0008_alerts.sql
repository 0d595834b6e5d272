-- +goose Up
-- Issue 23: the alerts' outbox (no personal data: case references, days,
-- checks and links).
CREATE TABLE alerts (
    id         TEXT PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    audience   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    delivered  TEXT NOT NULL DEFAULT '',
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    BIGINT NOT NULL,
    closed_at  BIGINT,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_due ON alerts (next_at) WHERE closed_at IS NULL;
CREATE INDEX alerts_created ON alerts (created_at);

