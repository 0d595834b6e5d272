-- +goose Up
-- Issue 11: approvers are signing keys, decisions are signatures over a
-- canonical statement of the request (registry.DecisionStatement).

CREATE TABLE approvers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    public_key        TEXT NOT NULL UNIQUE,
    added_at          INTEGER NOT NULL,
    added_by          TEXT NOT NULL DEFAULT '',
    signature         BLOB,
    removed_at        INTEGER,
    removed_by        TEXT NOT NULL DEFAULT '',
    removal_signature BLOB
);
CREATE UNIQUE INDEX approvers_name ON approvers (lower(name)) WHERE removed_at IS NULL;

CREATE TABLE trace_approvals (
    id           TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL,
    approver_id  TEXT NOT NULL,
    decision     TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    signed_at    INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    signature    BLOB NOT NULL,
    withdrawn_at INTEGER
);
CREATE INDEX trace_approvals_request ON trace_approvals (request_id);

-- Requests decided before this version carry no signatures: a pending one
-- gets its nonce now; an approved one can no longer be exported (its
-- approval was a name, not a key) and must be approved again with keys.
ALTER TABLE trace_requests ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
UPDATE trace_requests SET nonce = lower(hex(randomblob(16)));
UPDATE trace_requests SET status = 'pending', expires_at = NULL WHERE status = 'approved';

-- Requests belong to the health office, not to the token that filed them:
-- a leaked token is revoked and replaced, and the office keeps seeing its
-- requests (tokens.office names the office of a health-office token).
ALTER TABLE tokens ADD COLUMN office TEXT NOT NULL DEFAULT '';
ALTER TABLE trace_requests ADD COLUMN owner_office TEXT NOT NULL DEFAULT '';
