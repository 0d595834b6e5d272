package retention_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/sqlite"
	"github.com/cityhall/registry/registry/storetest"
	"github.com/cityhall/registry/retention"
)

// scenario is a registry seeded for one purge at now: a visit one second
// before the cutoff, one a second after, a stale and a fresh open visit,
// a pending trace request whose window lies before the cutoff, and epoch
// keys from 40 days back (of which 2026-03-21 .. 2026-03-31 are expired).
type scenario struct {
	*env
	now                     time.Time
	old, kept, stale, fresh *visit
	request                 *registry.TraceRequest
}

// expiredDays: the seed's key run also created keys for the days a paper
// form may reach back to (registry.MaxCheckInAge), 2026-03-14 to -20.
var expiredDays = days("2026-03-14", 18)

func seed(t *testing.T, store registry.Store) *scenario {
	t.Helper()
	now := mustTime(t, "2026-04-30T10:00:00Z")
	cutoff := now.Add(-28 * 24 * time.Hour)
	e := newEnv(t, store, now.Add(-40*24*time.Hour))
	e.ensureKeysAt(now.Add(-40 * 24 * time.Hour))
	e.ensureKeysAt(now.Add(-24 * time.Hour))
	s := &scenario{env: e, now: now}
	s.old = e.register(cutoff.Add(-time.Second), true)
	s.kept = e.register(cutoff.Add(time.Second), true)
	s.stale = e.register(now.Add(-13*time.Hour), false)
	s.fresh = e.register(now.Add(-11*time.Hour), false)
	s.request = &registry.TraceRequest{CaseRef: "GA-2026-17", Office: "Gesundheitsamt Soest", LegalBasis: "§ 25 IfSG",
		From: cutoff.Add(-3 * time.Hour), To: cutoff.Add(-2 * time.Hour), Sites: []string{"rathaus"}}
	if err := store.CreateTraceRequest(e.ctx, registry.TokenActor("office1"), s.request); err != nil {
		t.Fatalf("CreateTraceRequest: %v", err)
	}
	return s
}

func TestPurgeSQLite(t *testing.T) { testPurge(t, openSQLite) }

// testPurge runs the end-to-end purge on a store.
func testPurge(t *testing.T, open opener) {
	s := seed(t, open(t))
	r := s.purge(s.now, retention.Options{Actor: "dpo:anna"})
	wantReport(t, r, registry.PurgeReport{
		RanAt: s.now, Cutoff: s.now.Add(-28 * 24 * time.Hour), VisitsDeleted: 1, KeysDestroyed: expiredDays,
		VisitsAutoCheckedOut: 1, RequestsExpired: 1, VisitsRemaining: 3, OldestCheckIn: &s.kept.CheckIn,
	})
	t.Run("visits", func(t *testing.T) {
		if s.find(s.old.ID) != nil {
			t.Errorf("visit checked in one second before the cutoff survived the purge")
		}
		if s.find(s.kept.ID) == nil {
			t.Errorf("visit checked in one second after the cutoff was deleted")
		}
		wantAutoCheckout(t, s.find(s.stale.ID), s.stale.CheckIn.Add(12*time.Hour))
		if v := s.find(s.fresh.ID); v.CheckOut != nil || v.CheckoutAuto {
			t.Errorf("visit open for 11h: check-out %v auto %v, want still open", v.CheckOut, v.CheckoutAuto)
		}
	})
	t.Run("request expired", func(t *testing.T) {
		got, err := s.store.FindTraceRequest(s.ctx, s.request.ID)
		if err != nil || got.Status != registry.TraceExpired {
			t.Errorf("trace request = %v, %v; want status %q", got, err, registry.TraceExpired)
		}
	})
	t.Run("keys", func(t *testing.T) { wantKeysDestroyed(t, s.env, expiredDays) })
	t.Run("kept visit still opens", func(t *testing.T) {
		c, err := openContact(s.keys, s.find(s.kept.ID), s.office)
		if err != nil {
			t.Fatalf("open kept visit: %v", err)
		}
		if err := sameContact(c, s.kept.contact); err != nil {
			t.Error(err)
		}
	})
	t.Run("audit", func(t *testing.T) {
		ev, err := s.store.LastAudit(s.ctx, registry.AuditPurge)
		if err != nil || ev.Actor != "dpo:anna" || !ev.Time.Equal(s.now) {
			t.Errorf("last purge event = %+v, %v; want by dpo:anna at %s", ev, err, s.now)
		}
	})
	t.Run("second run changes nothing", func(t *testing.T) {
		// One second later the cutoff equals the kept visit's check-in,
		// which is still kept.
		again := s.purge(s.now.Add(time.Second), retention.Options{})
		wantReport(t, again, registry.PurgeReport{
			RanAt: s.now.Add(time.Second), Cutoff: s.kept.CheckIn,
			VisitsRemaining: 3, OldestCheckIn: &s.kept.CheckIn,
		})
	})
}

