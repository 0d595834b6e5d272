package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
)

// events returns the audit events of the action.
func (s *testServer) events(t *testing.T, action string) []*registry.AuditEvent {
	t.Helper()
	evs, err := s.Store.AuditEvents(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*registry.AuditEvent
	for _, e := range evs {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// TestFailedSignInsAreAudited: every failed desk sign-in is an audit
// entry, with the account when the login names one, and never what was
// typed.
func TestFailedSignInsAreAudited(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	c := newDeskClient(t, s)
	tries := []struct{ login, password, reason string }{
		{"niemand", "Geheim-Versuch-1", "unknown login"},
		{"pforte", "Geheim-Versuch-2", "password"},
		{"Geheim Versuch 3", "x", "unknown login"}, // a password typed into the login field
	}
	for _, try := range tries {
		if resp := c.signIn(try.login, try.password); resp.StatusCode != 401 {
			t.Fatalf("sign-in %q: %d", try.login, resp.StatusCode)
		}
	}
	u, _ := s.Store.User(t.Context(), "pforte")
	u.DisabledAt = new(s.Clock.Now())
	if err := s.Store.UpdateUser(t.Context(), "dpo:it", u, "disabled"); err != nil {
		t.Fatal(err)
	}
	if resp := c.signIn("pforte", pw); resp.StatusCode != 401 {
		t.Fatalf("disabled account: %d", resp.StatusCode)
	}
	tries = append(tries, struct{ login, password, reason string }{"pforte", pw, "disabled"})

	evs := s.events(t, registry.AuditSignInFailed)
	if len(evs) != len(tries) {
		t.Fatalf("%d signin.failed entries, want %d", len(evs), len(tries))
	}
	all, _ := s.Store.AuditEvents(t.Context(), 0, 10000)
	for i, e := range evs {
		var p registry.SignInFailed
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil || p.Reason != tries[i].reason || e.Actor != registry.ActorAnonymous {
			t.Errorf("entry %d = %s by %s, want reason %q by anonymous", i, e.Details, e.Actor, tries[i].reason)
		}
		if named := tries[i].login == "pforte"; named != strings.HasPrefix(e.Subject, "actor:") {
			t.Errorf("entry %d subject %q: want the account's commitment exactly when the login names one", i, e.Subject)
		}
	}
	for _, e := range all {
		for _, secret := range []string{"Geheim", "niemand", pw} {
			if strings.Contains(e.Details+e.Subject+string(e.Actor), secret) {
				t.Errorf("the audit log holds what was typed (%q): %+v", secret, e)
			}
		}
	}
}

// TestListViewsAreAudited: the desk's and host's lists are audit entries
// with counts, site and day, never what they show; a list that refreshes
// itself is recorded once per quarter hour.
func TestListViewsAreAudited(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	a := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", s.Clock.Now().Add(10*time.Minute))
	reg := intaketest.Registration("views")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", a.Code
	wantStatus(t, s.register(t, regJSON(t, reg), ""), 201)

	desk := newDeskClient(t, s)
	desk.signIn("pforte", pw)
	for _, path := range []string{"/desk/rathaus/present", "/desk/rathaus/present", "/desk/rathaus/day", "/desk/rathaus/close"} {
		if status, _ := desk.page("GET", path, nil); status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
	}
	const hostPW = "Standesamt-Roth-2026"
	host := &registry.User{Login: "roth", Name: "Frau Roth", Role: registry.UserHost, Host: "Standesamt Frau Roth", Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(hostPW)}
	if err := s.Store.CreateUser(t.Context(), "dpo:it", host); err != nil {
		t.Fatal(err)
	}
	hc := newDeskClient(t, s)
	hc.signIn("roth", hostPW)
	for range 10 { // live.js every 5 seconds
		hc.page("GET", "/desk/rathaus/host", nil)
		s.Clock.Add(5 * time.Second)
	}
	want := map[string]int{"list.present": 1, "list.day": 1, "list.close": 1, "list.host": 1}
	got := map[string]int{}
	for _, e := range s.events(t, registry.AuditAccess) {
		var p registry.Access
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			t.Fatal(err)
		}
		got[p.What]++
		if p.Site != "rathaus" || p.Day == "" || e.Subject != "rathaus" || !strings.HasPrefix(string(e.Actor), "user:") {
			t.Errorf("list entry %+v: want site, day and the account", e)
		}
		if p.What == "list.present" && p.Rows != 1 || p.What == "list.host" && p.Rows != 1 {
			t.Errorf("%s rows = %d, want 1", p.What, p.Rows)
		}
		for _, secret := range []string{reg.FamilyName, reg.Phone, a.Code} {
			if strings.Contains(e.Details, secret) {
				t.Errorf("a list entry holds %q: %s", secret, e.Details)
			}
		}
	}
	for what, n := range want {
		if got[what] != n {
			t.Errorf("%d %s entries, want %d (all: %v)", got[what], what, n, got)
		}
	}
	// A quarter of an hour later the same list is a new view.
	s.Clock.Add(viewWindowForTest)
	hc.page("GET", "/desk/rathaus/host", nil)
	n := 0
	for _, e := range s.events(t, registry.AuditAccess) {
		if strings.Contains(e.Details, `"list.host"`) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("after a quarter of an hour: %d list.host entries, want 2", n)
	}
}

// viewWindowForTest is the quarter of an hour a list view counts as one.
const viewWindowForTest = 15 * time.Minute
