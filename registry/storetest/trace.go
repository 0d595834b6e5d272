package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

const office registry.Actor = "token:office"

// newRequest files a pending request over the window at the sites.
func newRequest(t *testing.T, s registry.Store, owner string, createdAt, from, to time.Time, sites, areas []string) *registry.TraceRequest {
	t.Helper()
	r := &registry.TraceRequest{
		ID: registry.NewID(), CaseRef: "GA-2026-0042", Office: "Gesundheitsamt Musterstadt",
		LegalBasis: "§ 25 IfSG", Contact: "Frau Beispiel", From: from, To: to, Sites: sites, Areas: areas,
		OwnerToken: owner, CreatedBy: registry.TokenActor(owner), CreatedAt: createdAt,
	}
	if err := s.CreateTraceRequest(context.Background(), registry.TokenActor(owner), r); err != nil {
		t.Fatalf("CreateTraceRequest() = %v", err)
	}
	return r
}

func approve(t *testing.T, s registry.Store, id string, now, expires time.Time) *registry.TraceRequest {
	t.Helper()
	r, err := s.DecideTraceRequest(context.Background(), "dpo:anna", id, registry.Decision{Approve: true, Note: "ok", Now: now, ExpiresAt: expires})
	if err != nil {
		t.Fatalf("DecideTraceRequest() = %v", err)
	}
	return r
}

