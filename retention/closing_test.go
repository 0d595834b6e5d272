package retention_test

import (
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

// TestCloserChecksOutAtClosingTime runs the closing job on a real store
// across a winter and a summer day: a visit still open at closing time is
// checked out then (automatic, reason closing); one checked in after
// closing, one of a site without closing time, and one already gone stay
// as they are; a day missed while the server was down is caught up.
func TestCloserChecksOutAtClosingTime(t *testing.T) {
	for _, tc := range []struct{ name, day string }{{"winter", "2026-01-13"}, {"summer", "2026-07-14"}} {
		t.Run(tc.name, func(t *testing.T) {
			day, err := time.ParseInLocation("2006-01-02", tc.day, registry.LocalZone)
			if err != nil {
				t.Fatal(err)
			}
			at := func(d time.Duration) time.Time { return day.Add(d) } // local time of the day
			e := newEnv(t, openSQLite(t), at(7*time.Hour))
			e.ensureKeysAt(at(7 * time.Hour))
			for _, s := range []*registry.Site{
				{Code: "rathaus", Name: "Rathaus", Opens: "08:00", Closes: "18:00"},
				{Code: "bauamt", Name: "Bauamt"},
			} {
				if err := e.store.PutSite(e.ctx, "dpo:it", s, true); err != nil {
					t.Fatal(err)
				}
			}
			open := e.register(at(9*time.Hour), false)
			gone := e.register(at(10*time.Hour), true)
			late := e.register(at(18*time.Hour+5*time.Minute), false)
			other := e.registerAt("bauamt", at(9*time.Hour), false)
			closer := &retention.Closer{Store: e.store, Now: e.clock.Now}

			e.clock.Set(at(17*time.Hour + 59*time.Minute))
			if n, err := closer.Close(e.ctx); err != nil || n != 0 {
				t.Fatalf("before closing: Close = %d, %v; want 0", n, err)
			}
			e.clock.Set(at(18*time.Hour + 10*time.Minute))
			if n, err := closer.Close(e.ctx); err != nil || n != 1 {
				t.Fatalf("after closing: Close = %d, %v; want 1", n, err)
			}
			got := e.find(open.ID)
			if want := at(18 * time.Hour); got.CheckOut == nil || !got.CheckOut.Equal(want) || !got.CheckoutAuto || got.CheckoutReason != registry.CheckoutClosing {
				t.Errorf("open visit: check-out %v auto %v reason %q, want %v (18:00 local) closing", got.CheckOut, got.CheckoutAuto, got.CheckoutReason, want.UTC())
			}
			for _, v := range []*visit{late, other} {
				if got := e.find(v.ID); got.CheckOut != nil {
					t.Errorf("visit of %s checked in at %v was closed at %v", v.Site, v.CheckIn, got.CheckOut)
				}
			}
			if got := e.find(gone.ID); got.CheckoutReason != registry.CheckoutVisitor {
				t.Errorf("visit checked out before closing: reason %q", got.CheckoutReason)
			}

			// A missed closing is caught up two days later, at its own time.
			next := e.register(at(24*time.Hour+9*time.Hour), false)
			e.clock.Set(at(3*24*time.Hour + 8*time.Hour))
			e.ensureKeysAt(e.clock.Now())
			if n, err := closer.Close(e.ctx); err != nil || n != 1 {
				t.Fatalf("catching up: Close = %d, %v; want 1", n, err)
			}
			if got := e.find(next.ID); got.CheckOut == nil || !got.CheckOut.Equal(at(24*time.Hour+18*time.Hour)) {
				t.Errorf("missed day: check-out %v, want the next day's 18:00", got.CheckOut)
			}
			if n := countOf(e.auditActions(), registry.AuditVisitsCheckedOut); n != 3 {
				t.Errorf("%d check-out events, want 3 (one visitor's, two closings)", n)
			}
		})
	}
}
