package crypto_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// sameContact compares contacts field by field; CheckIn by instant.
func sameContact(t testing.TB, got, want *registry.Contact) {
	t.Helper()
	if !got.CheckIn.Equal(want.CheckIn) {
		t.Errorf("CheckIn = %v, want %v", got.CheckIn, want.CheckIn)
	}
	g, w := *got, *want
	g.CheckIn, w.CheckIn = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("contact = %#v, want %#v", g, w)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	s := crypto.NewSealer(o.recipients)
	tests := []struct {
		name string
		edit func(c *registry.Contact)
	}{
		{"all fields", func(c *registry.Contact) {}},
		{"optional empty", func(c *registry.Contact) { c.Email, c.Host, c.Appointment = "", "", "" }},
		{"unicode", func(c *registry.Contact) {
			c.GivenName, c.FamilyName, c.City = "محمد 王小明", "Ñúñez \"Jr.\" <b>", "Ærøskøbing 🏛"
		}},
		{"spreadsheet-looking values", func(c *registry.Contact) { c.FamilyName, c.Street = "=HYPERLINK(\"x\")", "@SUM(A1)" }},
		{"check-in with offset zone", func(c *registry.Contact) { c.CheckIn = c.CheckIn.In(time.FixedZone("CET", 3600)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := testContact()
			tt.edit(want)
			sealed, err := s.Seal(want, e.key.Recipient)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			for _, p := range []string{want.GivenName, want.FamilyName, want.Phone, want.Street, want.VisitID, want.Site} {
				if bytes.Contains(sealed, []byte(p)) {
					t.Fatalf("sealed record contains %q", p)
				}
			}
			got, err := crypto.Open(visitOf(want, sealed), e.id, o.identities)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			sameContact(t, got, want)
		})
	}
}

// TestSealRefusesUnreadableText: Seal never produces a record that the
// strict decoder would refuse to open.
func TestSealRefusesUnreadableText(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	s := crypto.NewSealer(o.recipients)
	for _, bad := range []string{"a\tb", "a\u200bb", "\u202eabc", "x\x00"} {
		c := testContact()
		c.City = bad
		if _, err := s.Seal(c, e.key.Recipient); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("Seal(city %q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestOpenRefusesMovedCiphertext(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	c := testContact()
	sealed, err := crypto.NewSealer(o.recipients).Seal(c, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(v *registry.Visit)
	}{
		{"other visit id", func(v *registry.Visit) { v.ID = registry.NewID() }},
		{"other site", func(v *registry.Visit) { v.Site = "buergeramt-sued" }},
		{"other check-in", func(v *registry.Visit) { v.CheckIn = v.CheckIn.Add(time.Microsecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := visitOf(c, sealed)
			tt.edit(v)
			_, err := crypto.Open(v, e.id, o.identities)
			wantCode(t, err, registry.EINVALID)
		})
	}
	t.Run("own row", func(t *testing.T) {
		if _, err := crypto.Open(visitOf(c, sealed), e.id, o.identities); err != nil {
			t.Fatalf("Open of its own row: %v", err)
		}
	})
}

func TestOpenRefusesWrongKeys(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	c := testContact()
	sealed, err := crypto.NewSealer(o.recipients).Seal(c, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		sealed []byte
		epoch  age.Identity
		office []age.Identity
		msg    string
	}{
		{"wrong epoch identity", sealed, newIdentity(t), o.identities, "does not open with the epoch key"},
		{"office identity as epoch", sealed, o.identities[0], o.identities, "does not open with the epoch key"},
		{"wrong office identity", sealed, e.id, []age.Identity{newIdentity(t)}, "does not open with the health-office"},
		{"epoch identity as office", sealed, e.id, []age.Identity{e.id}, "does not open with the health-office"},
		{"no epoch identity", sealed, nil, o.identities, "No epoch key"},
		{"no office identity", sealed, e.id, nil, "No health-office identity"},
		{"flipped byte", flipped, e.id, o.identities, "malformed or corrupted"},
		{"truncated", sealed[:len(sealed)-20], e.id, o.identities, "malformed or corrupted"},
		{"not age", []byte("hello"), e.id, o.identities, "malformed or corrupted"},
		{"empty", nil, e.id, o.identities, "malformed or corrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := visitOf(c, tt.sealed)
			_, err := crypto.Open(v, tt.epoch, tt.office)
			wantCode(t, err, registry.EINVALID)
			wantMessage(t, err, tt.msg)
		})
	}
}

func TestOpenOuterThenInner(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	want := testContact()
	sealed, err := crypto.NewSealer(o.recipients).Seal(want, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := crypto.OpenOuter(sealed, e.id)
	if err != nil {
		t.Fatalf("OpenOuter: %v", err)
	}
	got, err := crypto.OpenInner(inner, o.identities)
	if err != nil {
		t.Fatalf("OpenInner: %v", err)
	}
	sameContact(t, got, want)

	t.Run("inner is a standard age file", func(t *testing.T) {
		ids, err := age.ParseIdentities(strings.NewReader(readFile(t, o.keyPath)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(bytes.NewReader(inner), ids...)
		if err != nil {
			t.Fatalf("age.Decrypt: %v", err)
		}
		var c registry.Contact
		if err := json.NewDecoder(r).Decode(&c); err != nil {
			t.Fatal(err)
		}
		sameContact(t, &c, want)
	})
	t.Run("inner does not open with the epoch key", func(t *testing.T) {
		_, err := crypto.OpenInner(inner, []age.Identity{e.id})
		wantCode(t, err, registry.EINVALID)
	})
	t.Run("outer does not open with the office key", func(t *testing.T) {
		_, err := crypto.OpenOuter(sealed, o.identities[0])
		wantCode(t, err, registry.EINVALID)
	})
}

// stanzas counts the recipient stanzas of kind in an age header, and
// all of them.
func stanzas(t *testing.T, file []byte, kind crypto.KeyKind) (ofKind, all int) {
	t.Helper()
	hdr, err := age.ExtractHeader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	typ := map[crypto.KeyKind]string{crypto.Hybrid: "mlkem768x25519", crypto.X25519: "X25519"}[kind]
	return strings.Count(string(hdr), "\n-> "+typ+" "), strings.Count(string(hdr), "\n-> ")
}

// TestSealLayers checks the layer structure for every combination of key
// kinds: one outer stanza of the day key's kind, one inner stanza of the
// office's kind per office recipient, each office identity opening on its
// own. The layers are independent: a hybrid day key over classic office
// keys (an installation in the middle of its migration) works.
func TestSealLayers(t *testing.T) {
	for _, dayKind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		for _, officeKind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
			t.Run("day "+dayKind.String()+", office "+officeKind.String(), func(t *testing.T) {
				testSealLayers(t, dayKind, officeKind)
			})
		}
	}
}

func testSealLayers(t *testing.T, dayKind, officeKind crypto.KeyKind) {
	o1, o2 := newOfficeKind(t, officeKind), newOfficeKind(t, officeKind)
	both := strings.Join(append(o1.recipients.Strings(), o2.recipients.Strings()...), "\n")
	rs, err := crypto.ParseRecipients(strings.NewReader(both))
	if err != nil {
		t.Fatal(err)
	}
	e := newEpochKind(t, registry.DayOf(testNow), dayKind)
	c := testContact()
	sealed, err := crypto.NewSealer(rs).Seal(c, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	if got, all := stanzas(t, sealed, dayKind); got != 1 || all != 1 {
		t.Errorf("outer stanzas of kind %s = %d of %d, want 1 of 1", dayKind, got, all)
	}
	inner, err := crypto.OpenOuter(sealed, e.id)
	if err != nil {
		t.Fatal(err)
	}
	if got, all := stanzas(t, inner, officeKind); got != 2 || all != 2 {
		t.Errorf("inner stanzas of kind %s = %d of %d, want 2 of 2", officeKind, got, all)
	}
	for i, o := range []*office{o1, o2} {
		if _, err := crypto.Open(visitOf(c, sealed), e.id, o.identities); err != nil {
			t.Errorf("office %d: Open: %v", i, err)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(c *registry.Contact) *registry.Contact
		epoch string
	}{
		{"nil contact", func(c *registry.Contact) *registry.Contact { return nil }, e.key.Recipient},
		{"no version", func(c *registry.Contact) *registry.Contact { c.Version = 0; return c }, e.key.Recipient},
		{"no visit id", func(c *registry.Contact) *registry.Contact { c.VisitID = ""; return c }, e.key.Recipient},
		{"no site", func(c *registry.Contact) *registry.Contact { c.Site = ""; return c }, e.key.Recipient},
		{"no check-in", func(c *registry.Contact) *registry.Contact { c.CheckIn = time.Time{}; return c }, e.key.Recipient},
		{"empty epoch recipient", func(c *registry.Contact) *registry.Contact { return c }, ""},
		{"malformed epoch recipient", func(c *registry.Contact) *registry.Contact { return c }, e.key.Recipient[:40]},
		{"broken hybrid epoch recipient", func(c *registry.Contact) *registry.Contact { return c }, hybrid.Recipient().String()[:200]},
		{"plugin epoch recipient", func(c *registry.Contact) *registry.Contact { return c }, "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t"},
		{"hybrid identity as epoch recipient", func(c *registry.Contact) *registry.Contact { return c }, hybrid.String()},
		{"identity as epoch recipient", func(c *registry.Contact) *registry.Contact { return c }, newIdentity(t).String()},
	}
	s := crypto.NewSealer(o.recipients)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(tt.edit(testContact()), tt.epoch)
			wantCode(t, err, registry.EINVALID)
			if sealed != nil {
				t.Errorf("Seal returned %d bytes with an error", len(sealed))
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("error %q quotes a secret key", err)
			}
		})
	}
}

// sealInner encrypts arbitrary plaintext to the office, as a forged or
// outdated inner layer would be.
func sealInner(t testing.TB, o *office, plain string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, o.recipients.List()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenInnerStrict(t *testing.T) {
	o := newOffice(t)
	valid, err := json.Marshal(testContact())
	if err != nil {
		t.Fatal(err)
	}
	obj := strings.TrimSuffix(string(valid), "}")
	tests := []struct {
		name, plain string
		ok          bool
	}{
		{"valid", string(valid), true},
		{"valid with trailing newline", string(valid) + "\n", true},
		{"unknown field", obj + `,"birthday":"1970-01-01"}`, false},
		{"trailing data", string(valid) + `{}`, false},
		{"other version", strings.Replace(string(valid), `"v":1`, `"v":2`, 1), false},
		{"null", "null", false},
		{"empty object", "{}", false},
		{"not json", "Müller", false},
		{"empty", "", false},
		{"wrong type", strings.Replace(string(valid), `"v":1`, `"v":"1"`, 1), false},
		{"too large", obj + `,"given_name":"` + strings.Repeat("x", 70<<10) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := crypto.OpenInner(sealInner(t, o, tt.plain), o.identities)
			if tt.ok {
				if err != nil {
					t.Fatalf("OpenInner: %v", err)
				}
				return
			}
			wantCode(t, err, registry.EINVALID)
			if strings.Contains(err.Error(), "Müller") || strings.Contains(err.Error(), "birthday") {
				t.Errorf("error %q echoes content", err)
			}
		})
	}
}

func TestSealerConcurrent(t *testing.T) {
	o := newOffice(t)
	days := []*epoch{newEpoch(t, "2024-03-13"), newEpoch(t, "2024-03-14")}
	s := crypto.NewSealer(o.recipients)
	const workers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e := days[(w+i)%len(days)]
				c := testContact()
				sealed, err := s.Seal(c, e.key.Recipient)
				if err == nil {
					_, err = crypto.Open(visitOf(c, sealed), e.id, o.identities)
				}
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestSealNote: an appointment's note is sealed in the same two layers as
// a contact, opens only with both keys, and is bound to its appointment.
func TestSealNote(t *testing.T) {
	o := newOffice(t)
	e := newEpoch(t, registry.DayOf(testNow))
	s := crypto.NewSealer(o.recipients)
	a := &registry.Appointment{ID: registry.NewID(), Site: "rathaus", Day: "2026-11-03", Code: "T-4711"}
	want := registry.NewAppointmentNote(a, "kommt mit Dolmetscherin, Tel. 0171 5550123")
	sealed, err := s.SealNote(want, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"Dolmetscherin", "0171", a.ID, "T-4711"} {
		if bytes.Contains(sealed, []byte(p)) {
			t.Fatalf("sealed note contains %q", p)
		}
	}
	if _, err := crypto.OpenNote(sealed, o.identities); err == nil {
		t.Fatal("the note opened without removing the epoch layer")
	}
	inner, err := crypto.OpenOuter(sealed, e.id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.OpenNote(inner, []age.Identity{e.id}); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("OpenNote with the epoch key = %v, want EINVALID", err)
	}
	got, err := crypto.OpenNote(inner, o.identities)
	if err != nil || *got != *want {
		t.Fatalf("OpenNote() = %+v, %v; want %+v", got, err, want)
	}
	if err := got.CheckBinding(a.ID, a.Site, a.Day, a.Code); err != nil {
		t.Error(err)
	}
	if err := got.CheckBinding(a.ID, a.Site, a.Day, "T-4712"); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("binding to another code = %v, want EINVALID", err)
	}
	// A contact is not a note, and a note is not a contact.
	if _, err := crypto.OpenInner(inner, o.identities); err == nil {
		t.Error("a note opened as a contact")
	}
	contact, _ := s.Seal(testContact(), e.key.Recipient)
	cinner, _ := crypto.OpenOuter(contact, e.id)
	if _, err := crypto.OpenNote(cinner, o.identities); err == nil {
		t.Error("a contact opened as a note")
	}
	for name, n := range map[string]*registry.AppointmentNote{
		"no version": {AppointmentID: a.ID, Site: "rathaus", Day: a.Day, Code: a.Code, Text: "x"},
		"no binding": {Version: registry.NoteVersion, Text: "x"},
		"bad rune":   registry.NewAppointmentNote(a, "x\u202ey"),
	} {
		if _, err := s.SealNote(n, e.key.Recipient); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("SealNote(%s) = %v, want EINVALID", name, err)
		}
	}
}
