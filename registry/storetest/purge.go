package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// purgeFixture is a store state with something for every purge rule.
type purgeFixture struct {
	plan                    registry.PurgePlan
	expired, kept           *registry.Visit // check-in cutoff-1s, cutoff
	stale, fresh, closed    *registry.Visit // open before StaleBefore, open at StaleBefore, closed early
	lapsed, valid           *registry.TraceRequest
	pendingGone, pendingNow *registry.TraceRequest
	days                    []registry.Day
}

func newPurgeFixture(t *testing.T, s registry.Store) *purgeFixture {
	t.Helper()
	now := t0
	f := &purgeFixture{}
	f.plan = registry.PurgePlan{
		Now: now, Cutoff: now.Add(-28 * 24 * time.Hour), StaleBefore: now.Add(-12 * time.Hour), MaxStay: 12 * time.Hour,
	}
	cutoff := f.plan.Cutoff
	f.expired = newVisit("rathaus", "", cutoff.Add(-time.Second))
	f.expired.CheckOut = timePtr(cutoff.Add(time.Hour))
	f.kept = newVisit("rathaus", "", cutoff)
	f.kept.CheckOut = timePtr(cutoff.Add(time.Hour))
	f.stale = newVisit("rathaus", "", f.plan.StaleBefore.Add(-time.Second))
	f.fresh = newVisit("rathaus", "", f.plan.StaleBefore)
	f.closed = newVisit("bibliothek", "", cutoff.Add(time.Hour))
	f.closed.CheckOut = timePtr(cutoff.Add(90 * time.Minute))
	createVisits(t, s, f.expired, f.kept, f.stale, f.fresh, f.closed)

	f.lapsed = newRequest(t, s, "office", now.Add(-80*time.Hour), now.Add(-100*time.Hour), now.Add(-99*time.Hour), []string{"rathaus"}, nil)
	approve(t, s, f.lapsed.ID, now.Add(-72*time.Hour), now)
	f.valid = newRequest(t, s, "office", now.Add(-80*time.Hour), now.Add(-100*time.Hour), now.Add(-99*time.Hour), []string{"rathaus"}, nil)
	approve(t, s, f.valid.ID, now.Add(-72*time.Hour), now.Add(time.Second))
	f.pendingGone = newRequest(t, s, "office", now, cutoff.Add(-time.Hour), cutoff, []string{"rathaus"}, nil)
	f.pendingNow = newRequest(t, s, "office", now, cutoff.Add(-time.Hour), cutoff.Add(time.Second), []string{"rathaus"}, nil)

	old := registry.DayOf(cutoff).AddDays(-1)
	f.days = []registry.Day{old.AddDays(-1), old, registry.DayOf(cutoff)}
	var keys []*registry.EpochKey
	for _, d := range f.days {
		keys = append(keys, &registry.EpochKey{Day: d, Recipient: "age1" + string(d), CreatedAt: d.Start()})
	}
	if err := s.AddEpochKeys(context.Background(), registry.ActorSystem, keys); err != nil {
		t.Fatal(err)
	}
	f.plan.Destroyed = f.days[:2]
	return f
}

// wantReport is the report the fixture's plan must produce.
func (f *purgeFixture) wantReport(dryRun bool) *registry.PurgeReport {
	oldest := f.kept.CheckIn
	return &registry.PurgeReport{
		RanAt: f.plan.Now, DryRun: dryRun, Cutoff: f.plan.Cutoff, VisitsDeleted: 1, KeysDestroyed: f.days[:2],
		VisitsAutoCheckedOut: 1, RequestsExpired: 2, VisitsRemaining: 4, OldestCheckIn: &oldest,
	}
}

func purge(t *testing.T, s registry.Store, p registry.PurgePlan) *registry.PurgeReport {
	t.Helper()
	rep, err := s.Purge(context.Background(), "dpo:anna", p)
	if err != nil {
		t.Fatalf("Purge() = %v", err)
	}
	return rep
}

func wantSameReport(t *testing.T, got, want *registry.PurgeReport) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("report = %s,\nwant %s", g, w)
	}
}

