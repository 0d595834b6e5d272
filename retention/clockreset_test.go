package retention_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/retention"
)

func TestClockResetSQLite(t *testing.T)   { testClockReset(t, openSQLite) }
func TestClockResetPostgres(t *testing.T) { testClockReset(t, openPostgres) }

// testClockReset: the last purge ran right; then serve ran with the clock
// three days ahead and registered a visit (its purge was refused, since
// it would have deleted young visits). With the clock right again every
// purge is refused, --allow-clock-jump included, because the log holds
// times after now, so data stays past the statutory period; the DPO's
// reset, audited, lets purges run again at once.
func testClockReset(t *testing.T, open opener) {
	const day = 24 * time.Hour
	s := seed(t, open(t))
	s.purge(s.now.Add(-2*time.Hour), retention.Options{})
	ahead := s.now.Add(3 * day)
	s.ensureKeysAt(ahead)
	stamped := s.register(ahead.Add(-time.Hour), true)

	// The clock is right again, an hour after the seed's now: the visits
	// one second before and after the seed's cutoff have expired.
	right := s.now.Add(time.Hour)
	s.clock.Set(right)
	for _, allow := range []bool{false, true} {
		_, err := s.purger.Purge(s.ctx, retention.Options{AllowClockJump: allow})
		if !retention.IsClockRefusal(err) || !strings.Contains(registry.ErrorMessage(err), "--reset-clock") {
			t.Fatalf("purge with the clock right again (allow jump %v) = %v, want a refusal pointing to --reset-clock", allow, err)
		}
	}
	if s.find(s.old.ID) == nil || s.find(s.kept.ID) == nil {
		t.Fatal("a refused purge deleted a visit")
	}

	// Not confirmed: nothing is recorded, the purge is still refused.
	no := errors.New("not confirmed")
	if _, err := s.purger.ResetClock(s.ctx, "dpo:anna", func(*retention.ClockResetPlan) error { return no }); !errors.Is(err, no) {
		t.Fatalf("ResetClock not confirmed = %v, want the confirmation's error", err)
	}
	if _, err := s.store.LastAudit(s.ctx, registry.AuditClockReset); registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Fatalf("an unconfirmed reset was recorded: %v", err)
	}

	var seen *retention.ClockResetPlan
	plan, err := s.purger.ResetClock(s.ctx, "dpo:anna", func(p *retention.ClockResetPlan) error { seen = p; return nil })
	if err != nil {
		t.Fatalf("ResetClock: %v", err)
	}
	if seen != plan || !plan.Reference.Equal(s.now.Add(-2*time.Hour)) || !plan.Now.Equal(right) || plan.Ahead != 1 || plan.Newest.Before(stamped.CheckIn) {
		t.Errorf("reset plan = %+v, want the last purge as reference, now %s, 1 visit ahead, newest after %s", plan, right, stamped.CheckIn)
	}
	ev, err := s.store.LastAudit(s.ctx, registry.AuditClockReset)
	if err != nil || ev.Actor != "dpo:anna" || !ev.Time.Equal(right) {
		t.Fatalf("clock reset entry = %+v, %v; want one by dpo:anna at %s", ev, err, right)
	}

	// The purge runs at once and deletes what expired meanwhile; the
	// visit stamped ahead keeps its time. Later purges run hour by hour.
	if r := s.purge(right, retention.Options{}); r.VisitsDeleted != 2 || s.find(s.old.ID) != nil || s.find(s.kept.ID) != nil {
		t.Errorf("purge after the reset deleted %d visits, want the 2 that expired", r.VisitsDeleted)
	}
	for h := 2; h <= 4; h++ {
		s.purge(s.now.Add(time.Duration(h)*time.Hour), retention.Options{})
	}
	if s.find(stamped.ID) == nil {
		t.Errorf("the visit stamped by the fast clock was deleted before its stamped time expired")
	}

	// Nothing lies ahead of the last purge any more, but the data does:
	// a second reset is allowed only while data is stamped ahead, and a
	// reset with nothing ahead at all is refused.
	if _, err := audit.Verify(s.ctx, s.store, nil); err != nil {
		t.Errorf("audit log after the reset: %v", err)
	}
	s.clock.Set(ahead.Add(time.Hour))
	s.purge(ahead.Add(time.Hour), retention.Options{AllowClockJump: true})
	if _, err := s.purger.ResetClock(s.ctx, "dpo:anna", func(*retention.ClockResetPlan) error { return nil }); registry.ErrorCode(err) != registry.EINVALID ||
		!strings.Contains(registry.ErrorMessage(err), "nothing to reset") {
		t.Errorf("ResetClock with nothing ahead = %v, want EINVALID nothing to reset", err)
	}
}

// TestClockResetAfterFastPurge: the purge itself ran with the clock ten
// days ahead and is recorded at that time; the reset measures from now.
func TestClockResetAfterFastPurge(t *testing.T) {
	s := seed(t, openSQLite(t))
	ahead := s.now.Add(10 * 24 * time.Hour)
	s.ensureKeysAt(ahead)
	s.purge(ahead, retention.Options{AllowClockJump: true})
	s.clock.Set(s.now)
	if _, err := s.purger.Purge(s.ctx, retention.Options{AllowClockJump: true}); !retention.IsClockRefusal(err) {
		t.Fatalf("Purge after the fast purge = %v, want a clock refusal", err)
	}
	plan, err := s.purger.ResetClock(s.ctx, "dpo:anna", func(*retention.ClockResetPlan) error { return nil })
	if err != nil || !plan.Reference.Equal(ahead) {
		t.Fatalf("ResetClock = %+v, %v; want the fast purge at %s as reference", plan, err, ahead)
	}
	s.purge(s.now, retention.Options{})
	s.purge(s.now.Add(time.Hour), retention.Options{})
}

// TestClockResetBeforeFirstPurge: no purge ran, but data was stored with
// the clock ahead; the reset lets the first purge run.
func TestClockResetBeforeFirstPurge(t *testing.T) {
	s := seed(t, openSQLite(t))
	ahead := s.now.Add(3 * 24 * time.Hour)
	s.ensureKeysAt(ahead)
	s.register(ahead, false)
	s.clock.Set(s.now)
	if _, err := s.purger.Purge(s.ctx, retention.Options{AllowClockJump: true}); !retention.IsClockRefusal(err) {
		t.Fatalf("Purge with data stored ahead = %v, want a clock refusal", err)
	}
	plan, err := s.purger.ResetClock(s.ctx, "dpo:anna", func(*retention.ClockResetPlan) error { return nil })
	if err != nil || !plan.Reference.IsZero() || !plan.Newest.Equal(ahead) || plan.Ahead != 1 {
		t.Fatalf("ResetClock = %+v, %v; want newest %s, no purge as reference", plan, err, ahead)
	}
	if r := s.purge(s.now, retention.Options{}); r.VisitsDeleted != 1 {
		t.Errorf("first purge after the reset deleted %d visits, want 1", r.VisitsDeleted)
	}
}
