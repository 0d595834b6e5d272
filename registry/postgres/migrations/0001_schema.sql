-- +goose Up
-- Times are unix microseconds UTC; days are 'YYYY-MM-DD'.
CREATE TABLE visits (
    id            TEXT PRIMARY KEY,
    site          TEXT NOT NULL,
    area          TEXT NOT NULL DEFAULT '',
    check_in      BIGINT NOT NULL,
    check_out     BIGINT,
    checkout_auto BOOLEAN NOT NULL DEFAULT FALSE,
    epoch         TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    idem_hash     BYTEA UNIQUE,
    request_mac   BYTEA
);
CREATE INDEX visits_check_in ON visits (check_in);
CREATE INDEX visits_site_check_in ON visits (site, check_in);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    site       TEXT NOT NULL DEFAULT '',
    label      TEXT NOT NULL DEFAULT '',
    hash       BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE epoch_keys (
    day          TEXT PRIMARY KEY,
    recipient    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    destroyed_at BIGINT
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE trace_requests (
    id            TEXT PRIMARY KEY,
    case_ref      TEXT NOT NULL,
    office        TEXT NOT NULL,
    legal_basis   TEXT NOT NULL,
    contact       TEXT NOT NULL,
    window_from   BIGINT NOT NULL,
    window_to     BIGINT NOT NULL,
    sites         TEXT NOT NULL,
    areas         TEXT NOT NULL,
    status        TEXT NOT NULL,
    owner_token   TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    decided_by    TEXT NOT NULL DEFAULT '',
    decided_at    BIGINT,
    decision_note TEXT NOT NULL DEFAULT '',
    expires_at    BIGINT,
    exported_at   BIGINT,
    export_count  INTEGER NOT NULL DEFAULT 0,
    export_digest TEXT
);
CREATE INDEX trace_requests_created_at ON trace_requests (created_at);

CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_events_action ON audit_events (action, seq);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE trace_requests;
DROP TABLE settings;
DROP TABLE epoch_keys;
DROP TABLE tokens;
DROP TABLE visits;