func TestPurgeDryRun(t *testing.T) {
	s := seed(t, openSQLite(t))
	keysBefore := s.keyDays()
	r := s.purge(s.now, retention.Options{DryRun: true})
	wantReport(t, r, registry.PurgeReport{
		RanAt: s.now, DryRun: true, Cutoff: s.now.Add(-28 * 24 * time.Hour), VisitsDeleted: 1, KeysDestroyed: expiredDays,
		VisitsAutoCheckedOut: 1, RequestsExpired: 1, VisitsRemaining: 3, OldestCheckIn: &s.kept.CheckIn,
	})
	if s.find(s.old.ID) == nil {
		t.Errorf("dry run deleted a visit")
	}
	if v := s.find(s.stale.ID); v.CheckOut != nil {
		t.Errorf("dry run checked out a stale visit at %s", v.CheckOut)
	}
	if got := s.keyDays(); !slices.Equal(got, keysBefore) {
		t.Errorf("key files after dry run = %v, want %v", got, keysBefore)
	}
	for _, d := range expiredDays {
		if k, err := s.store.EpochKey(s.ctx, d); err != nil || k.DestroyedAt != nil {
			t.Errorf("epoch key %s after dry run = %+v, %v; want not destroyed", d, k, err)
		}
	}
	if got, err := s.store.FindTraceRequest(s.ctx, s.request.ID); err != nil || got.Status != registry.TracePending {
		t.Errorf("trace request after dry run = %v, %v; want pending", got, err)
	}
	if _, err := s.store.LastAudit(s.ctx, registry.AuditPurge); registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Errorf("LastAudit(purge) after dry run: err = %v, want ENOTFOUND", err)
	}
	// The dry run is recorded, as a dry run: no purge for the clock guard.
	if ev, err := s.store.LastAudit(s.ctx, registry.AuditPurgeDryRun); err != nil || !strings.Contains(ev.Details, `"visits_deleted":1`) {
		t.Errorf("LastAudit(purge.dry_run) = %+v, %v; want the dry run's report", ev, err)
	}
	// The real run does what the dry run announced.
	real := s.purge(s.now, retention.Options{})
	real.DryRun = true
	wantReport(t, real, *r)
}

// TestPurgeMarksKeyDestroyedEarlier: a key file destroyed by a run whose
// store purge failed is marked destroyed by the next run.
func TestPurgeMarksKeyDestroyedEarlier(t *testing.T) {
	s := seed(t, openSQLite(t))
	if _, err := s.keys.Destroy("2026-03-25"); err != nil {
		t.Fatal(err)
	}
	r := s.purge(s.now, retention.Options{})
	if !slices.Equal(r.KeysDestroyed, expiredDays) {
		t.Errorf("KeysDestroyed = %v, want %v", r.KeysDestroyed, expiredDays)
	}
	wantKeysDestroyed(t, s.env, expiredDays)
}

// TestPurgeWrongKeyStore: a purger pointed at an empty key store does not
// record the database's keys as destroyed.
func TestPurgeWrongKeyStore(t *testing.T) {
	s := seed(t, openSQLite(t))
	other := newEnv(t, s.store, s.now)
	r := other.purge(s.now, retention.Options{})
	if len(r.KeysDestroyed) != 0 {
		t.Errorf("KeysDestroyed = %v, want none", r.KeysDestroyed)
	}
	for _, d := range expiredDays {
		if k, err := s.store.EpochKey(s.ctx, d); err != nil || k.DestroyedAt != nil {
			t.Errorf("epoch key %s = %+v, %v; want not marked destroyed", d, k, err)
		}
	}
	if !containsAll(other.logs.String(), "level=WARN", "check the key store directory") {
		t.Errorf("log lacks a warning about the key store:\n%s", other.logs.String())
	}
	// The right key store then destroys them.
	r = s.purge(s.now.Add(time.Minute), retention.Options{})
	if !slices.Equal(r.KeysDestroyed, expiredDays) {
		t.Errorf("KeysDestroyed = %v, want %v", r.KeysDestroyed, expiredDays)
	}
}

