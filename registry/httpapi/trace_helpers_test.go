package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/storetest"
)

// traceEnv is a server with two health-office tokens and visits registered
// in and out of the scope of traceInput's window.
type traceEnv struct {
	*testServer
	office, other       string // token secrets: the filing office, another office
	officeTok, otherTok *registry.Token
	inScope             []string          // ids of visits the export must hold
	tags                []string          // canary tags of every registered visit
	signer              *storetest.Signer // the DPO's approver key, registered on first use
}

// The window of traceInput: two hours ending an hour before the clock's
// start; every visit below lies in the same UTC day.
var (
	windowFrom = intaketest.Start.Add(-3 * time.Hour)
	windowTo   = intaketest.Start.Add(-1 * time.Hour)
)

// scopeVisit is a visit the fixture registers.
type scopeVisit struct {
	tag         string
	site, area  string
	in          time.Duration  // check-in relative to intaketest.Start
	out         *time.Duration // check-out relative to Start; nil: still open
	wantInScope bool
}

func ptr(d time.Duration) *time.Duration { return &d }

var scopeVisits = []scopeVisit{
	{"InOpen", "rathaus", "Saal 1", -150 * time.Minute, nil, true},
	{"InLeft", "rathaus", "Saal 1", -4 * time.Hour, ptr(-150 * time.Minute), true},
	{"InOther", "rathaus", "Foyer", -2 * time.Hour, ptr(-90 * time.Minute), true},
	{"OutBefore", "rathaus", "Saal 1", -5 * time.Hour, ptr(-4 * time.Hour), false},
	{"OutAfter", "rathaus", "Saal 1", -30 * time.Minute, nil, false},
	{"OutSite", "bibliothek", "Saal 1", -2 * time.Hour, nil, false},
	{"OutArea", "rathaus", "Saal 2", -2 * time.Hour, nil, false},
}

// newTraceEnv registers scopeVisits through the intake API on s.
func newTraceEnv(t *testing.T, s *testServer) *traceEnv {
	t.Helper()
	e := &traceEnv{testServer: s}
	e.office, e.officeTok = s.Token(t, registry.RoleHealthOffice, "")
	e.other, e.otherTok = s.Token(t, registry.RoleHealthOffice, "")
	for _, v := range scopeVisits {
		id := e.registerAt(t, v)
		e.tags = append(e.tags, v.tag)
		if v.wantInScope {
			e.inScope = append(e.inScope, id)
		}
	}
	slices.Sort(e.inScope)
	return e
}

// registerAt registers v with its check-in and, if set, its check-out.
func (e *traceEnv) registerAt(t *testing.T, v scopeVisit) string {
	t.Helper()
	reg := intaketest.Registration(v.tag)
	reg.Site, reg.Area = v.site, v.area
	in := intaketest.Start.Add(v.in)
	reg.CheckIn = &in
	r := e.register(t, regJSON(t, reg), "")
	wantStatus(t, r, 201)
	c := r.created(t)
	if v.out != nil {
		body := fmt.Sprintf(`{"check_out":%q}`, intaketest.Start.Add(*v.out).Format(time.RFC3339))
		r = e.do(t, request{method: "POST", path: "/v1/visits/" + c.ID + "/checkout",
			header: hdr("Authorization", "Bearer "+c.CheckoutToken, "Content-Type", "application/json"), body: body})
		wantStatus(t, r, 204)
	}
	return c.ID
}

// traceInput is a request for rathaus, areas Saal 1 and Foyer, in the
// window.
func traceInput() *registry.TraceInput {
	return &registry.TraceInput{
		CaseRef: "GA-53/2025 Ä-117", Office: "Gesundheitsamt Musterstadt", LegalBasis: "§ 25 IfSG i.V.m. § 28a Abs. 4 IfSG",
		Contact: "Frau Beispiel, 0231 123-0", From: windowFrom, To: windowTo,
		Sites: []string{"rathaus"}, Areas: []string{"Saal 1", "Foyer"},
	}
}

// as sends a request with the token secret.
func (e *traceEnv) as(t *testing.T, secret, method, path, body string) *response {
	t.Helper()
	h := hdr("Authorization", "Bearer "+secret)
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	return e.do(t, request{method: method, path: path, header: h, body: body})
}

// file files in with the secret and returns the new request's id.
func (e *traceEnv) file(t *testing.T, secret string, in *registry.TraceInput) string {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	r := e.as(t, secret, "POST", "/v1/trace-requests", string(b))
	wantStatus(t, r, 201)
	var got struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	if !registry.ValidID(got.ID) || got.Status != "pending" {
		t.Errorf("answer = %+v, want an id and status pending", got)
	}
	if loc, want := r.header.Get("Location"), "/v1/trace-requests/"+got.ID; loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	return got.ID
}

// approver returns the DPO's approver key, registering it on first use.
func (e *traceEnv) approver(t *testing.T) *storetest.Signer {
	t.Helper()
	if e.signer == nil {
		e.signer = storetest.FirstSigner(t, e.Store, e.Clock.Now())
	}
	return e.signer
}

// approve approves id as the DPO, expiring after 72 hours.
func (e *traceEnv) approve(t *testing.T, id string) *registry.TraceRequest {
	t.Helper()
	now := e.Clock.Now()
	return storetest.Approve(t, e.Store, id, now, now.Add(72*time.Hour), e.approver(t))
}

// trust is what the health office pinned: the instance key and the DPO's.
func (e *traceEnv) trust(t *testing.T) *export.Trust {
	g := e.approver(t)
	return &export.Trust{Instance: e.Instance.Public(), Approvers: map[string]export.TrustedApprover{
		g.Key.ID(): {Name: g.Approver.Name, Person: g.Approver.Person, Key: g.Key.PublicKey()}}}
}

// view gets id with the secret and decodes the answer strictly.
func (e *traceEnv) view(t *testing.T, secret, id string) map[string]any {
	t.Helper()
	r := e.as(t, secret, "GET", "/v1/trace-requests/"+id, "")
	wantStatus(t, r, 200)
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

// wantDenied checks that the newest audit event records a denied export
// of subject by actor for reason.
func (e *traceEnv) wantDenied(t *testing.T, actor registry.Actor, subject, reason string) {
	t.Helper()
	ev, err := e.Store.LastAudit(context.Background(), "")
	if err != nil {
		t.Fatalf("last audit event: %v", err)
	}
	if ev.Action != registry.AuditExportDenied || ev.Actor != actor || ev.Subject != subject ||
		!strings.Contains(ev.Details, reason) {
		t.Errorf("last audit event = %s %s %q %s, want %s %s %q reason %s",
			ev.Action, ev.Actor, ev.Subject, ev.Details, registry.AuditExportDenied, actor, subject, reason)
	}
}

// wantNoContact fails if body holds any canary of the registered visits.
func (e *traceEnv) wantNoContact(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, tag := range e.tags {
		if bytes.Contains(body, []byte(tag)) {
			t.Errorf("%s holds contact data of visit %s: %q", what, tag, body)
		}
	}
}
