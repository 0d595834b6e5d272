package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// testAlerts: an alert is raised once per key, is due until closed, and
// keeps its delivery state.
func testAlerts(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := &registry.Alert{Key: "request.new:R1", Audience: "dpo", Subject: "Neue Anfrage", Text: "Aktenzeichen GA-1", Link: "https://r.example/dpo/requests/R1", CreatedAt: t0}
	if ok, err := s.RaiseAlert(ctx, a); err != nil || !ok {
		t.Fatalf("RaiseAlert() = %v, %v, want true, nil", ok, err)
	}
	if ok, err := s.RaiseAlert(ctx, &registry.Alert{Key: "request.new:R1", Audience: "dpo", Subject: "again", CreatedAt: t0}); err != nil || ok {
		t.Fatalf("RaiseAlert(same key) = %v, %v, want false, nil", ok, err)
	}
	if due, err := s.PendingAlerts(ctx, t0.Add(-time.Second), 10); err != nil || len(due) != 0 {
		t.Fatalf("PendingAlerts(before) = %d, %v, want none", len(due), err)
	}
	due, err := s.PendingAlerts(ctx, t0, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("PendingAlerts() = %d, %v, want 1", len(due), err)
	}
	got := due[0]
	if got.Kind != "request.new" || got.Subject != "Neue Anfrage" || got.Link != a.Link || !got.CreatedAt.Equal(t0) || !got.For("dpo") || got.For("it") {
		t.Fatalf("alert = %+v", got)
	}
	got.Delivered, got.Attempts, got.NextAt, got.LastError = []string{"mail:dpo"}, 1, t0.Add(time.Minute), "webhook 1: answered 500"
	if err := s.UpdateAlert(ctx, got); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.PendingAlerts(ctx, t0.Add(30*time.Second), 10); len(due) != 0 {
		t.Fatalf("PendingAlerts(before retry) = %d, want 0", len(due))
	}
	closed := t0.Add(2 * time.Minute)
	got.Delivered, got.Attempts, got.ClosedAt, got.LastError = []string{"mail:dpo", "webhook:1"}, 2, &closed, ""
	if err := s.UpdateAlert(ctx, got); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.PendingAlerts(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("PendingAlerts(closed) = %d, want 0", len(due))
	}
	list, err := s.Alerts(ctx, 10)
	if err != nil || len(list) != 1 || len(list[0].Delivered) != 2 || list[0].ClosedAt == nil || !list[0].ClosedAt.Equal(closed) {
		t.Fatalf("Alerts() = %+v, %v", list, err)
	}
}

// testFindAudit: events by action and time, oldest or newest first.
func testFindAudit(t *testing.T, s registry.Store) {
	ctx := context.Background()
	for i, what := range []string{"request.show", "list.day", "request.show"} {
		ev, err := registry.NewAuditEvent(t0.Add(time.Duration(i)*time.Hour), registry.ActorSystem, "s", registry.Access{What: what, Rows: i})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.FindAudit(ctx, registry.AuditFilter{Actions: []string{registry.AuditAccess}, Limit: 10})
	if err != nil || len(all) != 3 || all[0].Seq > all[2].Seq {
		t.Fatalf("FindAudit(all) = %d events, %v", len(all), err)
	}
	got, err := s.FindAudit(ctx, registry.AuditFilter{Actions: []string{registry.AuditAccess}, From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Limit: 10})
	if err != nil || len(got) != 1 || !got[0].Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("FindAudit(window) = %+v, %v", got, err)
	}
	newest, err := s.FindAudit(ctx, registry.AuditFilter{Actions: []string{registry.AuditAccess, registry.AuditPurge}, Newest: true, Limit: 1})
	if err != nil || len(newest) != 1 || newest[0].Seq != all[2].Seq {
		t.Fatalf("FindAudit(newest) = %+v, %v", newest, err)
	}
	page, err := s.FindAudit(ctx, registry.AuditFilter{Actions: []string{registry.AuditAccess}, AfterSeq: all[0].Seq, Limit: 1})
	if err != nil || len(page) != 1 || page[0].Seq != all[1].Seq {
		t.Fatalf("FindAudit(after the first) = %+v, %v, want the second", page, err)
	}
	if _, err := s.FindAudit(ctx, registry.AuditFilter{Limit: 1}); registry.ErrorCode(err) != registry.EINVALID {
		t.Fatalf("FindAudit(no action) = %v, want EINVALID", err)
	}
}
