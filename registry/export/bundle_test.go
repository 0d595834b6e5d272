package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/agetest"
)

// roundTripSet is a request over the afternoon of 2021-03-05 with visits
// of two days (two epoch keys), an open one, one with an area.
func roundTripSet(tb testing.TB, f *fixture) (*registry.TraceRequest, []*registry.Visit, []*registry.Contact) {
	tb.Helper()
	from := time.Date(2021, 3, 5, 12, 0, 0, 0, time.UTC)
	req := testRequest(from, from.Add(6*time.Hour), "rathaus", "bibliothek")
	v1, c1 := f.visit(tb, "rathaus", "Bürgerbüro", from.Add(-time.Hour), ptr(from.Add(30*time.Minute)), "Zoë")
	v2, c2 := f.visit(tb, "bibliothek", "", from.Add(2*time.Hour), nil, "Jürgen")
	v3, c3 := f.visit(tb, "rathaus", "", time.Date(2021, 3, 4, 23, 0, 0, 0, time.UTC), ptr(from.Add(10*time.Second)), "Ægir")
	return req, []*registry.Visit{v1, v2, v3}, []*registry.Contact{c1, c2, c3}
}

func TestWriteReadRoundTrip(t *testing.T) {
	f := newFixture(t)
	req, visits, contacts := roundTripSet(t, f)
	var buf bytes.Buffer
	digest, err := Write(&buf, f.sign(req), len(visits), visitSeq(visits), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: 12 * time.Hour, Now: testNow})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if got, want := digest, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("digest = %s, want SHA-256 of the written bytes %s", got, want)
	}
	b, err := Read(bytes.NewReader(buf.Bytes()), f.office, f.trust)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got, want := b.Digest, digest; got != want {
		t.Errorf("Bundle.Digest = %s, want %s", got, want)
	}
	want := Header{
		Format: Format, RequestID: req.ID, CaseRef: req.CaseRef, Office: req.Office, LegalBasis: req.LegalBasis,
		From: req.From, To: req.To, Sites: req.Sites, Areas: []string{}, CreatedAt: testNow, Count: 3,
		Nonce: req.Nonce, Origin: registry.OriginOffice, Instance: registry.FormatPublicKey(f.instance.Public()), MaxStayMinutes: 720,
		Approvals: []HeaderApproval{{Name: "Anna DSB", PublicKey: registry.FormatPublicKey(f.approver.Public()),
			ExpiresAt: req.Approvals[0].ExpiresAt, SignedAt: req.Approvals[0].SignedAt, Signature: req.Approvals[0].Signature}},
	}
	if !reflect.DeepEqual(b.Header, want) {
		t.Errorf("header = %+v, want %+v", b.Header, want)
	}
	wantMinutes := []int{30, 240, 1}
	for i, r := range b.Records {
		v := visits[i]
		if r.VisitID != v.ID || r.Site != v.Site || r.Area != v.Area || !r.CheckIn.Equal(v.CheckIn) {
			t.Errorf("record %d metadata = %s/%s/%s/%v, want %s/%s/%s/%v", i, r.VisitID, r.Site, r.Area, r.CheckIn, v.ID, v.Site, v.Area, v.CheckIn)
		}
		if (r.CheckOut == nil) != (v.CheckOut == nil) || r.CheckOut != nil && !r.CheckOut.Equal(*v.CheckOut) {
			t.Errorf("record %d check-out = %v, want %v", i, r.CheckOut, v.CheckOut)
		}
		if got, want := r.ContactMinutes, wantMinutes[i]; got != want {
			t.Errorf("record %d contact minutes = %d, want %d", i, got, want)
		}
		if !reflect.DeepEqual(r.Contact, contacts[i]) {
			t.Errorf("record %d contact differs from the sealed one", i)
		}
	}
	if got, want := len(b.Records), 3; got != want {
		t.Fatalf("records = %d, want %d", got, want)
	}
}

// TestWriteKeepsInnerLayer checks that the server-side bundle holds no
// plaintext contact data: inside the age layer only the inner ciphertexts.
func TestWriteKeepsInnerLayer(t *testing.T) {
	f := newFixture(t)
	req, visits, _ := roundTripSet(t, f)
	lines := f.plainLines(t, f.write(t, req, visits))
	if got, want := len(lines), 5; got != want {
		t.Fatalf("lines = %d, want header + 3 + signature", got)
	}
	if !strings.HasPrefix(lines[0], `{"format":"registry-export/2",`) {
		t.Errorf("line 1 = %.60s…, want the header first", lines[0])
	}
	for _, secret := range []string{"Zoë", "Jürgen", "Müller", "Meschede", "+49 291 1234", "example.org"} {
		if plain := strings.Join(lines, "\n"); strings.Contains(plain, secret) {
			t.Errorf("bundle plaintext contains contact data %q", secret)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatalf("record line: %v", err)
	}
	for _, k := range []string{"visit_id", "site", "area", "check_in", "check_out", "checkout_auto", "contact_minutes", "inner"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("record line lacks %q", k)
		}
	}
}

