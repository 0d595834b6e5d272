package postgres

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/cityhall/registry/registry"
)

// DefaultEraseWait is the default of Store.EraseWait.
const DefaultEraseWait = time.Minute

// AfterPurge makes the visits deleted before cutoff unrecoverable from the
// database files, touching only the expired days: visits are partitioned by
// check-in day (migration 0002), so
//
//   - the partition of every day that lies wholly before the cutoff, now
//     empty, is detached (DETACH PARTITION … CONCURRENTLY, which does not
//     block inserts or reads of the other days) and dropped: its files,
//     TOAST and indexes included, are unlinked;
//   - the one partition the cutoff falls into is rewritten with VACUUM
//     (FULL), which holds an ACCESS EXCLUSIVE lock on that day alone; no
//     registration, check-out by id or occupancy count reads a day that
//     old;
//   - the small tables that hold staff data the purge may have erased
//     (audit_actors, trace_requests) and the appointments, whose deleted
//     rows held sealed notes and visit ids, are rewritten too, in
//     milliseconds (a month of appointments is a few thousand rows).
//
// Why a rewrite and not a plain VACUUM: measured against PostgreSQL 15
// (TestPurgeErasesBytes), a plain VACUUM after the DELETE left the sealed
// bytes of 149 of 200 deleted visits in the heap file: pruning marks the
// line pointers unused and compacts the page, but never zeroes the freed
// space.
//
// Why wait: VACUUM (FULL) copies rows that are deleted but still visible to
// an older snapshot (a running pg_dump, a long report), and those bytes
// would survive into the new file. Before the rewrite it waits until every
// snapshot is younger than this call; after Store.EraseWait it gives up
// with an error and the next purge retries. Dropping a partition needs no
// such wait: its files go whole.
//
// Statistics: the sealed bytes and ids are never sampled (STATISTICS 0 on
// every partition), so pg_statistic holds nothing to erase.
//
// The write-ahead log: the segments in pg_wal still hold the inserted rows
// (and, with full_page_writes, images of the pages the purge changed).
// Last, AfterPurge ends the current segment (pg_switch_wal) and checkpoints,
// so that the server removes or recycles every segment before it at once
// instead of whenever it next needs space (see flushWAL). WAL archives and
// base backups keep old row images regardless; the destroyed per-day epoch
// keys cover those.
func (d *dialect) AfterPurge(ctx context.Context, db *sqlx.DB, cutoff time.Time) error {
	parts, err := partitions(ctx, db)
	if err != nil {
		return err
	}
	boundary := ""
	for _, p := range parts {
		switch {
		case !p.day.End().After(cutoff):
			if err := dropPartition(ctx, db, p.name); err != nil {
				return err
			}
		case p.day.Start().Before(cutoff):
			boundary = p.name
		}
	}
	if err := waitForOlderSnapshots(ctx, db, d.store.EraseWait); err != nil {
		return err
	}
	// The small tables of staff data (erased names, contacts, notes) and
	// the appointments (sealed notes, visit links) are rewritten with the
	// boundary day.
	rewrite := []string{"audit_actors", "trace_requests", "appointments"}
	if boundary != "" {
		rewrite = append(rewrite, boundary)
	}
	for _, table := range rewrite {
		if _, err := db.ExecContext(ctx, `VACUUM (FULL) `+pq.QuoteIdentifier(table)); err != nil {
			return fmt.Errorf("rewrite %s: %w", table, err)
		}
	}
	return flushWAL(ctx, db)
}

// flushWAL switches to a new WAL segment and checkpoints: the
// checkpoint's redo point lies in the new segment, so every older one,
// the purged rows' among them, is removed, or with wal_recycle = on (the
// server's default) renamed for reuse and overwritten only as new WAL
// fills it. Measured (TestPurgeFlushesWAL): without the flush 20 of 20
// purged rows stayed in pg_wal; with it and wal_recycle = on still 20
// (in the recycled segments); with it and wal_recycle = off, 0. Segments
// that wal_keep_size, a replication slot or a failing archive_command
// hold stay too. Without the privilege (see WALPrivilege) the server
// removes the segments on its own schedule and flushWAL does nothing;
// doctor reports both settings.
func flushWAL(ctx context.Context, db *sqlx.DB) error {
	ok, err := WALPrivilege(ctx, db)
	if err != nil || !ok {
		return err
	}
	for _, q := range []string{`SELECT pg_switch_wal()`, `CHECKPOINT`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("flush the write-ahead log (%s): %w", q, err)
		}
	}
	return nil
}

