package registry_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func TestIDs(t *testing.T) {
	a, b := registry.NewID(), registry.NewID()
	if a == b || !registry.ValidID(a) || !registry.ValidID(b) {
		t.Fatalf("NewID() = %q, %q; want two different valid ids", a, b)
	}
	for _, bad := range []string{"", "ABCDEF0123456789abcdef0123456789", a[:31], a + "0", "g" + a[1:]} {
		if registry.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestDay(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	if got := registry.DayOf(time.Date(2026, 11, 25, 0, 30, 0, 0, berlin)); got != "2026-11-24" {
		t.Errorf("DayOf(00:30 CET) = %s, want the UTC day 2026-11-24", got)
	}
	d := registry.Day("2026-12-31")
	if got := d.AddDays(1); got != "2027-01-01" {
		t.Errorf("AddDays(1) = %s", got)
	}
	if got := d.End().Sub(d.Start()); got != 24*time.Hour {
		t.Errorf("End - Start = %v", got)
	}
	for _, bad := range []string{"2026-02-30", "26-11-24", "2026-11-24T00:00:00Z", ""} {
		if _, err := registry.ParseDay(bad); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("ParseDay(%q) = %v; want EINVALID", bad, err)
		}
	}
}

func TestTokens(t *testing.T) {
	secret, tok := registry.NewToken(registry.RoleIntake, "rathaus", "Pforte", time.Now())
	if !registry.LooksLikeToken(secret) {
		t.Fatalf("NewToken secret %q does not look like a token", secret[:4])
	}
	if string(tok.Hash) != string(registry.HashToken(secret)) || len(tok.ID) != 16 {
		t.Errorf("token record: id %q, hash mismatch %v", tok.ID, string(tok.Hash) != string(registry.HashToken(secret)))
	}
	other, _ := registry.NewToken(registry.RoleIntake, "", "", time.Now())
	if other == secret {
		t.Error("two tokens are equal")
	}
	if _, err := registry.ParseRole("admin"); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("ParseRole(admin) = %v; want EINVALID", err)
	}
	got := tok.LogValue().String()
	if !strings.Contains(got, tok.ID) || strings.Contains(got, secret) || strings.Contains(got, hex.EncodeToString(tok.Hash)) {
		t.Errorf("LogValue() = %q; want the id, never the secret or its hash", got)
	}
}

func TestErrorCode(t *testing.T) {
	wrapped := fmt.Errorf("open: %w", registry.FieldError("phone", "bad"))
	if registry.ErrorCode(wrapped) != registry.EINVALID || registry.ErrorField(wrapped) != "phone" || registry.ErrorMessage(wrapped) != "bad" {
		t.Errorf("wrapped error: code %s field %s message %s", registry.ErrorCode(wrapped), registry.ErrorField(wrapped), registry.ErrorMessage(wrapped))
	}
	if registry.ErrorCode(errors.New("driver: boom")) != registry.EINTERNAL || registry.ErrorMessage(errors.New("driver: boom")) != "Internal error." {
		t.Error("a plain error must read as EINTERNAL with a generic message")
	}
	if registry.ErrorCode(nil) != "" {
		t.Error("ErrorCode(nil) != \"\"")
	}
}

func TestAuditHash(t *testing.T) {
	first := &registry.AuditEvent{Time: time.Unix(100, 0), Actor: "system", Action: registry.AuditPurge, Details: `{}`}
	first.Link(nil)
	if first.Seq != 1 || string(first.PrevHash) != string(registry.GenesisHash) {
		t.Fatalf("first event: seq %d", first.Seq)
	}
	second := &registry.AuditEvent{Time: time.Unix(200, 0), Actor: "system", Action: registry.AuditPurge, Details: `{}`}
	second.Link(first)
	if second.Seq != 2 || string(second.PrevHash) != string(first.Hash) {
		t.Fatalf("second event does not link to the first")
	}
	// Every field is covered: changing any one changes the hash.
	edits := map[string]func(e *registry.AuditEvent){
		"seq":     func(e *registry.AuditEvent) { e.Seq++ },
		"time":    func(e *registry.AuditEvent) { e.Time = e.Time.Add(time.Microsecond) },
		"actor":   func(e *registry.AuditEvent) { e.ActorCommit = registry.ActorCommitment(e.ActorSalt, "dpo:mallory") },
		"action":  func(e *registry.AuditEvent) { e.Action = registry.AuditRequestExported },
		"subject": func(e *registry.AuditEvent) { e.Subject = "x" },
		"details": func(e *registry.AuditEvent) { e.Details = `{"count":1}` },
		"prev":    func(e *registry.AuditEvent) { e.PrevHash = first.PrevHash },
		// Moving bytes between adjacent fields must not collide.
		"shift": func(e *registry.AuditEvent) {
			n := len(e.Action) - 1
			e.Action, e.Subject = e.Action[:n], e.Action[n:]+e.Subject
		},
		"version": func(e *registry.AuditEvent) { e.Version = 1 },
	}
	for name, edit := range edits {
		e := *second
		edit(&e)
		if string(e.ComputeHash()) == string(second.Hash) {
			t.Errorf("editing %s does not change the hash", name)
		}
	}
}

// TestSiteNotices: a site's own privacy notices are per visitor
// language; another language, or an empty or overlong notice, is refused.
func TestSiteNotices(t *testing.T) {
	ok := &registry.Site{Code: "rathaus", Name: "Rathaus", LegalBasis: "Art. 6 Abs. 1 lit. e DSGVO", Notices: map[string]string{"de": "Datenschutz: …", "ar": "حماية البيانات"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	for name, notices := range map[string]map[string]string{
		"unknown language": {"fr": "Protection des données"},
		"empty":            {"de": " "},
		"too long":         {"de": strings.Repeat("x", 2001)},
	} {
		s := &registry.Site{Code: "rathaus", Name: "Rathaus", Notices: notices}
		if err := s.Validate(); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("%s: Validate() = %v, want EINVALID", name, err)
		}
	}
}
