package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func TestNewTraceRequest(t *testing.T) {
	const retention = 28 * 24 * time.Hour
	cutoff := now.Add(-retention)
	valid := func() *registry.TraceInput {
		return &registry.TraceInput{
			CaseRef: "GA-2026-0815", Office: "Gesundheitsamt", LegalBasis: "§ 25 IfSG", Contact: "Frau Beispiel",
			From: now.Add(-48 * time.Hour), To: now.Add(-47 * time.Hour), Sites: []string{"rathaus"},
		}
	}
	tests := []struct {
		name      string
		edit      func(in *registry.TraceInput)
		wantField string
	}{
		{"valid", func(in *registry.TraceInput) {}, ""},
		{"areas", func(in *registry.TraceInput) { in.Areas = []string{"Bürgerbüro", "Standesamt"} }, ""},
		{"window starts at the cutoff", func(in *registry.TraceInput) { in.From = cutoff }, ""},
		{"window starts a second before the cutoff", func(in *registry.TraceInput) { in.From = cutoff.Add(-time.Second) }, "from"},
		{"window ends now", func(in *registry.TraceInput) { in.To = now }, ""},
		{"window ends in the future", func(in *registry.TraceInput) { in.To = now.Add(time.Hour) }, "to"},
		{"empty window", func(in *registry.TraceInput) { in.To = in.From }, "to"},
		{"no from", func(in *registry.TraceInput) { in.From = time.Time{} }, "from"},
		{"no case reference", func(in *registry.TraceInput) { in.CaseRef = " " }, "case_ref"},
		{"no legal basis", func(in *registry.TraceInput) { in.LegalBasis = "" }, "legal_basis"},
		{"no sites", func(in *registry.TraceInput) { in.Sites = nil }, "sites"},
		{"malformed site", func(in *registry.TraceInput) { in.Sites = []string{"Rathaus Mitte"} }, "sites"},
		{"control character in area", func(in *registry.TraceInput) { in.Areas = []string{"a\x00"} }, "areas"},
		{"appointment codes", func(in *registry.TraceInput) { in.Appointments = []string{"t 4711", "T-1000"} }, ""},
		{"malformed appointment code", func(in *registry.TraceInput) { in.Appointments = []string{"T-47"} }, "appointments"},
		{"empty host", func(in *registry.TraceInput) { in.Hosts = []string{" "} }, "hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.edit(in)
			r, err := registry.NewTraceRequest(in, "token:abc", "abc", now, retention)
			if got := registry.ErrorField(err); got != tt.wantField || (tt.wantField == "") != (err == nil) {
				t.Fatalf("NewTraceRequest() = %v; want field %q", err, tt.wantField)
			}
			if err == nil && (r.Status != registry.TracePending || !registry.ValidID(r.ID) || r.OwnerToken != "abc") {
				t.Errorf("request = %+v; want a pending request with an id and its owner", r)
			}
		})
	}
	in := valid()
	in.Appointments = []string{"t 4711", "4712"}
	if r, err := registry.NewTraceRequest(in, "dpo:a", "", now, retention); err != nil || strings.Join(r.Appointments, ",") != "T-4711,T-4712" {
		t.Errorf("codes typed loosely are stored as %v, %v; want T-4711,T-4712", r, err)
	}
	_, err := registry.NewTraceRequest(&registry.TraceInput{CaseRef: "x", Office: "x", LegalBasis: "x", Contact: "x",
		From: cutoff.Add(-time.Hour), To: now.Add(-time.Hour), Sites: []string{"rathaus"}}, "dpo:a", "", now, retention)
	if !strings.Contains(registry.ErrorMessage(err), "retention period of 28 days") {
		t.Errorf("a window beyond retention says %q; want it to name the retention period", registry.ErrorMessage(err))
	}
}