// WALPrivilege reports whether the store's role may end a WAL segment and
// checkpoint: a superuser, or (PostgreSQL 15 and newer) a member of
// pg_checkpoint with EXECUTE on pg_switch_wal().
func WALPrivilege(ctx context.Context, db sqlx.QueryerContext) (bool, error) {
	var ok bool
	err := sqlx.GetContext(ctx, db, &ok, `SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
 OR (has_function_privilege('pg_switch_wal()', 'EXECUTE')
     AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'pg_checkpoint' AND pg_has_role(current_user, r.oid, 'MEMBER')))`)
	if err != nil {
		return false, fmt.Errorf("check the privilege to flush the write-ahead log: %w", err)
	}
	return ok, nil
}

type partition struct {
	name string
	day  registry.Day
}

var partitionName = regexp.MustCompile(`^visits_d(\d{4})(\d{2})(\d{2})$`)

// partitions lists the partitions of visits, attached or left detached by
// an interrupted purge, by day.
func partitions(ctx context.Context, db *sqlx.DB) ([]partition, error) {
	var names []string
	err := db.SelectContext(ctx, &names, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'visits\_d%' ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list visit partitions: %w", err)
	}
	var parts []partition
	for _, name := range names {
		m := partitionName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		day, err := registry.ParseDay(m[1] + "-" + m[2] + "-" + m[3])
		if err != nil {
			continue
		}
		parts = append(parts, partition{name: name, day: day})
	}
	return parts, nil
}

// dropPartition detaches a partition without blocking the others and drops
// it. A detach that an earlier purge left pending is finalised; a table no
// longer attached is dropped as it is.
func dropPartition(ctx context.Context, db *sqlx.DB, name string) error {
	q := pq.QuoteIdentifier(name)
	var attached, pending bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass),
EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass AND inhdetachpending)`, name).Scan(&attached, &pending)
	if err != nil {
		return fmt.Errorf("inspect partition %s: %w", name, err)
	}
	switch {
	case pending:
		_, err = db.ExecContext(ctx, `ALTER TABLE visits DETACH PARTITION `+q+` FINALIZE`)
	case attached:
		_, err = db.ExecContext(ctx, `ALTER TABLE visits DETACH PARTITION `+q+` CONCURRENTLY`)
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", name, err)
	}
	if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS `+q); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
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

// WALState is what decides how long purged rows stay in the server's
// write-ahead log (see flushWAL).
type WALState struct {
	// Privilege: the role may switch segments and checkpoint.
	Privilege bool
	// Recycle is wal_recycle: recycled segments keep old WAL until
	// overwritten.
	Recycle bool
	// Archive is archive_mode ("off", "on", "always"): archived segments
	// keep purged rows for as long as the archive keeps them.
	Archive string
	// KeepSize is wal_keep_size, as the server shows it.
	KeepSize string
}

// WAL reports the server's WAL settings that matter for deletion.
func (s *Store) WAL(ctx context.Context) (*WALState, error) {
	var w WALState
	var err error
	if w.Privilege, err = WALPrivilege(ctx, s.DB()); err != nil {
		return nil, err
	}
	var recycle string
	if err := s.DB().QueryRowContext(ctx, `SELECT current_setting('wal_recycle'), current_setting('archive_mode'), current_setting('wal_keep_size')`).
		Scan(&recycle, &w.Archive, &w.KeepSize); err != nil {
		return nil, fmt.Errorf("read the WAL settings: %w", err)
	}
	w.Recycle = recycle == "on"
	return &w, nil
}
