package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// race runs fn from n goroutines at once and returns their error codes.
func race(n int, fn func(i int) error) map[string]int {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
	)
	for i := range n {
		wg.Go(func() {
			code := registry.ErrorCode(fn(i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

// testConcurrentDecisions checks that racing decisions, exports,
// revocations and check-outs succeed exactly once.
func testConcurrentDecisions(t *testing.T, s registry.Store) {
	ctx := context.Background()
	const n = 4
	want := map[string]int{"": 1, registry.ECONFLICT: n - 1}
	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	an := anna(t, s)
	v := newVisit("rathaus", "", t0.Add(-time.Minute))
	createVisits(t, s, v)
	_, tok := registry.NewToken(registry.RoleIntake, "", "", t0)
	if err := s.CreateToken(ctx, "dpo:anna", tok); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func(i int) error
	}{
		{"decide", func(i int) error {
			_, err := s.DecideTraceRequest(ctx, an.Decision(r, registry.DecisionApprove, t0.Add(time.Hour), ""), t0)
			return err
		}},
		{"export", func(int) error {
			_, err := s.ExportTraceRequest(ctx, office, r.ID, t0, time.Hour, nil, (&recorder{}).build)
			return err
		}},
		{"revoke", func(int) error { return s.RevokeToken(ctx, "dpo:anna", tok.ID, t0) }},
		{"check out", func(int) error { return checkOut(s, v.ID, t0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := race(n, tt.fn); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("outcomes = %v, want %v", got, want)
			}
		})
	}
	wantEvents(t, s, registry.AuditRequestApproved, 1)
	wantEvents(t, s, registry.AuditRequestExported, 1)
	wantEvents(t, s, registry.AuditTokenRevoked, 1)

	codes := race(n, func(i int) error {
		fp := fmt.Sprintf("SHA256:%d", i)
		_, err := s.PinRecipients(ctx, "dpo:anna", fp, []registry.RecipientsSignature{an.RecipientsSignature(fp)})
		return err
	})
	if codes[""] != n {
		t.Errorf("concurrent PinRecipients outcomes = %v, want %d successes", codes, n)
	}
	// Each change records the value it replaced: the chain of old → new
	// values has no gaps.
	prev := ""
	for _, e := range wantEvents(t, s, registry.AuditRecipientsChanged, n) {
		m := details(t, e)
		if m["old"] != prev {
			t.Errorf("recipients.changed old = %v, want %q", m["old"], prev)
		}
		prev, _ = m["new"].(string)
	}
}