func TestWriteReadEmpty(t *testing.T) {
	f := newFixture(t)
	req := testRequest(testNow.Add(-time.Hour), testNow, "rathaus")
	b, err := Read(bytes.NewReader(f.write(t, req, nil)), f.office, f.trust)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got, want := len(b.Records), 0; got != want || b.Header.Count != 0 {
		t.Errorf("records = %d, count = %d, want 0", got, b.Header.Count)
	}
}

func TestWriteFailures(t *testing.T) {
	from := time.Date(2021, 3, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		mangle func(t *testing.T, f *fixture, vs []*registry.Visit, req *registry.TraceRequest)
		code   string
		ids    []int // indexes of visits the message names
	}{
		{"epoch key destroyed", func(t *testing.T, f *fixture, vs []*registry.Visit, _ *registry.TraceRequest) {
			if _, err := f.keys.Destroy(vs[1].Epoch); err != nil {
				t.Fatal(err)
			}
		}, registry.EUNAVAILABLE, []int{1}},
		{"outer layer sealed to another day", func(t *testing.T, f *fixture, vs []*registry.Visit, _ *registry.TraceRequest) {
			vs[1].Sealed, vs[0].Sealed = vs[0].Sealed, vs[1].Sealed
		}, registry.EINTERNAL, []int{0}},
		{"corrupt sealed bytes", func(t *testing.T, f *fixture, vs []*registry.Visit, _ *registry.TraceRequest) {
			vs[0].Sealed = vs[0].Sealed[:len(vs[0].Sealed)-1]
		}, registry.EINTERNAL, []int{0}},
		{"visit of another site", func(t *testing.T, f *fixture, vs []*registry.Visit, _ *registry.TraceRequest) {
			vs[1].Site = "schwimmbad"
		}, registry.EINTERNAL, []int{1}},
		{"visit after the window", func(t *testing.T, f *fixture, vs []*registry.Visit, req *registry.TraceRequest) {
			vs[1].CheckIn = req.To
		}, registry.EINTERNAL, []int{1}},
		{"visit of another area", func(t *testing.T, f *fixture, vs []*registry.Visit, req *registry.TraceRequest) {
			req.Areas = []string{"Bürgerbüro"}
		}, registry.EINTERNAL, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			req := testRequest(from, from.Add(6*time.Hour), "rathaus")
			v0, _ := f.visit(t, "rathaus", "Bürgerbüro", from, nil, "Anna")
			v1, _ := f.visit(t, "rathaus", "", from.Add(-25*time.Hour), ptr(from.Add(time.Hour)), "Berta")
			vs := []*registry.Visit{v0, v1}
			tt.mangle(t, f, vs, req)
			var buf bytes.Buffer
			_, err := Write(&buf, f.sign(req), len(vs), visitSeq(vs), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: 12 * time.Hour, Now: testNow})
			if got := registry.ErrorCode(err); got != tt.code {
				t.Fatalf("Write error = %v (code %q), want code %q", err, got, tt.code)
			}
			for _, i := range tt.ids {
				if !strings.Contains(err.Error(), vs[i].ID) {
					t.Errorf("error %q does not name visit %s", err, vs[i].ID)
				}
			}
			if strings.Contains(err.Error(), "Anna") || strings.Contains(err.Error(), "Berta") {
				t.Errorf("error %q holds contact data", err)
			}
			if _, err := Read(bytes.NewReader(buf.Bytes()), f.office, f.trust); err == nil {
				t.Errorf("the partial output of a failed Write reads as a bundle")
			}
		})
	}
}

func TestWriteRefusesBadArguments(t *testing.T) {
	f := newFixture(t)
	req := testRequest(testNow.Add(-time.Hour), testNow, "rathaus")
	var buf bytes.Buffer
	if _, err := Write(&buf, f.sign(req), 0, visitSeq(nil), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: 0, Now: testNow}); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("maxStay 0: error = %v, want EINVALID", err)
	}
	if _, err := Write(&buf, f.sign(req), 0, visitSeq(nil), &Sealing{Keys: f.keys, Recipients: nil, Instance: f.instance, MaxStay: time.Hour, Now: testNow}); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("no recipients: error = %v, want EINVALID", err)
	}
	if got := buf.Len(); got != 0 {
		t.Errorf("refused Write wrote %d bytes", got)
	}
}

