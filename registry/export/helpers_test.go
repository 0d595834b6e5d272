package export

import (
	"bufio"
	"bytes"
	"io"
	"iter"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// testNow is the fixed clock of the tests: the evening of 2021-03-05 (UTC).
var testNow = time.Date(2021, 3, 5, 18, 0, 0, 0, time.UTC)

// fixture is a health office (identity and recipients), a key store with
// epoch keys, and a sealer: everything to build real sealed visits.
type fixture struct {
	keys       *crypto.KeyStore
	kind       crypto.KeyKind // of the office's and the day keys
	officeFile string
	to         *crypto.Recipients
	office     []age.Identity
	sealer     *crypto.Sealer
	epochs     map[registry.Day]string // day → epoch recipient
	// instance signs bundles; approver approves requests (sign); trust
	// pins both, as the health office does.
	instance *crypto.SigningKey
	approver *crypto.SigningKey
	trust    *Trust
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	return newFixtureKind(tb, crypto.Hybrid)
}

// newFixtureKind is newFixture with keys of kind on both layers.
func newFixtureKind(tb testing.TB, kind crypto.KeyKind) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	officeFile := filepath.Join(dir, "office.key")
	recipient, err := crypto.WriteIdentityFile(officeFile, kind, testNow)
	if err != nil {
		tb.Fatalf("WriteIdentityFile: %v", err)
	}
	office, err := crypto.ReadIdentities(officeFile)
	if err != nil {
		tb.Fatalf("ReadIdentities: %v", err)
	}
	to, err := crypto.ParseRecipients(strings.NewReader("# health office\n" + recipient + "\n"))
	if err != nil {
		tb.Fatalf("ParseRecipients: %v", err)
	}
	keys, err := crypto.OpenKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		tb.Fatalf("OpenKeyStore: %v", err)
	}
	f := &fixture{keys: keys, kind: kind, officeFile: officeFile, to: to, office: office, sealer: crypto.NewSealer(to), epochs: map[registry.Day]string{},
		instance: crypto.GenerateSigningKey(), approver: crypto.GenerateSigningKey()}
	f.pin()
	return f
}

// pin sets f.trust to f's instance and approver keys.
func (f *fixture) pin() {
	f.trust = &Trust{Instance: f.instance.Public(), Approvers: map[string]TrustedApprover{
		f.approver.ID(): {Name: "Anna DSB", Person: f.approver.ID(), Key: f.approver.PublicKey()}}}
}

// sign gives req a nonce and f.approver's signed approval, as the store
// hands an approved request to Write.
func (f *fixture) sign(req *registry.TraceRequest) *registry.TraceRequest {
	if req.Nonce == "" {
		req.Nonce = registry.NewNonce()
	}
	exp := testNow.Add(72 * time.Hour)
	req.Approvals = []*registry.Approval{{RequestID: req.ID, ApproverID: f.approver.ID(), Name: "Anna DSB",
		PublicKey: registry.FormatPublicKey(f.approver.Public()), Decision: registry.DecisionApprove,
		ExpiresAt: exp, SignedAt: testNow.Add(-time.Hour),
		Signature: f.approver.Sign(registry.PurposeDecision, registry.DecisionStatement(req, registry.DecisionApprove, exp))}}
	return req
}

// epoch returns the recipient of the day's epoch key, creating the key.
func (f *fixture) epoch(tb testing.TB, day registry.Day) string {
	tb.Helper()
	if r, ok := f.epochs[day]; ok {
		return r
	}
	k, err := f.keys.Create(day, f.kind, testNow)
	if err != nil {
		tb.Fatalf("Create epoch key %s: %v", day, err)
	}
	f.epochs[day] = k.Recipient
	return k.Recipient
}

// contact returns a contact for a visit; names carry n so that records are
// told apart.
func testContact(v *registry.Visit, given string) *registry.Contact {
	return &registry.Contact{
		Version: registry.ContactVersion, GivenName: given, FamilyName: "Müller-Lüdenscheidt",
		Street: "Am Markt", HouseNumber: "1a", Postcode: "59872", City: "Meschede",
		Phone: "+49 291 1234", Email: "mm@example.org", Host: "Frau Roth", Appointment: "A-12",
		VisitID: v.ID, Site: v.Site, CheckIn: v.CheckIn,
	}
}

// visit returns a real sealed visit; out nil leaves it open.
func (f *fixture) visit(tb testing.TB, site, area string, in time.Time, out *time.Time, given string) (*registry.Visit, *registry.Contact) {
	tb.Helper()
	v := &registry.Visit{
		ID: registry.NewVisitID(in), Site: site, Area: area, CheckIn: in.UTC(), CheckOut: out,
		Epoch: registry.DayOf(in), CreatedAt: in,
	}
	c := testContact(v, given)
	sealed, err := f.sealer.Seal(c, f.epoch(tb, v.Epoch))
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	v.Sealed = sealed
	return v, c
}

// visitWith is visit with the given name and phone number.
func (f *fixture) visitWith(tb testing.TB, site, area string, in time.Time, out *time.Time, given, phone string) (*registry.Visit, *registry.Contact) {
	tb.Helper()
	v := &registry.Visit{
		ID: registry.NewVisitID(in), Site: site, Area: area, CheckIn: in.UTC(), CheckOut: out,
		Epoch: registry.DayOf(in), CreatedAt: in,
	}
	c := testContact(v, given)
	c.Phone = phone
	sealed, err := f.sealer.Seal(c, f.epoch(tb, v.Epoch))
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	v.Sealed = sealed
	return v, c
}

func testRequest(from, to time.Time, sites ...string) *registry.TraceRequest {
	return &registry.TraceRequest{
		ID: registry.NewID(), CaseRef: "GA-2021/0815", Office: "Gesundheitsamt Hochsauerlandkreis",
		LegalBasis: "§ 25 IfSG i.V.m. § 28a Abs. 4 IfSG", From: from, To: to, Sites: sites,
		Status: registry.TraceApproved, OwnerToken: "office1",
	}
}

// write returns a sealed bundle, failing the test on error.
func (f *fixture) write(tb testing.TB, req *registry.TraceRequest, visits []*registry.Visit) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := Write(&buf, f.sign(req), len(visits), visitSeq(visits), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: 12 * time.Hour, Now: testNow}); err != nil {
		tb.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// plainLines opens the bundle's age layer and returns its lines without
// newlines: what a forger with the (public) recipients could rewrite.
func (f *fixture) plainLines(tb testing.TB, sealed []byte) []string {
	tb.Helper()
	r, err := age.Decrypt(bytes.NewReader(sealed), f.office...)
	if err != nil {
		tb.Fatalf("age.Decrypt: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, MaxLine*2)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("scan bundle: %v", err)
	}
	return lines
}

// reseal seals lines (newline-terminated) to the health office again, as
// anyone holding the public recipients can.
func (f *fixture) reseal(tb testing.TB, lines []string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, f.to.List()...)
	if err != nil {
		tb.Fatalf("age.Encrypt: %v", err)
	}
	for _, l := range lines {
		io.WriteString(w, l+"\n")
	}
	if err := w.Close(); err != nil {
		tb.Fatalf("close age writer: %v", err)
	}
	return buf.Bytes()
}

func ptr(t time.Time) *time.Time { return &t }

// visitSeq yields the visits, as a store's scope query does.
func visitSeq(visits []*registry.Visit) iter.Seq2[*registry.Visit, error] {
	return func(yield func(*registry.Visit, error) bool) {
		for _, v := range visits {
			if !yield(v, nil) {
				return
			}
		}
	}
}
