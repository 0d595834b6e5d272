// Package storetest is the conformance suite every registry.Store passes.
// An adapter's test calls Run with a function that opens a fresh, empty
// store; every subtest gets its own store and checks the audit chain when
// it ends.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// Run runs the conformance suite against stores made by open. open must
// return a fresh, empty store and close it in a t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) registry.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s registry.Store)
	}{
		{"Ping", testPing},
		{"CreateFindVisits", testCreateFindVisits},
		{"IdempotentReplay", testIdempotentReplay},
		{"DuplicateVisitID", testDuplicateVisitID},
		{"ConcurrentCreateVisits", testConcurrentCreateVisits},
		{"ConcurrentDecisions", testConcurrentDecisions},
		{"CheckOutVisit", testCheckOutVisit},
		{"CheckOutVisits", testCheckOutVisits},
		{"CloseVisits", testCloseVisits},
		{"OpenVisits", testOpenVisits},
		{"Sites", testSites},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"AuditPerActor", testAuditPerActor},
		{"Tokens", testTokens},
		{"EpochKeys", testEpochKeys},
		{"PinRecipients", testPinRecipients},
		{"TraceRequests", testTraceRequests},
		{"DecideTraceRequest", testDecideTraceRequest},
		{"LetterRequest", testLetterRequest},
		{"Approvers", testApprovers},
		{"LastApprover", testLastApprover},
		{"OnePersonTwoKeys", testOnePersonTwoKeys},
		{"NarrowWithdraw", testNarrowWithdraw},
		{"Appointments", testAppointments},
		{"ImportAppointments", testImportAppointments},
		{"ScopeByHost", testScopeByHost},
		{"ExportTraceRequest", testExportTraceRequest},
		{"ExportScope", testExportScope},
		{"ExportAreas", testExportAreas},
		{"IndexScope", testIndexScope},
		{"Purge", testPurge},
		{"PurgeDryRun", testPurgeDryRun},
		{"Audit", testAudit},
		{"Alerts", testAlerts},
		{"FindAudit", testFindAudit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { checkChain(t, s) })
			tt.fn(t, s)
		})
	}
}

// t0 is the suite's reference time: a Monday at 10:00 UTC.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func testPing(t *testing.T, s registry.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping() = %v, want nil", err)
	}
}

// newVisit returns a visit with a random sealed payload.
func newVisit(site, area string, checkIn time.Time) *registry.Visit {
	sealed := make([]byte, 64)
	rand.Read(sealed)
	return &registry.Visit{
		ID: registry.NewVisitID(checkIn), Site: site, Area: area, CheckIn: checkIn,
		Epoch: registry.DayOf(checkIn), Sealed: sealed, CreatedAt: checkIn,
	}
}

// createVisits stores each visit as a party of its own, in one batch.
func createVisits(t *testing.T, s registry.Store, visits ...*registry.Visit) {
	t.Helper()
	parties := make([]*registry.Party, len(visits))
	for i, v := range visits {
		parties[i] = party("token:intake", nil, v)
	}
	createParties(t, s, parties...)
}

func createParties(t *testing.T, s registry.Store, parties ...*registry.Party) {
	t.Helper()
	if err := s.CreateParties(context.Background(), parties); err != nil {
		t.Fatalf("CreateParties() = %v", err)
	}
}

func findVisit(t *testing.T, s registry.Store, id string) *registry.Visit {
	t.Helper()
	v, err := s.FindVisit(context.Background(), id)
	if err != nil {
		t.Fatalf("FindVisit(%s) = %v", id, err)
	}
	return v
}

// wantCode fails unless err carries the registry error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := registry.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// allEvents returns the whole audit log.
func allEvents(t *testing.T, s registry.Store) []*registry.AuditEvent {
	t.Helper()
	var all []*registry.AuditEvent
	for {
		after := int64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := s.AuditEvents(context.Background(), after, 100)
		if err != nil {
			t.Fatalf("AuditEvents() = %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// eventsOf returns the audit events with the action.
func eventsOf(t *testing.T, s registry.Store, action string) []*registry.AuditEvent {
	t.Helper()
	var out []*registry.AuditEvent
	for _, e := range allEvents(t, s) {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// wantEvents fails unless the log holds n events with the action.
func wantEvents(t *testing.T, s registry.Store, action string, n int) []*registry.AuditEvent {
	t.Helper()
	evs := eventsOf(t, s, action)
	if len(evs) != n {
		t.Fatalf("%d %q audit events, want %d", len(evs), action, n)
	}
	return evs
}

// checkChain verifies that the audit log is gapless and hash-linked.
func checkChain(t *testing.T, s registry.Store) {
	t.Helper()
	prev := registry.GenesisHash
	for i, e := range allEvents(t, s) {
		if e.Seq != int64(i+1) {
			t.Fatalf("audit event %d has Seq %d", i+1, e.Seq)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("audit event %d: PrevHash does not link to its predecessor", e.Seq)
		}
		if !bytes.Equal(e.Hash, e.ComputeHash()) {
			t.Fatalf("audit event %d: Hash != ComputeHash()", e.Seq)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(e.Details), &obj); err != nil || obj == nil {
			t.Fatalf("audit event %d: details %q are not a JSON object", e.Seq, e.Details)
		}
		prev = e.Hash
	}
}

// details decodes an event's details.
func details(t *testing.T, e *registry.AuditEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Details), &m); err != nil {
		t.Fatalf("details of event %d: %v", e.Seq, err)
	}
	return m
}

func timePtr(t time.Time) *time.Time { return &t }

func equalTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// SeedOneVisit stores one visit, for tests of the files a write creates.
func SeedOneVisit(t *testing.T, s registry.Store) {
	t.Helper()
	createVisits(t, s, newVisit("rathaus", "", t0))
}
