package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// DefaultEraseWait is the default of Store.EraseWait.
const DefaultEraseWait = time.Minute

// AfterPurge makes deleted visits unrecoverable from the table's files: it
// waits until no transaction that could still see them is open, then
// rewrites the table with VACUUM (FULL).
//
// Why FULL: measured against PostgreSQL 15 (TestPurgeErasesBytes), a plain
// VACUUM after the DELETE left the sealed bytes of 149 of 200 deleted
// visits in the heap file: pruning marks the line pointers unused and
// compacts the page, but never zeroes the freed space. The same holds for
// old row versions that check-out UPDATEs leave behind. VACUUM (FULL)
// writes the live rows into a new file and unlinks the old one, TOAST and
// indexes included.
//
// Why wait: VACUUM (FULL) copies rows that are deleted but still visible to
// an older snapshot (a running pg_dump, a long report), and those bytes
// would survive into the new file. The wait ends when every snapshot is
// younger than this call; after Store.EraseWait it gives up with an error
// and the next purge retries.
//
// Cost: the rewrite takes the whole table (28 days of visits) under an
// ACCESS EXCLUSIVE lock, so intake waits for it; BenchmarkPurgeHourly
// measures it. WAL archives and base backups keep old row images
// regardless; the destroyed per-day epoch keys cover those.
func (d *dialect) AfterPurge(ctx context.Context, db *sqlx.DB) error {
	if err := waitForOlderSnapshots(ctx, db, d.store.EraseWait); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `VACUUM (FULL) visits`); err != nil {
		return fmt.Errorf("vacuum visits: %w", err)
	}
	return nil
}

// waitForOlderSnapshots waits until nothing that could still need the
// deleted rows is left, polling with a growing interval: no session of this
// database with a snapshot older than the next transaction id at the time
// of the call, no running writer of any database with an older transaction
// id (transaction ids are cluster-wide, and a running one holds the
// horizon back everywhere), and no replication slot holding an older xmin.
// Read-only sessions of other databases do not matter for an ordinary table
// since PostgreSQL 14 (measured: TestPurgeErasesBytes with such sessions
// open). backend_xmin and backend_xid are visible to every role.
func waitForOlderSnapshots(ctx context.Context, db *sqlx.DB, max time.Duration) error {
	var next string
	if err := db.GetContext(ctx, &next, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`); err != nil {
		return fmt.Errorf("read transaction horizon: %w", err)
	}
	deadline := time.Now().Add(max)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		var older int
		err := db.GetContext(ctx, &older, `SELECT
  (SELECT count(*) FROM pg_stat_activity
   WHERE pid <> pg_backend_pid() AND backend_type IS DISTINCT FROM 'autovacuum worker'
   AND ((datname = current_database() AND backend_xmin IS NOT NULL AND age(backend_xmin) > age($1::xid))
     OR (backend_xid IS NOT NULL AND age(backend_xid) > age($1::xid))))
+ (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL AND age(xmin) > age($1::xid))`, next)
		if err != nil {
			return fmt.Errorf("look for older transactions: %w", err)
		}
		if older == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transactions older than the purge are still open after %v; deleted rows stay on disk until they end", older, max)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
