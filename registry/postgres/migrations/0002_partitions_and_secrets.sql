-- +goose Up
-- Issue 7/8/9:
--  * visits are partitioned by check-in day: erasing an expired day drops
--    or rewrites that day alone, never the live table;
--  * ids, sealed bytes and every hash are never sampled into pg_statistic
--    (STATISTICS 0, set on every partition: partitions do not inherit it);
--  * visit ids start with their check-in day and second, so a look-up by id reads
--    one partition; visits stored before keep 112 bits behind the prefix;
--  * idempotency records move to a table of their own, keyed by an HMAC
--    under the server secret, which the database never holds;
--  * the checkout secret leaves the database;
--  * audit events commit to a salted hash of the actor.

ALTER TABLE visits RENAME TO visits_0001;
ALTER INDEX visits_check_in RENAME TO visits_0001_check_in;
ALTER INDEX visits_site_check_in RENAME TO visits_0001_site_check_in;
ALTER TABLE visits_0001 RENAME CONSTRAINT visits_pkey TO visits_0001_pkey;
ALTER TABLE visits_0001 RENAME CONSTRAINT visits_idem_hash_key TO visits_0001_idem_hash_key;

CREATE TABLE visits (
    id            TEXT NOT NULL,
    site          TEXT NOT NULL,
    area          TEXT NOT NULL DEFAULT '',
    check_in      BIGINT NOT NULL,
    check_out     BIGINT,
    checkout_auto BOOLEAN NOT NULL DEFAULT FALSE,
    epoch         TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (id, check_in)
) PARTITION BY RANGE (check_in);
ALTER TABLE visits ALTER COLUMN id SET STATISTICS 0, ALTER COLUMN sealed SET STATISTICS 0;
CREATE INDEX visits_check_in ON visits (check_in);
CREATE INDEX visits_site_check_in ON visits (site, check_in);
-- Open visits only: the auto-checkout and the occupancy counts read this.
CREATE INDEX visits_open ON visits (check_in, site) WHERE check_out IS NULL;

-- registry_add_visit_partition creates the partition of one UTC day,
-- visits_dYYYYMMDD, unless it exists. The table is created on its own and
-- then attached: ATTACH PARTITION takes a SHARE UPDATE EXCLUSIVE lock on
-- visits, which does not wait for or block inserts and reads, where
-- CREATE TABLE … PARTITION OF would take an ACCESS EXCLUSIVE one.
-- +goose StatementBegin
CREATE FUNCTION registry_add_visit_partition(day date) RETURNS void LANGUAGE plpgsql AS $$
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
    EXECUTE format('ALTER TABLE %I ALTER COLUMN id SET STATISTICS 0, ALTER COLUMN sealed SET STATISTICS 0', name);
    EXECUTE format('ALTER TABLE %I ADD CHECK (check_in >= %s AND check_in < %s)', name, lo, lo + 86400000000);
    EXECUTE format('ALTER TABLE visits ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, lo + 86400000000);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    d date;
BEGIN
    FOR d IN
        SELECT day::date FROM epoch_keys WHERE destroyed_at IS NULL
        UNION SELECT epoch::date FROM visits_0001
    LOOP
        PERFORM registry_add_visit_partition(d);
    END LOOP;
END
$$;
-- +goose StatementEnd

INSERT INTO visits (id, site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at)
SELECT lpad(to_hex(check_in / 86400000000), 4, '0') || lpad(to_hex((check_in / 1000000) % 86400), 5, '0') || substr(id, 10), site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at
FROM visits_0001;
DROP TABLE visits_0001;

CREATE TABLE idempotency (
    hash        BYTEA PRIMARY KEY,
    check_in    BIGINT NOT NULL,
    request_mac BYTEA NOT NULL,
    visits      INTEGER NOT NULL
);
ALTER TABLE idempotency ALTER COLUMN hash SET STATISTICS 0, ALTER COLUMN request_mac SET STATISTICS 0;
CREATE INDEX idempotency_check_in ON idempotency (check_in);

DELETE FROM settings WHERE name = 'checkout_key';

-- Audit events of version 2 name their actor only by a salted commitment;
-- the names (staff, approvers) and salts live in audit_actors, one salt per
-- actor and month, so that the staff retention rule can erase a month's
-- names while the chain still verifies.
ALTER TABLE audit_events ADD COLUMN v INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN actor_commit BYTEA;
CREATE TABLE audit_actors (
    commit_hash BYTEA PRIMARY KEY,
    actor       TEXT NOT NULL,
    salt        BYTEA NOT NULL,
    month       TEXT NOT NULL,
    UNIQUE (actor, month)
);

-- Trace requests remember when they closed (exported, rejected, expired,
-- withdrawn): their staff contact and notes are erased a staff retention
-- period later.
ALTER TABLE trace_requests ADD COLUMN closed_at BIGINT;
UPDATE trace_requests SET closed_at = coalesce(exported_at, decided_at, expires_at, created_at)
WHERE status IN ('exported', 'rejected', 'expired', 'withdrawn');
ALTER TABLE audit_events ALTER COLUMN hash SET STATISTICS 0, ALTER COLUMN prev_hash SET STATISTICS 0,
    ALTER COLUMN actor_commit SET STATISTICS 0;
