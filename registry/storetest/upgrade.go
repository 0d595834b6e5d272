package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
)

// Release1 is what SeedRelease1 wrote into a database of the first
// release's schema (migration 0001), for CheckUpgrade.
type Release1 struct {
	visits map[string]*registry.Visit // by old id
	events int
}

// SeedRelease1 writes into db, migrated to version 1 only, what a running
// first release held: visits with their idempotency hashes and MACs in the
// row, open and checked out, the checkout key in settings, and a hash chain
// of audit events in the first release's hash scheme (version 1).
func SeedRelease1(t *testing.T, db *sqlx.DB) *Release1 {
	t.Helper()
	ctx := context.Background()
	r := &Release1{visits: map[string]*registry.Visit{}}
	for i := range 6 {
		checkIn := t0.Add(time.Duration(i) * 7 * time.Hour).UTC()
		sealed := make([]byte, 300)
		rand.Read(sealed)
		v := &registry.Visit{ID: registry.NewID(), Site: "rathaus", Area: "Saal 1", CheckIn: checkIn,
			Epoch: registry.DayOf(checkIn), Sealed: sealed, CreatedAt: checkIn}
		if i%2 == 0 {
			out := checkIn.Add(time.Hour)
			v.CheckOut = &out
		}
		hash := make([]byte, 32)
		rand.Read(hash)
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO visits (id, site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at, idem_hash, request_mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), v.ID, v.Site, v.Area, v.CheckIn.UnixMicro(), nullMicros(v.CheckOut), false,
			string(v.Epoch), v.Sealed, v.CreatedAt.UnixMicro(), hash, hash)
		if err != nil {
			t.Fatalf("seed release-1 visit: %v", err)
		}
		r.visits[v.ID] = v
	}
	key := make([]byte, 32)
	rand.Read(key)
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO settings (name, value) VALUES ('checkout_key', ?)`), key); err != nil {
		t.Fatalf("seed release-1 checkout key: %v", err)
	}
	var prev *registry.AuditEvent
	for i := range 5 {
		e := &registry.AuditEvent{Seq: int64(i + 1), Version: 1, Time: t0.Add(time.Duration(i) * time.Minute), Actor: "dpo:anna",
			Action: registry.AuditVisitsRegistered, Details: `{"count":1,"sites":{"rathaus":1}}`, PrevHash: registry.GenesisHash}
		if prev != nil {
			e.PrevHash = prev.Hash
		}
		e.Hash = e.ComputeHash()
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO audit_events (seq, at, actor, action, subject, details, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), e.Seq, e.Time.UnixMicro(), string(e.Actor), e.Action, e.Subject, e.Details, e.PrevHash, e.Hash)
		if err != nil {
			t.Fatalf("seed release-1 audit event: %v", err)
		}
		prev = e
	}
	r.events = 5
	return r
}

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// CheckUpgrade checks a store opened (and so migrated) over the database
// SeedRelease1 filled: every visit is there under its new id (the
// check-in's prefix and the old id's last 23 digits) with its data
// unchanged, the checkout key is gone from settings, the old audit chain
// and new events appended to it verify, and a new registration works.
func CheckUpgrade(t *testing.T, s registry.Store, db *sqlx.DB, r *Release1) {
	t.Helper()
	ctx := context.Background()
	for old, want := range r.visits {
		id := registry.VisitIDAt(want.CheckIn, old[9:])
		got, err := s.FindVisit(ctx, id)
		if err != nil {
			t.Errorf("visit %s (was %s) after the upgrade: %v", id, old, err)
			continue
		}
		if got.Site != want.Site || got.Area != want.Area || !got.CheckIn.Equal(want.CheckIn) ||
			hex.EncodeToString(got.Sealed) != hex.EncodeToString(want.Sealed) || !equalTimePtr(got.CheckOut, want.CheckOut) {
			t.Errorf("visit %s changed in the upgrade: %+v, want %+v", id, got, want)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM settings WHERE name = 'checkout_key'`); err != nil || n != 0 {
		t.Errorf("checkout key rows after the upgrade = %d, %v; want 0", n, err)
	}
	createVisits(t, s, newVisit("rathaus", "", t0.Add(48*time.Hour)))
	checkChain(t, s)
	// The release's visits predate the log's leaves: not checkable, not
	// findings; the new one is checked.
	d, err := audit.VerifyData(ctx, s)
	if err != nil || len(d.Problems) != 0 || d.Unattested != len(r.visits) || d.Leaves != 1 {
		t.Errorf("VerifyData after the upgrade = %+v, %v; want no findings, %d unattested, 1 leaf", d, err, len(r.visits))
	}
	events := allEvents(t, s)
	if len(events) != r.events+1 || events[0].Version != 1 || events[len(events)-1].Version != registry.AuditVersion {
		t.Errorf("audit log after the upgrade has %d events (versions %d…%d), want %d from release 1 then one new",
			len(events), events[0].Version, events[len(events)-1].Version, r.events)
	}
}
