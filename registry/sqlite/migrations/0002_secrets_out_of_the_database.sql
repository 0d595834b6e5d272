-- +goose Up
-- Issue 7/8/9: visit ids start with their check-in day and second; idempotency records
-- move out of the visits into a table of their own, keyed by an HMAC under
-- the server secret (which the database never holds); the checkout secret
-- leaves the database; audit events commit to a salted hash of the actor.
-- Visits stored before keep 112 bits of their id behind the day prefix.
-- Their checkout tokens end with the server secret's arrival anyway.
CREATE TABLE visits_new (
    id            TEXT PRIMARY KEY,
    site          TEXT NOT NULL,
    area          TEXT NOT NULL DEFAULT '',
    check_in      INTEGER NOT NULL,
    check_out     INTEGER,
    checkout_auto INTEGER NOT NULL DEFAULT 0,
    epoch         TEXT NOT NULL,
    sealed        BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);
INSERT INTO visits_new (id, site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at)
SELECT printf('%04x%05x', check_in / 86400000000, (check_in / 1000000) % 86400) || substr(id, 10), site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at
FROM visits;
DROP TABLE visits;
ALTER TABLE visits_new RENAME TO visits;
CREATE INDEX visits_check_in ON visits (check_in);
CREATE INDEX visits_site_check_in ON visits (site, check_in);
-- Open visits only: the hourly auto-checkout and the occupancy counts read
-- this small index instead of walking every visit.
CREATE INDEX visits_open ON visits (check_in, site) WHERE check_out IS NULL;

CREATE TABLE idempotency (
    hash        BLOB PRIMARY KEY,
    check_in    INTEGER NOT NULL,
    request_mac BLOB NOT NULL,
    visits      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_check_in ON idempotency (check_in);

DELETE FROM settings WHERE name = 'checkout_key';

-- Audit events of version 2 name their actor only by a salted commitment;
-- the names (staff, approvers) and salts live in audit_actors, one salt per
-- actor and month, so that the staff retention rule can erase a month's
-- names while the chain still verifies.
ALTER TABLE audit_events ADD COLUMN v INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN actor_commit BLOB;
CREATE TABLE audit_actors (
    commit_hash BLOB PRIMARY KEY,
    actor       TEXT NOT NULL,
    salt        BLOB NOT NULL,
    month       TEXT NOT NULL,
    UNIQUE (actor, month)
);

-- Trace requests remember when they closed (exported, rejected, expired,
-- withdrawn): their staff contact and notes are erased a staff retention
-- period later.
ALTER TABLE trace_requests ADD COLUMN closed_at INTEGER;
UPDATE trace_requests SET closed_at = coalesce(exported_at, decided_at, expires_at, created_at)
WHERE status IN ('exported', 'rejected', 'expired', 'withdrawn');
