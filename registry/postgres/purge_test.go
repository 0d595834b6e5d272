package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
)

// canary returns a ~700-byte sealed payload that is unique and easy to find.
func canary(kind string, i int) []byte {
	var b [340]byte
	rand.Read(b[:])
	return []byte(fmt.Sprintf("CANARY-%s-%04d-%s", kind, i, hex.EncodeToString(b[:])))
}

// relationFiles returns the files of the visits table and its TOAST table:
// every segment (path, path.1, …) of the main fork.
func relationFiles(t *testing.T, s *postgres.Store) []string {
	t.Helper()
	ctx := context.Background()
	var dataDir string
	if err := s.DB().GetContext(ctx, &dataDir, `SELECT current_setting('data_directory')`); err != nil {
		t.Fatal(err)
	}
	var rels []string
	err := s.DB().SelectContext(ctx, &rels, `SELECT pg_relation_filepath(oid) FROM pg_class
WHERE oid = 'visits'::regclass OR oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'visits'::regclass)`)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, rel := range rels {
		base := filepath.Join(dataDir, rel)
		for seg := 0; ; seg++ {
			p := base
			if seg > 0 {
				p = fmt.Sprintf("%s.%d", base, seg)
			}
			if _, err := os.Stat(p); err != nil {
				break
			}
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no relation files found under %s (the test must run on the server's host as its user or root)", dataDir)
	}
	return files
}

// fileHits counts how many of the payloads occur in the files.
func fileHits(t *testing.T, s *postgres.Store, payloads [][]byte) int {
	t.Helper()
	// Write dirty buffers out so the files show what the server holds.
	if _, err := s.DB().Exec(`CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, p := range relationFiles(t, s) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read relation file: %v (run the test as the server's user or root)", err)
		}
		data = append(data, b...)
	}
	n := 0
	for _, p := range payloads {
		if bytes.Contains(data, p[:64]) {
			n++
		}
	}
	return n
}

// TestPurgeErasesBytes checks the guarantee that a purged visit's sealed
// bytes are gone from the table's files, not only the row.
func TestPurgeErasesBytes(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cutoff := now.Add(-28 * 24 * time.Hour)
	var expired, kept [][]byte
	// The first 100 expired visits fill whole pages that the purge frees;
	// the rest alternate with kept ones on shared pages.
	for i := range 300 {
		checkIn, kind := cutoff.Add(time.Duration(i+1)*time.Minute), "kept"
		if i < 100 || i%2 == 0 {
			checkIn, kind = cutoff.Add(-time.Duration(i+1)*time.Minute), "expired"
		}
		v := &registry.Visit{ID: registry.NewID(), Site: "rathaus", CheckIn: checkIn, Sealed: canary(kind, i)}
		if err := s.CreateVisits(ctx, "token:intake", []*registry.Visit{v}); err != nil {
			t.Fatal(err)
		}
		if i%4 < 2 {
			// A check-out rewrites the row: its old version must go too.
			if err := s.CheckOutVisit(ctx, v.ID, checkIn.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if kind == "expired" {
			expired = append(expired, v.Sealed)
		} else {
			kept = append(kept, v.Sealed)
		}
	}
	if got := fileHits(t, s, expired); got != len(expired) {
		t.Fatalf("before purge: %d of %d expired payloads in the files, want all (scan broken?)", got, len(expired))
	}
	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	if rep.VisitsDeleted != int64(len(expired)) {
		t.Fatalf("VisitsDeleted = %d, want %d", rep.VisitsDeleted, len(expired))
	}
	if got := fileHits(t, s, expired); got != 0 {
		t.Errorf("after purge: %d expired payloads still in the table files, want 0", got)
	}
	if got := fileHits(t, s, kept); got != len(kept) {
		t.Errorf("after purge: %d of %d kept payloads in the files, want all", got, len(kept))
	}
}

// TestPurgeWaitsForOlderSnapshots holds a snapshot from before the purge:
// the purge may not claim the bytes erased while it is open, and the next
// purge must finish the erasure once it has ended.
func TestPurgeWaitsForOlderSnapshots(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cutoff := now.Add(-28 * 24 * time.Hour)
	var expired [][]byte
	for i := range 20 {
		v := &registry.Visit{ID: registry.NewID(), Site: "rathaus", CheckIn: cutoff.Add(-time.Duration(i+1) * time.Minute), Sealed: canary("expired", i)}
		if err := s.CreateVisits(ctx, "token:intake", []*registry.Visit{v}); err != nil {
			t.Fatal(err)
		}
		expired = append(expired, v.Sealed)
	}
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
