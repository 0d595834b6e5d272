package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// Canary returns a ~700-byte sealed payload that is unique and easy to find
// in a database's raw files.
func Canary(kind string, i int) []byte {
	var b [340]byte
	rand.Read(b[:])
	return []byte(fmt.Sprintf("CANARY-%s-%04d-%s", kind, i, hex.EncodeToString(b[:])))
}

// CountIn counts how many of the payloads occur in data. It looks for a
// 64-byte prefix, so that partly overwritten copies count too.
func CountIn(data []byte, payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		if bytes.Contains(data, p[:64]) {
			n++
		}
	}
	return n
}

// ErasesBytes proves that a purge removes the sealed bytes of expired visits
// from the database's files, not only their rows. hits counts how many of
// the payloads occur in the store's raw files (each adapter knows which
// files those are). Before the purge every payload must be found, which
// proves the scan works; after it, no expired one and every kept one.
func ErasesBytes(t *testing.T, s registry.Store, hits func(t *testing.T, payloads [][]byte) int) {
	t.Helper()
	ctx := context.Background()
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
		v := &registry.Visit{ID: registry.NewID(), Site: "rathaus", CheckIn: checkIn, Sealed: Canary(kind, i)}
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
	if got := hits(t, expired); got != len(expired) {
		t.Fatalf("before purge: %d of %d expired payloads in the files, want all (scan broken?)", got, len(expired))
	}
	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	if rep.VisitsDeleted != int64(len(expired)) {
		t.Fatalf("VisitsDeleted = %d, want %d", rep.VisitsDeleted, len(expired))
	}
	if got := hits(t, expired); got != 0 {
		t.Errorf("after purge: %d expired payloads still in the database files, want 0", got)
	}
	if got := hits(t, kept); got != len(kept) {
		t.Errorf("after purge: %d of %d kept payloads in the files, want all", got, len(kept))
	}
}

// OpensConcurrently opens one new database from four goroutines at once:
// the schema must be set up once and every open must succeed.
func OpensConcurrently(t *testing.T, open func() (registry.Store, error)) {
	t.Helper()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := open()
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("Open() = %v", err)
		}
	}
}
