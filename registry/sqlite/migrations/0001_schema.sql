-- +goose Up
-- Times are unix microseconds UTC; days are 'YYYY-MM-DD'.
CREATE TABLE visits (
    id            TEXT PRIMARY KEY,
    site          TEXT NOT NULL,
    area          TEXT NOT NULL DEFAULT '',
    check_in      INTEGER NOT NULL,
    check_out     INTEGER,
    checkout_auto INTEGER NOT NULL DEFAULT 0,
    epoch         TEXT NOT NULL,
    sealed        BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    idem_hash     BLOB UNIQUE,
    request_mac   BLOB
);
CREATE INDEX visits_check_in ON visits (check_in);
CREATE INDEX visits_site_check_in ON visits (site, check_in);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    site       TEXT NOT NULL DEFAULT '',
    label      TEXT NOT NULL DEFAULT '',
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE epoch_keys (
    day          TEXT PRIMARY KEY,
    recipient    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    destroyed_at INTEGER
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE trace_requests (
    id            TEXT PRIMARY KEY,
    case_ref      TEXT NOT NULL,
    office        TEXT NOT NULL,
    legal_basis   TEXT NOT NULL,
    contact       TEXT NOT NULL,
    window_from   INTEGER NOT NULL,
    window_to     INTEGER NOT NULL,
    sites         TEXT NOT NULL,
    areas         TEXT NOT NULL,
    status        TEXT NOT NULL,
    owner_token   TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    decided_by    TEXT NOT NULL DEFAULT '',
    decided_at    INTEGER,
    decision_note TEXT NOT NULL DEFAULT '',
    expires_at    INTEGER,
    exported_at   INTEGER,
    export_count  INTEGER NOT NULL DEFAULT 0,
    export_digest TEXT
);
CREATE INDEX trace_requests_created_at ON trace_requests (created_at);

CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE INDEX audit_events_action ON audit_events (action, seq);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE trace_requests;
DROP TABLE settings;
DROP TABLE epoch_keys;
DROP TABLE tokens;
DROP TABLE visits;
