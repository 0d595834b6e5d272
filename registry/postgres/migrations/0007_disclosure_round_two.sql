-- +goose Up
-- Issue 20: tokens may expire.
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;

-- Approvers are persons with one or more keys (a name per person, shared
-- by the person's keys, so names are no longer unique per row). The audit
-- log is the record of the approver set: the table keeps the names, whose
-- commitments (with name_salt) the log holds, so that a former approver's
-- name can be erased after the staff retention period. Keys registered
-- before are persons of their own.
DROP INDEX approvers_name;
ALTER TABLE approvers ADD COLUMN person TEXT NOT NULL DEFAULT '';
UPDATE approvers SET person = id;
ALTER TABLE approvers ADD COLUMN name_salt BYTEA;
ALTER TABLE approvers ALTER COLUMN name_salt SET STATISTICS 0;

-- Changes of the approver set waiting for endorsements.
CREATE TABLE approver_changes (
    id           TEXT PRIMARY KEY,
    op           TEXT NOT NULL,
    serial       INTEGER NOT NULL,
    person       TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    name_salt    BYTEA,
    endorsements TEXT NOT NULL,
    proposed_by  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

-- The audit log alone pins the health office's recipients: the settings
-- row was a copy one edit could move.
DELETE FROM settings WHERE name = 'recipients_fingerprint';

-- Every visit registered with an appointment's code carries the
-- appointment's id: the registrant, its companions, and a second party
-- with the same code (a companion who checks in on their own phone), so
-- that a trace request by host or code finds them all. Visits stored
-- before keep '' (their leaves in the log were computed without it).
ALTER TABLE visits ADD COLUMN appointment TEXT NOT NULL DEFAULT '';
ALTER TABLE visits ALTER COLUMN appointment SET STATISTICS 0;
CREATE INDEX visits_appointment ON visits (appointment) WHERE appointment <> '';

-- An export checks the log from the first entry that may have registered
-- a visit of its window: found by time.
CREATE INDEX audit_events_at ON audit_events (at);
