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

// idNeedle is a visit id as the stores write it: 32 hex digits of text.
func idNeedle(id string) []byte { return []byte(id) }

// CountIn counts how many of the payloads occur in data. It looks for a
// prefix of at most 64 bytes, so that partly overwritten copies count too.
func CountIn(data []byte, payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		if bytes.Contains(data, p[:min(64, len(p))]) {
			n++
		}
	}
	return n
}

// ErasesBytes proves that a purge removes the sealed bytes and the ids of
// expired visits from the database's files, not only their rows. hits
// counts how many of the payloads occur in the store's raw files (each
// adapter knows which files those are: every file of the database,
// catalogs and statistics included). Before the purge every payload and id
// must be found, which proves the scan works; after it, no expired one and
// every kept one.
func ErasesBytes(t *testing.T, s registry.Store, hits func(t *testing.T, payloads [][]byte) int) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cutoff := now.Add(-28 * 24 * time.Hour)
	var expired, kept, expiredIDs [][]byte
	var expiredNotes int64
	// The first 100 expired visits lie on the three days before the
	// cutoff's and fill whole pages that the purge frees (PostgreSQL: whole
	// day partitions it drops); the rest alternate with kept ones on shared
	// pages of the cutoff's day.
	for i := range 300 {
		checkIn, kind := cutoff.Add(time.Duration(i+1)*time.Minute), "kept"
		switch {
		case i < 100:
			checkIn, kind = cutoff.Add(-time.Duration(i/34+1)*24*time.Hour-time.Duration(i)*time.Minute), "expired"
		case i%2 == 0:
			checkIn, kind = cutoff.Add(-time.Duration(i+1)*time.Second), "expired"
		}
		v := &registry.Visit{ID: registry.NewVisitID(checkIn), Site: "rathaus", CheckIn: checkIn, Sealed: Canary(kind, i)}
		createVisits(t, s, v)
		if i%4 < 2 {
			// A check-out rewrites the row: its old version must go too.
			if err := checkOut(s, v.ID, checkIn.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if kind == "expired" {
			expired = append(expired, v.Sealed)
			expiredIDs = append(expiredIDs, idNeedle(v.ID))
		} else {
			kept = append(kept, v.Sealed)
		}
		if i%5 == 0 {
			// An appointment with a sealed note for the health office,
			// purged with its day.
			note := noteAppointment(t, s, checkIn, Canary("note-"+kind, i))
			if kind == "expired" {
				expired = append(expired, note)
				expiredNotes++
			} else {
				kept = append(kept, note)
			}
		}
	}
	if got := hits(t, expired); got != len(expired) {
		t.Fatalf("before purge: %d of %d expired payloads in the files, want all (scan broken?)", got, len(expired))
	}
	if got := hits(t, expiredIDs); got != len(expiredIDs) {
		t.Fatalf("before purge: %d of %d expired ids in the files, want all (scan broken?)", got, len(expiredIDs))
	}
	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	if rep.VisitsDeleted != int64(len(expiredIDs)) || rep.AppointmentsDeleted != expiredNotes {
		t.Fatalf("VisitsDeleted = %d, AppointmentsDeleted = %d; want %d, %d", rep.VisitsDeleted, rep.AppointmentsDeleted, len(expiredIDs), expiredNotes)
	}
	if got := hits(t, expired); got != 0 {
		t.Errorf("after purge: %d expired payloads still in the database files, want 0", got)
	}
	if got := hits(t, expiredIDs); got != 0 {
		t.Errorf("after purge: %d ids of expired visits still in the database files, want 0", got)
	}
	if got := hits(t, kept); got != len(kept) {
		t.Errorf("after purge: %d of %d kept payloads in the files, want all", got, len(kept))
	}
}

// noteAppointment stores an appointment at start whose sealed note is
// payload (a canary: the bytes are what matters here) and returns payload.
func noteAppointment(t *testing.T, s registry.Store, start time.Time, payload []byte) []byte {
	t.Helper()
	a := &registry.Appointment{ID: registry.NewID(), Site: "rathaus", Day: registry.LocalDay(start), Code: registry.NewAppointmentCode(),
		Host: "Bauamt", Start: start, End: start.Add(30 * time.Minute), Status: registry.AppointmentExpected, Source: "cli", CreatedAt: start}
	seal := func(a *registry.Appointment) error {
		a.NoteSealed, a.NoteEpoch, a.HasNote = payload, registry.DayOf(a.Start), true
		return nil
	}
	if _, _, err := s.CreateAppointment(context.Background(), "user:service", a, seal); err != nil {
		t.Fatal(err)
	}
	return payload
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