func testTraceRequests(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newRequest(t, s, "office1", t0, t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), []string{"rathaus"}, nil)
	b := newRequest(t, s, "office2", t0.Add(time.Minute), t0.Add(-2*time.Hour), t0, []string{"rathaus", "bibliothek"}, []string{"lesesaal"})
	c := newRequest(t, s, "office1", t0.Add(2*time.Minute), t0.Add(-2*time.Hour), t0, []string{"bibliothek"}, nil)
	approve(t, s, c.ID, t0.Add(time.Hour), t0.Add(73*time.Hour))

	for _, want := range []*registry.TraceRequest{a, b} {
		got, err := s.FindTraceRequest(ctx, want.ID)
		if err != nil {
			t.Fatalf("FindTraceRequest() = %v", err)
		}
		if want.Status != registry.TracePending || !reflect.DeepEqual(got, want) {
			t.Errorf("FindTraceRequest() = %+v,\nwant %+v", got, want)
		}
	}
	_, err := s.FindTraceRequest(ctx, registry.NewID())
	wantCode(t, err, registry.ENOTFOUND)

	tests := []struct {
		name   string
		filter registry.TraceFilter
		want   []string
	}{
		{"all newest first", registry.TraceFilter{}, []string{c.ID, b.ID, a.ID}},
		{"pending", registry.TraceFilter{Status: registry.TracePending}, []string{b.ID, a.ID}},
		{"owner", registry.TraceFilter{OwnerToken: "office1"}, []string{c.ID, a.ID}},
		{"owner and status", registry.TraceFilter{OwnerToken: "office1", Status: registry.TraceApproved}, []string{c.ID}},
		{"none", registry.TraceFilter{Status: registry.TraceExported}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.TraceRequests(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range list {
				ids = append(ids, r.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("TraceRequests(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		})
	}
	evs := wantEvents(t, s, registry.AuditRequestCreated, 3)
	if evs[0].Subject != a.ID || evs[0].Actor != "token:office1" {
		t.Errorf("request.created subject %q actor %q", evs[0].Subject, evs[0].Actor)
	}
}

func testDecideTraceRequest(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	b := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	now, exp := t0.Add(time.Hour), t0.Add(73*time.Hour)
	tests := []struct {
		name  string
		actor registry.Actor
		id    string
		d     registry.Decision
		code  string
	}{
		{"creator approves", a.CreatedBy, a.ID, registry.Decision{Approve: true, Now: now, ExpiresAt: exp}, registry.EFORBIDDEN},
		{"expiry not after now", "dpo:anna", a.ID, registry.Decision{Approve: true, Now: now, ExpiresAt: now}, registry.EINVALID},
		{"approve", "dpo:anna", a.ID, registry.Decision{Approve: true, Note: "case confirmed", Now: now, ExpiresAt: exp}, ""},
		{"approve again", "dpo:bert", a.ID, registry.Decision{Approve: true, Now: now, ExpiresAt: exp}, registry.ECONFLICT},
		{"reject", "dpo:anna", b.ID, registry.Decision{Note: "no legal basis", Now: now}, ""},
		{"reject again", "dpo:anna", b.ID, registry.Decision{Now: now}, registry.ECONFLICT},
		{"unknown", "dpo:anna", registry.NewID(), registry.Decision{Now: now}, registry.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.DecideTraceRequest(ctx, tt.actor, tt.id, tt.d)
			wantCode(t, err, tt.code)
		})
	}
	got, err := s.FindTraceRequest(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != registry.TraceApproved || got.DecidedBy != "dpo:anna" || !equalTimePtr(got.DecidedAt, &now) ||
		!equalTimePtr(got.ExpiresAt, &exp) || got.DecisionNote != "case confirmed" {
		t.Errorf("approved request = %+v", got)
	}
	if got, _ := s.FindTraceRequest(ctx, b.ID); got.Status != registry.TraceRejected || got.ExpiresAt != nil {
		t.Errorf("rejected request = %+v", got)
	}
	if ev := wantEvents(t, s, registry.AuditRequestApproved, 1)[0]; ev.Subject != a.ID || ev.Actor != "dpo:anna" {
		t.Errorf("request.approved subject %q actor %q", ev.Subject, ev.Actor)
	}
	if ev := wantEvents(t, s, registry.AuditRequestRejected, 1)[0]; ev.Subject != b.ID {
		t.Errorf("request.rejected subject %q, want %q", ev.Subject, b.ID)
	}
}

// recorder is an ExportFunc that keeps what it was given.
type recorder struct {
	visits []*registry.Visit
	calls  int
	err    error
}

// build records the visits it is handed and checks the count it is told.
func (r *recorder) build(_ *registry.TraceRequest, count int, visits iter.Seq2[*registry.Visit, error]) (string, error) {
	r.calls++
	r.visits = nil
	for v, err := range visits {
		if err != nil {
			return "", err
		}
		r.visits = append(r.visits, v)
	}
	if len(r.visits) != count {
		return "", fmt.Errorf("build told %d visits, handed %d", count, len(r.visits))
	}
	return "d1gest", r.err
}

func testExportTraceRequest(t *testing.T, s registry.Store) {
	ctx := context.Background()
	createVisits(t, s, newVisit("rathaus", "", t0.Add(-30*time.Minute)), newVisit("rathaus", "", t0.Add(-20*time.Minute)))
	pending := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	rejected := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	if _, err := s.DecideTraceRequest(ctx, "dpo:anna", rejected.ID, registry.Decision{Now: t0}); err != nil {
		t.Fatal(err)
	}
	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	exp := t0.Add(72 * time.Hour)
	approve(t, s, r.ID, t0, exp)

	failing := &recorder{err: errors.New("disk full")}
	tests := []struct {
		name  string
		id    string
		now   time.Time
		build *recorder
		code  string
	}{
		{"pending", pending.ID, t0, &recorder{}, registry.EFORBIDDEN},
		{"rejected", rejected.ID, t0, &recorder{}, registry.EFORBIDDEN},
		{"expired approval", r.ID, exp, &recorder{}, registry.EFORBIDDEN},
		{"unknown", registry.NewID(), t0, &recorder{}, registry.ENOTFOUND},
		{"build fails", r.ID, t0.Add(time.Hour), failing, registry.EINTERNAL},
		{"export", r.ID, exp.Add(-time.Microsecond), &recorder{}, ""},
		{"second export", r.ID, exp.Add(-time.Microsecond), &recorder{}, registry.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ExportTraceRequest(ctx, office, tt.id, tt.now, 12*time.Hour, tt.build.build)
			wantCode(t, err, tt.code)
			if err == nil && (got.Status != registry.TraceExported || got.ExportCount != 2 || got.ExportDigest != "d1gest") {
				t.Errorf("ExportTraceRequest() = %+v", got)
			}
			if err == nil && len(tt.build.visits) != 2 {
				t.Errorf("build got %d visits, want 2", len(tt.build.visits))
			}
			if tt.build.err != nil && !errors.Is(err, tt.build.err) {
				t.Errorf("error = %v, want it to wrap the build error", err)
			}
			if err != nil && tt.code != registry.EINTERNAL && tt.build.calls != 0 {
				t.Errorf("build called for a refused export")
			}
		})
	}
	got, err := s.FindTraceRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := exp.Add(-time.Microsecond); got.Status != registry.TraceExported || !equalTimePtr(got.ExportedAt, &want) ||
		got.ExportCount != 2 || got.ExportDigest != "d1gest" {
		t.Errorf("exported request = %+v", got)
	}
	ev := wantEvents(t, s, registry.AuditRequestExported, 1)[0] // the failed build recorded nothing
	if m := details(t, ev); ev.Subject != r.ID || ev.Actor != office || m["count"] != 2.0 || m["digest"] != "d1gest" {
		t.Errorf("request.exported event = %+v", ev)
	}
}
