package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// canary returns a ~700-byte sealed payload that is unique and easy to find.
func canary(kind string, i int) []byte {
	var b [340]byte
	rand.Read(b[:])
	return []byte(fmt.Sprintf("CANARY-%s-%04d-%s", kind, i, hex.EncodeToString(b[:])))
}

// fileHits counts how many of the payloads occur in the files.
func fileHits(t *testing.T, payloads [][]byte, paths ...string) int {
	t.Helper()
	var data []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	n := 0
	for _, p := range payloads {
		// A shorter prefix also catches partly overwritten copies.
		if bytes.Contains(data, p[:64]) {
			n++
		}
	}
	return n
}

// TestPurgeErasesBytes checks the guarantee that a purged visit's sealed
// bytes are gone from the database file and its WAL, not only the row.
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
	files := []string{s.Path(), s.Path() + "-wal", s.Path() + "-shm"}
	if got := fileHits(t, expired, files...); got != len(expired) {
		t.Fatalf("before purge: %d of %d expired payloads in the files, want all (scan broken?)", got, len(expired))
	}
	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	if rep.VisitsDeleted != int64(len(expired)) {
		t.Fatalf("VisitsDeleted = %d, want %d", rep.VisitsDeleted, len(expired))
	}
	if got := fileHits(t, expired, files...); got != 0 {
		t.Errorf("after purge: %d expired payloads still in the database files, want 0", got)
	}
	if got := fileHits(t, kept, files...); got != len(kept) {
		t.Errorf("after purge: %d of %d kept payloads in the files, want all", got, len(kept))
	}
}
