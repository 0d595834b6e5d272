package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/storetest"
)

// databaseFiles returns every file of the test database's directory:
// every relation of the database, its catalogs (pg_statistic and its TOAST
// table among them) included.
func databaseFiles(t *testing.T, s *postgres.Store) []string {
	t.Helper()
	ctx := context.Background()
	var dataDir, oid string
	if err := s.DB().GetContext(ctx, &dataDir, `SELECT current_setting('data_directory')`); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().GetContext(ctx, &oid, `SELECT oid::text FROM pg_database WHERE datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, "base", oid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v (the test must run on the server's host as its user or root)", dir, err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		t.Fatalf("no relation files found under %s", dir)
	}
	return files
}

// fileHits counts how many of the payloads occur in the database's files,
// after ANALYZE has sampled every table (autovacuum would, sooner or later)
// and a checkpoint has written every dirty buffer out.
func fileHits(t *testing.T, s *postgres.Store, payloads [][]byte) int {
	t.Helper()
	for _, q := range []string{`ANALYZE`, `CHECKPOINT`} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var data []byte
	for _, p := range databaseFiles(t, s) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read relation file: %v (run the test as the server's user or root)", err)
		}
		data = append(data, b...)
	}
	return storetest.CountIn(data, payloads)
}

// TestPurgeErasesBytes checks the guarantee that a purged visit's sealed
// bytes are gone from the table's files, not only the row.
func TestPurgeErasesBytes(t *testing.T) {
	s := open(t)
	storetest.ErasesBytes(t, s, func(t *testing.T, payloads [][]byte) int { return fileHits(t, s, payloads) })
}

// TestPurgeWaitsForOlderSnapshots holds a snapshot from before the purge:
// the purge may not claim the bytes erased while it is open, and the next
// purge must finish the erasure once it has ended.
func TestPurgeWaitsForOlderSnapshots(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cutoff := now.Add(-28 * 24 * time.Hour)
	expired := seedExpired(t, s, cutoff)
	old, err := s.DB().BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	// Take the snapshot without touching visits: a lock on the table would
	// block the rewrite outright, the snapshot alone would not.
	var n int
	if err := old.Get(&n, `SELECT count(*) FROM audit_events`); err != nil {
		t.Fatal(err)
	}

	s.EraseWait = 0
	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err == nil || rep == nil || rep.VisitsDeleted != int64(len(expired)) {
		t.Fatalf("Purge() with an older snapshot open = %+v, %v; want the report and an error", rep, err)
	}
	if err := old.Get(&n, `SELECT count(*) FROM visits`); err != nil || n != len(expired) {
		t.Fatalf("old snapshot sees %d visits (%v) after the purge, want %d", n, err, len(expired))
	}
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}

	s.EraseWait = postgres.DefaultEraseWait
	rep, err = s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err != nil || rep.VisitsDeleted != 0 {
		t.Fatalf("second Purge() = %+v, %v; want nothing deleted, no error", rep, err)
	}
	if got := fileHits(t, s, expired); got != 0 {
		t.Errorf("after the second purge: %d expired payloads still in the table files, want 0", got)
	}
}

// TestPurgeAndOtherDatabases: a running writer in another database of the
// cluster holds the horizon back (transaction ids are cluster-wide), so the
// purge must not claim the bytes erased while it runs; a reader there does
// not, so the purge must not wait for it.
func TestPurgeAndOtherDatabases(t *testing.T) {
	for _, tt := range []struct {
		name     string
		stmt     string
		wantWait bool
	}{
		{"reader", `SELECT count(*) FROM pg_class`, false},
		{"writer", `SELECT pg_current_xact_id()`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			other := open(t)
			now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			cutoff := now.Add(-28 * 24 * time.Hour)
			expired := seedExpired(t, s, cutoff)
			tx, err := other.DB().BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec(tt.stmt); err != nil {
				t.Fatal(err)
			}
			// A reader must not be waited for: give the purge time for the
			// short writers of other tests sharing the cluster, not for
			// the reader, which stays open throughout. A writer must be.
			s.EraseWait = 10 * time.Second
			if tt.wantWait {
				s.EraseWait = 0
			}
			rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
			if rep == nil || rep.VisitsDeleted != int64(len(expired)) {
				t.Fatalf("Purge() = %+v, %v; want %d deleted", rep, err, len(expired))
			}
			if gotWait := err != nil; gotWait != tt.wantWait {
				t.Fatalf("Purge() error = %v; want an error (erasure pending) = %v", err, tt.wantWait)
			}
			if !tt.wantWait {
				if got := fileHits(t, s, expired); got != 0 {
					t.Errorf("%d expired payloads still in the table files, want 0", got)
				}
			}
		})
	}
}

// seedExpired stores 20 visits that checked in before cutoff and returns
// their sealed payloads.
func seedExpired(t *testing.T, s *postgres.Store, cutoff time.Time) [][]byte {
	t.Helper()
	var expired [][]byte
	for i := range 20 {
		checkIn := cutoff.Add(-time.Duration(i+1) * time.Minute)
		v := &registry.Visit{ID: registry.NewVisitID(checkIn), Site: "rathaus", CheckIn: checkIn, Sealed: storetest.Canary("expired", i)}
		if err := s.CreateParties(context.Background(), []*registry.Party{{Actor: "token:intake", Visits: []*registry.Visit{v}}}); err != nil {
			t.Fatal(err)
		}
		expired = append(expired, v.Sealed)
	}
	return expired
}