func TestContactMinutes(t *testing.T) {
	from := time.Date(2021, 3, 5, 12, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)
	maxStay := 12 * time.Hour
	tests := []struct {
		name    string
		in      time.Time
		out     *time.Time
		maxStay time.Duration
		want    int
	}{
		{"inside the window", from.Add(10 * time.Minute), ptr(from.Add(55 * time.Minute)), maxStay, 45},
		{"covers the window", from.Add(-time.Hour), ptr(to.Add(time.Hour)), maxStay, 120},
		{"starts before", from.Add(-time.Hour), ptr(from.Add(30 * time.Minute)), maxStay, 30},
		{"ends after", to.Add(-15 * time.Minute), ptr(to.Add(time.Hour)), maxStay, 15},
		{"one second rounds up", from.Add(-time.Hour), ptr(from.Add(time.Second)), maxStay, 1},
		{"one minute and a microsecond", from, ptr(from.Add(time.Minute + time.Microsecond)), maxStay, 2},
		{"exact minutes do not round", from, ptr(from.Add(3 * time.Minute)), maxStay, 3},
		{"ends at from", from.Add(-time.Hour), ptr(from), maxStay, 0},
		{"starts at to", to, ptr(to.Add(time.Hour)), maxStay, 0},
		{"starts one second before to", to.Add(-time.Second), ptr(to.Add(time.Hour)), maxStay, 1},
		{"zero-length stay", from.Add(time.Minute), ptr(from.Add(time.Minute)), maxStay, 0},
		{"open visit within max stay", from.Add(30 * time.Minute), nil, maxStay, 90},
		{"open visit ended by max stay", from.Add(-11*time.Hour - 30*time.Minute), nil, maxStay, 30},
		{"open visit ended before from", from.Add(-12 * time.Hour), nil, maxStay, 0},
		{"open visit, short max stay", from.Add(10 * time.Minute), nil, 20*time.Minute + time.Second, 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContactMinutes(tt.in, tt.out, tt.maxStay, from, to); got != tt.want {
				t.Errorf("ContactMinutes = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestBundleOpensWithStockAge: an export bundle opens with the stock age
// tool and the health office's key file, and so does every record's inner
// ciphertext in it, for hybrid (post-quantum) and X25519 keys alike. The
// bundle's stanzas are of the office's key kind.
func TestBundleOpensWithStockAge(t *testing.T) {
	runAge := agetest.Build(t)
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		t.Run(kind.String(), func(t *testing.T) {
			f := newFixtureKind(t, kind)
			req, visits, contacts := roundTripSet(t, f)
			bundle := f.write(t, req, visits)
			hdr, err := age.ExtractHeader(bytes.NewReader(bundle))
			if err != nil {
				t.Fatal(err)
			}
			stanza := map[crypto.KeyKind]string{crypto.Hybrid: "\n-> mlkem768x25519 ", crypto.X25519: "\n-> X25519 "}[kind]
			if got := strings.Count(string(hdr), stanza); got != 1 || strings.Count(string(hdr), "\n-> ") != 1 {
				t.Errorf("bundle header holds %d %q stanzas of %d, want exactly one", got, strings.TrimSpace(stanza), strings.Count(string(hdr), "\n-> "))
			}
			dir := t.TempDir()
			bundlePath := filepath.Join(dir, "bundle.age")
			if err := os.WriteFile(bundlePath, bundle, 0o600); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(runAge(t, nil, "-d", "-i", f.officeFile, bundlePath))), "\n")
			if len(lines) != len(visits)+2 {
				t.Fatalf("age -d of the bundle gave %d lines, want header, %d records, signature", len(lines), len(visits))
			}
			for i, line := range lines[1 : len(lines)-1] {
				var rec struct {
					VisitID string `json:"visit_id"`
					Inner   []byte `json:"inner"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("record line %d: %v", i+1, err)
				}
				innerPath := filepath.Join(dir, "inner.age")
				if err := os.WriteFile(innerPath, rec.Inner, 0o600); err != nil {
					t.Fatal(err)
				}
				var c registry.Contact
				if err := json.Unmarshal(runAge(t, nil, "-d", "-i", f.officeFile, innerPath), &c); err != nil {
					t.Fatalf("age -d of record %d's inner ciphertext: %v", i+1, err)
				}
				if c.VisitID != rec.VisitID || !reflect.DeepEqual(&c, contacts[i]) {
					t.Errorf("record %d: age opened a contact that is not the sealed one", i+1)
				}
			}
		})
	}
}
