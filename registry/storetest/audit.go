package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func testAudit(t *testing.T, s registry.Store) {
	ctx := context.Background()
	_, err := s.LastAudit(ctx, "")
	wantCode(t, err, registry.ENOTFOUND)

	var appended []*registry.AuditEvent
	for i := range 5 {
		action := registry.AuditExportDenied
		if i%2 == 1 {
			action = "checkpoint"
		}
		e := &registry.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Actor: "dpo:anna", Action: action, Subject: "x", Details: `{"i":1}`}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit() = %v", err)
		}
		if e.Seq != int64(i+1) || len(e.Hash) != 32 {
			t.Fatalf("AppendAudit set Seq %d Hash %x, want Seq %d", e.Seq, e.Hash, i+1)
		}
		appended = append(appended, e)
	}
	wantCode(t, s.AppendAudit(ctx, &registry.AuditEvent{Time: t0, Action: "x", Details: `[1]`}), registry.EINVALID)
	wantCode(t, s.AppendAudit(ctx, &registry.AuditEvent{Time: t0, Details: `{}`}), registry.EINVALID)

	tests := []struct {
		name     string
		after    int64
		limit    int
		wantSeqs []int64
	}{
		{"from start", 0, 2, []int64{1, 2}},
		{"middle", 2, 2, []int64{3, 4}},
		{"tail", 4, 10, []int64{5}},
		{"past end", 5, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.AuditEvents(ctx, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, e := range evs {
				seqs = append(seqs, e.Seq)
				if w := appended[e.Seq-1]; string(e.Hash) != string(w.Hash) || !e.Time.Equal(w.Time) || e.Actor != w.Actor {
					t.Errorf("event %d differs from the appended one", e.Seq)
				}
			}
			if len(seqs) != len(tt.wantSeqs) || len(seqs) > 0 && seqs[0] != tt.wantSeqs[0] {
				t.Errorf("AuditEvents(%d, %d) = %v, want %v", tt.after, tt.limit, seqs, tt.wantSeqs)
			}
		})
	}
	for action, want := range map[string]int64{"": 5, registry.AuditExportDenied: 5, "checkpoint": 4} {
		e, err := s.LastAudit(ctx, action)
		if err != nil || e.Seq != want {
			t.Errorf("LastAudit(%q) = %v, %v; want Seq %d", action, e, err, want)
		}
	}
	_, err = s.LastAudit(ctx, registry.AuditPurge)
	wantCode(t, err, registry.ENOTFOUND)
}
