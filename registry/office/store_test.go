package office_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/registry/office"
)

// trustFile returns a real trust file and its digest.
func trustFile(t *testing.T) ([]byte, string) {
	t.Helper()
	inst, approver := crypto.GenerateSigningKey(), crypto.GenerateSigningKey()
	tr := &export.Trust{Instance: inst.Public(), Approvers: map[string]export.TrustedApprover{
		approver.ID(): {Name: "DSB", Person: approver.ID(), Key: approver.PublicKey()}}}
	return tr.Marshal(), tr.Digest()
}

func openStore(t *testing.T) (*office.Store, *time.Time) {
	t.Helper()
	s, err := office.Open(context.Background(), filepath.Join(t.TempDir(), "ws"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	return s, &now
}

// TestTokenSealedAtRest: the registry's token is not in the workspace's
// files in clear, and opens only for its own registry's row.
func TestTokenSealedAtRest(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	trust, digest := trustFile(t)
	const token = "rgt_GEHEIMES-TOKEN-des-Gesundheitsamts-0123456789"
	r, err := s.AddRegistry(ctx, "clerk", "Rathaus Musterstadt", "https://besuch.musterstadt.de/", token, trust)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "rathaus-musterstadt" || r.URL != "https://besuch.musterstadt.de" || r.TrustDigest != digest || r.Confirmed() {
		t.Errorf("added %+v", r)
	}
	got, err := s.Registry(ctx, r.ID)
	if err != nil || got.Token != token {
		t.Fatalf("Registry() token = %q, %v", got.Token, err)
	}
	s.Close()
	for _, name := range []string{"workspace.db", "workspace.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, name))
		if bytes.Contains(b, []byte("GEHEIMES-TOKEN")) {
			t.Errorf("%s holds the token in clear", name)
		}
	}
	// Moved to another registry's row, a sealed token does not open.
	s2, err := office.Open(ctx, s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	other, err := s2.AddRegistry(ctx, "clerk", "Stadtbibliothek", "https://bib.musterstadt.de", "rgt_other", trust)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("sqlite", filepath.Join(s.Dir, "workspace.db"))
	defer db.Close()
	if _, err := db.Exec(`UPDATE registries SET token = (SELECT token FROM registries WHERE id = ?) WHERE id = ?`, r.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Registry(ctx, other.ID); err == nil {
		t.Errorf("a token moved to another registry opened")
	}
}

// TestConfirmTrust: the digest as read on the phone (dashes, case,
// spaces as typed) confirms; another does not; a replaced trust file must
// be confirmed again.
func TestConfirmTrust(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	trust, digest := trustFile(t)
	r, err := s.AddRegistry(ctx, "clerk", "Rathaus", "https://r.example", "tok", trust)
	if err != nil {
		t.Fatal(err)
	}
	_, other := trustFile(t)
	if err := s.ConfirmTrust(ctx, "clerk", r.ID, other); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("ConfirmTrust(another digest) = %v", err)
	}
	typed := strings.ToUpper(strings.ReplaceAll(digest, "-", " "))
	if err := s.ConfirmTrust(ctx, "clerk", r.ID, typed); err != nil {
		t.Fatalf("ConfirmTrust(%q) = %v", typed, err)
	}
	if got, _ := s.Registry(ctx, r.ID); !got.Confirmed() || got.ConfirmedBy != "clerk" {
		t.Errorf("after confirmation: %+v", got)
	}
	newTrust, newDigest := trustFile(t)
	if d, err := s.ReplaceTrust(ctx, "clerk", r.ID, newTrust); err != nil || d != newDigest {
		t.Fatalf("ReplaceTrust = %q, %v", d, err)
	}
	if got, _ := s.Registry(ctx, r.ID); got.Confirmed() {
		t.Errorf("a replaced trust file counts as confirmed")
	}
	if _, err := s.ReplaceTrust(ctx, "clerk", r.ID, []byte("not a trust file\n")); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("ReplaceTrust(garbage) = %v", err)
	}
}

// TestRetentionAndLog: a case older than the retention period goes with
// its bundles, in the log; the log verifies, and a changed entry is
// found.
func TestRetentionAndLog(t *testing.T) {
	s, now := openStore(t)
	ctx := context.Background()
	trust, _ := trustFile(t)
	r, err := s.AddRegistry(ctx, "clerk", "Rathaus", "https://r.example", "tok", trust)
	if err != nil {
		t.Fatal(err)
	}
	in := func(ref string) *office.CaseInput {
		return &office.CaseInput{Ref: ref, LegalBasis: "§ 25 IfSG", Contact: "Frau Beispiel", From: now.Add(-3 * time.Hour), To: now.Add(-time.Hour),
			Scopes: []office.Scope{{RegistryID: r.ID}}}
	}
	old, err := s.CreateCase(ctx, "clerk", in("GA-ALT"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := s.BundlePath(old.Requests[0].ID)
	os.WriteFile(bundle, []byte("sealed"), 0o600)
	*now = now.Add(100 * 24 * time.Hour)
	young, err := s.CreateCase(ctx, "clerk", in("GA-NEU"))
	if err != nil {
		t.Fatal(err)
	}
	*now = now.Add(90 * 24 * time.Hour) // the old case is 190 days old, the young one 90
	if n, err := s.Purge(ctx, office.DefaultRetention); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if _, err := s.Case(ctx, old.ID); registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Errorf("the old case survived: %v", err)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("the old case's bundle survived: %v", err)
	}
	if _, err := s.Case(ctx, young.ID); err != nil {
		t.Errorf("the young case went: %v", err)
	}
	ev, err := s.LastAudit(ctx, "case.deleted")
	if err != nil || ev.Subject != old.ID || !strings.Contains(ev.Details, `"reason":"retention"`) || ev.Actor != "system" {
		t.Errorf("deletion entry = %+v, %v", ev, err)
	}
	if _, err := audit.Verify(ctx, s, nil); err != nil {
		t.Fatalf("the log does not verify: %v", err)
	}
	s.Close()
	db, _ := sql.Open("sqlite", filepath.Join(s.Dir, "workspace.db"))
	defer db.Close()
	if _, err := db.Exec(`UPDATE log SET details = replace(details, 'GA-ALT', 'GA-XXX') WHERE action = 'case.created'`); err != nil {
		t.Fatal(err)
	}
	s2, _ := office.Open(ctx, s.Dir)
	defer s2.Close()
	if _, err := audit.Verify(ctx, s2, nil); err == nil {
		t.Errorf("a changed log entry verified")
	}
}

// TestSignIn: a clerk signs in with the password, a wrong one is refused
// and logged without what was typed; a session ends when idle.
func TestSignIn(t *testing.T) {
	s, now := openStore(t)
	ctx := context.Background()
	pw, err := s.AddUser(ctx, "it", "schmidt", "Frau Schmidt")
	if err != nil {
		t.Fatal(err)
	}
	if secret, err := s.SignIn(ctx, "schmidt", "Falsches-Kennwort-1"); err != nil || secret != "" {
		t.Errorf("wrong password: %q, %v", secret, err)
	}
	ev, _ := s.LastAudit(ctx, "signin.failed")
	if ev == nil || ev.Subject != "schmidt" || strings.Contains(ev.Details, "Falsches") {
		t.Errorf("failed sign-in entry = %+v", ev)
	}
	secret, err := s.SignIn(ctx, "schmidt", pw)
	if err != nil || secret == "" {
		t.Fatalf("SignIn = %q, %v", secret, err)
	}
	if u, err := s.Session(ctx, secret); err != nil || u == nil || u.Name != "Frau Schmidt" {
		t.Errorf("Session = %+v, %v", u, err)
	}
	*now = now.Add(31 * time.Minute)
	if u, _ := s.Session(ctx, secret); u != nil {
		t.Errorf("an idle session lives on")
	}
}

// TestCaseInput: the case needs its reference, legal basis, contact and
// a window that has ended, and a registry.
func TestCaseInput(t *testing.T) {
	s, now := openStore(t)
	ctx := context.Background()
	trust, _ := trustFile(t)
	r, _ := s.AddRegistry(ctx, "clerk", "Rathaus", "https://r.example", "tok", trust)
	for _, tt := range []struct {
		name  string
		in    office.CaseInput
		field string
	}{
		{"no ref", office.CaseInput{LegalBasis: "x", Contact: "y", From: now.Add(-2 * time.Hour), To: now.Add(-time.Hour), Scopes: []office.Scope{{RegistryID: r.ID}}}, "ref"},
		{"window in the future", office.CaseInput{Ref: "A", LegalBasis: "x", Contact: "y", From: now.Add(-time.Hour), To: now.Add(time.Hour), Scopes: []office.Scope{{RegistryID: r.ID}}}, "to"},
		{"no registry", office.CaseInput{Ref: "A", LegalBasis: "x", Contact: "y", From: now.Add(-2 * time.Hour), To: now.Add(-time.Hour)}, "registries"},
		{"unknown registry", office.CaseInput{Ref: "A", LegalBasis: "x", Contact: "y", From: now.Add(-2 * time.Hour), To: now.Add(-time.Hour), Scopes: []office.Scope{{RegistryID: "nirgends"}}}, "registries"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateCase(ctx, "clerk", &tt.in)
			if registry.ErrorField(err) != tt.field {
				t.Errorf("CreateCase = %v, want a %s error", err, tt.field)
			}
		})
	}
}

// TestIndexCodes: codes typed or scanned; a scanned slip's check-out link
// keeps only the visits' ids, never the tokens.
func TestIndexCodes(t *testing.T) {
	id1, id2 := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	got := office.IndexCodes("k7qd-2m, T-4711\nhttps://besuch.musterstadt.de/checkin/rathaus/out#" + id1 + ".rgc_secret1~" + id2 + ".rgc_secret2")
	want := []string{"k7qd-2m", "T-4711", id1, id2}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("IndexCodes = %v, want %v", got, want)
	}
	if strings.Contains(strings.Join(got, " "), "rgc_") {
		t.Errorf("a check-out token survived: %v", got)
	}
}
