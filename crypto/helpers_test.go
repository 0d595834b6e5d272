package crypto_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2024, 3, 14, 9, 26, 53, 589793000, time.UTC)

// office is a health office's key pair as files, the way it is deployed.
type office struct {
	keyPath, recipientsPath string
	recipients              *crypto.Recipients
	identities              []age.Identity
}

// newOffice writes an identity file and a recipients file in a fresh
// directory and reads both back through the package API.
func newOffice(t testing.TB) *office {
	t.Helper()
	return newOfficeKind(t, crypto.Hybrid)
}

func newOfficeKind(t testing.TB, kind crypto.KeyKind) *office {
	t.Helper()
	dir := t.TempDir()
	o := &office{keyPath: filepath.Join(dir, "office.key"), recipientsPath: filepath.Join(dir, "recipients.txt")}
	rec, err := crypto.WriteIdentityFile(o.keyPath, kind, testNow)
	if err != nil {
		t.Fatalf("WriteIdentityFile: %v", err)
	}
	writeFile(t, o.recipientsPath, "# Gesundheitsamt\n\n"+rec+"\n")
	if o.recipients, err = crypto.ReadRecipients(o.recipientsPath); err != nil {
		t.Fatalf("ReadRecipients: %v", err)
	}
	if o.identities, err = crypto.ReadIdentities(o.keyPath); err != nil {
		t.Fatalf("ReadIdentities: %v", err)
	}
	return o
}

// epoch is one day's key in a fresh key store.
type epoch struct {
	store *crypto.KeyStore
	key   *registry.EpochKey
	id    age.Identity
}

func newEpoch(t testing.TB, day registry.Day) *epoch {
	t.Helper()
	return newEpochKind(t, day, crypto.Hybrid)
}

func newEpochKind(t testing.TB, day registry.Day, kind crypto.KeyKind) *epoch {
	t.Helper()
	ks, err := crypto.OpenKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	key, err := ks.Create(day, kind, testNow)
	if err != nil {
		t.Fatalf("Create(%s): %v", day, err)
	}
	id, err := ks.Identity(day)
	if err != nil {
		t.Fatalf("Identity(%s): %v", day, err)
	}
	return &epoch{store: ks, key: key, id: id}
}

// testContact returns a fully filled contact bound to a new visit id.
func testContact() *registry.Contact {
	return &registry.Contact{
		Version: registry.ContactVersion, GivenName: "Zoë-Łucja", FamilyName: "Müller-Lüdenscheidt",
		Street: "Straße des 17. Juni", HouseNumber: "12a", Postcode: "10623", City: "Köln",
		Phone: "+49 221 123456", Email: "zoe@example.org", Host: "Bürgeramt Süd, Frau Öztürk",
		Appointment: "BA-2024-0042", VisitID: registry.NewID(), Site: "rathaus-mitte",
		CheckIn: testNow.Add(-time.Hour).Truncate(time.Microsecond),
	}
}

// visitOf returns the visit row a contact was sealed for.
func visitOf(c *registry.Contact, sealed []byte) *registry.Visit {
	return &registry.Visit{ID: c.VisitID, Site: c.Site, CheckIn: c.CheckIn, Epoch: registry.DayOf(c.CheckIn), Sealed: sealed}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantCode fails the test unless err carries the registry error code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := registry.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// wantMessage fails unless the error message contains every part.
func wantMessage(t testing.TB, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(registry.ErrorMessage(err), p) {
			t.Errorf("message %q does not contain %q", registry.ErrorMessage(err), p)
		}
	}
}

// newIdentity returns a fresh X25519 identity that belongs to no one.
func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