func testPurge(t *testing.T, s registry.Store) {
	ctx := context.Background()
	f := newPurgeFixture(t, s)
	rep := purge(t, s, f.plan)
	wantSameReport(t, rep, f.wantReport(false))

	_, err := s.FindVisit(ctx, f.expired.ID)
	wantCode(t, err, registry.ENOTFOUND)
	stale := findVisit(t, s, f.stale.ID)
	if want := f.stale.CheckIn.Add(f.plan.MaxStay); stale.CheckOut == nil || !stale.CheckOut.Equal(want) || !stale.CheckoutAuto {
		t.Errorf("stale visit: CheckOut %v auto %v, want %v auto", stale.CheckOut, stale.CheckoutAuto, want)
	}
	for _, v := range []*registry.Visit{f.kept, f.fresh, f.closed} {
		got := findVisit(t, s, v.ID)
		if !equalTimePtr(got.CheckOut, v.CheckOut) || got.CheckoutAuto {
			t.Errorf("visit at %v: CheckOut %v auto %v, want unchanged %v", v.CheckIn, got.CheckOut, got.CheckoutAuto, v.CheckOut)
		}
	}
	wantStatus := map[*registry.TraceRequest]registry.TraceStatus{
		f.lapsed: registry.TraceExpired, f.valid: registry.TraceApproved,
		f.pendingGone: registry.TraceExpired, f.pendingNow: registry.TracePending,
	}
	for r, want := range wantStatus {
		if got, err := s.FindTraceRequest(ctx, r.ID); err != nil || got.Status != want {
			t.Errorf("request status = %v (%v), want %v", got.Status, err, want)
		}
	}
	keys, err := s.EpochKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if destroyed := i < 2; destroyed != (k.DestroyedAt != nil) || destroyed && !k.DestroyedAt.Equal(f.plan.Now) {
			t.Errorf("key %s DestroyedAt = %v, want destroyed %v at %v", k.Day, k.DestroyedAt, destroyed, f.plan.Now)
		}
	}
	ev := wantEvents(t, s, registry.AuditPurge, 1)[0]
	var logged registry.PurgeReport
	if err := json.Unmarshal([]byte(ev.Details), &logged); err != nil || ev.Actor != "dpo:anna" || !ev.Time.Equal(f.plan.Now) {
		t.Fatalf("purge event = %+v (%v)", ev, err)
	}
	wantSameReport(t, &logged, rep)

	second := purge(t, s, f.plan)
	want := f.wantReport(false)
	want.VisitsDeleted, want.VisitsAutoCheckedOut, want.RequestsExpired = 0, 0, 0
	wantSameReport(t, second, want)
	wantEvents(t, s, registry.AuditPurge, 2)
}

func testPurgeDryRun(t *testing.T, s registry.Store) {
	ctx := context.Background()
	f := newPurgeFixture(t, s)
	before := allEvents(t, s)
	plan := f.plan
	plan.DryRun = true
	wantSameReport(t, purge(t, s, plan), f.wantReport(true))

	if after := allEvents(t, s); !reflect.DeepEqual(after, before) {
		t.Errorf("dry run changed the audit log: %d events, want %d", len(after), len(before))
	}
	for _, v := range []*registry.Visit{f.expired, f.stale} {
		if got := findVisit(t, s, v.ID); got.CheckOut != nil && v.CheckOut == nil || got.CheckoutAuto {
			t.Errorf("dry run changed visit at %v", v.CheckIn)
		}
	}
	if got, _ := s.FindTraceRequest(ctx, f.lapsed.ID); got.Status != registry.TraceApproved {
		t.Errorf("dry run expired a request: %v", got.Status)
	}
	keys, _ := s.EpochKeys(ctx)
	for _, k := range keys {
		if k.DestroyedAt != nil {
			t.Errorf("dry run marked key %s destroyed", k.Day)
		}
	}
	// The real run still finds everything to do.
	wantSameReport(t, purge(t, s, f.plan), f.wantReport(false))
}