func TestPurgeInvalidPolicy(t *testing.T) {
	s := seed(t, openSQLite(t))
	s.purger.Policy.Retention = time.Hour
	s.clock.Set(s.now)
	if _, err := s.purger.Purge(s.ctx, retention.Options{}); registry.ErrorCode(err) != registry.EINVALID {
		t.Fatalf("Purge with 1h retention: err = %v, want EINVALID", err)
	}
	if s.find(s.old.ID) == nil || !s.keyFile(expiredDays[0]) {
		t.Errorf("Purge with an invalid policy changed something")
	}
}

func wantReport(t *testing.T, got *registry.PurgeReport, want registry.PurgeReport) {
	t.Helper()
	if !got.RanAt.Equal(want.RanAt) || !got.Cutoff.Equal(want.Cutoff) || got.DryRun != want.DryRun {
		t.Errorf("report ran at %s cutoff %s dry %v, want %s, %s, %v", got.RanAt, got.Cutoff, got.DryRun, want.RanAt, want.Cutoff, want.DryRun)
	}
	type counts struct{ deleted, auto, expired, remaining int64 }
	g := counts{got.VisitsDeleted, got.VisitsAutoCheckedOut, got.RequestsExpired, got.VisitsRemaining}
	w := counts{want.VisitsDeleted, want.VisitsAutoCheckedOut, want.RequestsExpired, want.VisitsRemaining}
	if g != w {
		t.Errorf("report counts (deleted, auto-checked-out, requests expired, remaining) = %v, want %v", g, w)
	}
	if got.KeysDestroyed == nil || !slices.Equal(got.KeysDestroyed, want.KeysDestroyed) {
		t.Errorf("report KeysDestroyed = %#v, want %v (non-nil)", got.KeysDestroyed, want.KeysDestroyed)
	}
	if (got.OldestCheckIn == nil) != (want.OldestCheckIn == nil) ||
		got.OldestCheckIn != nil && !got.OldestCheckIn.Equal(*want.OldestCheckIn) {
		t.Errorf("report OldestCheckIn = %v, want %v", got.OldestCheckIn, want.OldestCheckIn)
	}
}

func wantAutoCheckout(t *testing.T, v *registry.Visit, at time.Time) {
	t.Helper()
	if v == nil || v.CheckOut == nil || !v.CheckOut.Equal(at) || !v.CheckoutAuto {
		t.Errorf("stale visit = %+v, want checked out automatically at %s", v, at)
	}
}

// wantKeysDestroyed checks that exactly the days' key files are gone and
// that the store marks exactly them destroyed.
func wantKeysDestroyed(t *testing.T, e *env, gone []registry.Day) {
	t.Helper()
	stored, err := e.store.EpochKeys(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range stored {
		want := slices.Contains(gone, k.Day)
		if got := k.DestroyedAt != nil; got != want {
			t.Errorf("epoch key %s marked destroyed = %v, want %v", k.Day, got, want)
		}
		if e.keyFile(k.Day) == want {
			t.Errorf("key file of %s exists = %v, want %v", k.Day, !want, !want)
		}
		if _, err := e.keys.Identity(k.Day); want && registry.ErrorCode(err) != registry.ENOTFOUND {
			t.Errorf("Identity(%s) after destruction: err = %v, want ENOTFOUND", k.Day, err)
		}
	}
}

// TestStaffRetention: a year after a trace request closed, its staff
// contact, notes and actors are gone, and so are the names behind the audit
// log's actors of that time; the audit chain still verifies, and the raw
// database file no longer holds the names.
func TestStaffRetention(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var s registry.Store
			if store == "sqlite" {
				s = openSQLite(t)
			} else {
				s = openPostgres(t)
			}
			sc := seed(t, s)
			const contact, note = "Frau Kontaktperson-4711, 0221 555 4711", "Notiz-der-DSB-4711"
			req := &registry.TraceRequest{CaseRef: "GA-1", Office: "Gesundheitsamt", LegalBasis: "§ 25 IfSG", Contact: contact,
				From: sc.now.Add(-3 * time.Hour), To: sc.now.Add(-2 * time.Hour), Sites: []string{"rathaus"}}
			if err := s.CreateTraceRequest(sc.ctx, "dpo:Erika-Namenlos", req); err != nil {
				t.Fatal(err)
			}
			g := storetest.FirstSigner(t, s, sc.now)
			d := g.Decision(req, registry.DecisionReject, time.Time{}, note)
			if _, err := s.DecideTraceRequest(sc.ctx, d, sc.now); err != nil {
				t.Fatal(err)
			}
			// A deputy approver who leaves: with two persons, both endorse.
			bert := storetest.AddSigner(t, s, "Bert Stellvertreter-4711", sc.now, g)
			if _, applied, err := storetest.Propose(t, s, registry.ChangeRemoveKey, "", "", bert.Key.ID(), sc.now, g, bert); err != nil || !applied {
				t.Fatalf("remove the deputy: %v, %v", applied, err)
			}
			sc.purge(sc.now, retention.Options{AllowClockJump: true})
			// Eleven months later nothing is erased yet.
			r := sc.purge(sc.now.Add(330*24*time.Hour), retention.Options{AllowClockJump: true})
			if r.StaffRequestsErased != 0 || r.StaffNamesErased != 0 {
				t.Errorf("after 330 days: erased %d requests, %d names; want none", r.StaffRequestsErased, r.StaffNamesErased)
			}
			if sq, ok := s.(*sqlite.Store); ok {
				if raw, err := os.ReadFile(sq.Path()); err != nil || !bytes.Contains(raw, []byte("Kontaktperson-4711")) {
					t.Fatalf("before the erasure the file does not hold the contact (%v): the scan below proves nothing", err)
				}
			}
			r = sc.purge(sc.now.Add(400*24*time.Hour), retention.Options{AllowClockJump: true})
			// The seed's request expired at the first purge: two closed requests.
			if r.StaffRequestsErased != 2 || r.StaffNamesErased < 2 {
				t.Errorf("after 400 days: erased %d requests, %d names; want 2 and at least the DPO and the approver", r.StaffRequestsErased, r.StaffNamesErased)
			}
			got, err := s.FindTraceRequest(sc.ctx, req.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Contact != "" || got.DecisionNote != "" || got.CreatedBy != "" || got.DecidedBy != "" || got.CaseRef != "GA-1" {
				t.Errorf("request after the staff retention = %+v, want contact, note and actors erased, the case kept", got)
			}
			if _, err := audit.Verify(sc.ctx, s, nil); err != nil {
				t.Errorf("audit log after the erasure: %v", err)
			}
			events, err := s.AuditEvents(sc.ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				if strings.Contains(string(e.Actor), "Namenlos") || strings.Contains(string(e.Actor)+e.Details, "Stellvertreter-4711") {
					t.Errorf("event %d still names %s: %s", e.Seq, e.Actor, e.Details)
				}
			}
			// The former deputy's name is gone, the current approver's
			// stays, and the log still proves the approver set.
			set, err := s.Approvers(sc.ctx)
			if err != nil || len(set.Problems) != 0 {
				t.Fatalf("Approvers() after the erasure: %v, %v", set.Problems, err)
			}
			if b, _ := set.Find(bert.Key.ID()); b == nil || b.Name != "" || b.RemovedAt == nil {
				t.Errorf("the former deputy after the staff retention = %+v, want the name erased", b)
			}
			if a, _ := set.Key(g.Key.ID()); a == nil || a.Name != "Anna DSB" {
				t.Errorf("the active approver after the erasure = %+v", a)
			}
			if sq, ok := s.(*sqlite.Store); ok {
				raw, err := os.ReadFile(sq.Path()) // the purge truncated the WAL into it
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range []string{"Kontaktperson-4711", "Notiz-der-DSB-4711", "Erika-Namenlos", "Stellvertreter-4711"} {
					if bytes.Contains(raw, []byte(secret)) {
						t.Errorf("the database file still holds %q", secret)
					}
				}
			}
		})
	}
}
