package export

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// editLine decodes line i of lines as a JSON object, lets edit change it
// and encodes it back.
func editLine(t *testing.T, lines []string, i int, edit func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
		t.Fatalf("line %d: %v", i+1, err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	lines[i] = string(b)
}

func TestReadRefusesTampering(t *testing.T) {
	f := newFixture(t)
	req, visits, _ := roundTripSet(t, f)
	sealed := f.write(t, req, visits)
	id := func(i int) string { return visits[i].ID }
	tests := []struct {
		name   string
		tamper func(t *testing.T, lines []string) []string
		want   []string // substrings of the error message
	}{
		{"inner swapped between two records", func(t *testing.T, l []string) []string {
			var a, b map[string]any
			json.Unmarshal([]byte(l[1]), &a)
			json.Unmarshal([]byte(l[2]), &b)
			editLine(t, l, 1, func(m map[string]any) { m["inner"] = b["inner"] })
			editLine(t, l, 2, func(m map[string]any) { m["inner"] = a["inner"] })
			return l
		}, []string{"2 of 3 records", id(0), id(1), "does not belong to this record"}},
		{"site changed in metadata", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(m map[string]any) { m["site"] = "bibliothek" })
			return l
		}, []string{"1 of 3 records", id(0), "does not belong"}},
		{"check-in changed in metadata", func(t *testing.T, l []string) []string {
			editLine(t, l, 3, func(m map[string]any) { m["check_in"] = "2021-03-05T11:00:00Z" })
			return l
		}, []string{id(2), "does not belong"}},
		{"visit id changed", func(t *testing.T, l []string) []string {
			editLine(t, l, 2, func(m map[string]any) { m["visit_id"] = registry.NewID() })
			return l
		}, []string{"1 of 3 records", "does not belong"}},
		{"record outside the header's sites", func(t *testing.T, l []string) []string {
			editLine(t, l, 0, func(m map[string]any) { m["sites"] = []string{"rathaus"} })
			return l
		}, []string{"approval of Anna DSB does not cover this request"}},
		{"record duplicated", func(t *testing.T, l []string) []string {
			editLine(t, l, 0, func(m map[string]any) { m["count"] = 4 })
			return slices.Insert(l, len(l)-1, l[1])
		}, []string{id(0), "duplicate visit id"}},
		{"inner not age", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(m map[string]any) { m["inner"] = "bm90IGFnZQ==" })
			return l
		}, []string{id(0), "inner layer does not open"}},
		{"malformed visit id named by line", func(t *testing.T, l []string) []string {
			editLine(t, l, 2, func(m map[string]any) { m["visit_id"] = "Jürgen Müller" })
			return l
		}, []string{"record on line 3", "malformed visit id"}},
		{"record removed", func(t *testing.T, l []string) []string {
			return l[:3]
		}, []string{"truncated", "announces 3 records, it holds 2"}},
		{"record added beyond the count", func(t *testing.T, l []string) []string {
			return slices.Insert(l, len(l)-1, l[1])
		}, []string{"more records than its header announces"}},
		{"line after the signature", func(t *testing.T, l []string) []string {
			return append(l, l[1])
		}, []string{"continues after its signature"}},
		{"signature removed", func(t *testing.T, l []string) []string {
			return l[:len(l)-1]
		}, []string{"signature is missing"}},
		{"record edited consistently", func(t *testing.T, l []string) []string {
			// A forger who holds the office's public key rebuilds a
			// record that passes every per-record check: only the
			// instance's signature tells.
			l[1], l[2] = l[2], l[1]
			return l
		}, []string{"signature of the registry instance does not match"}},
		{"signed by another instance", func(t *testing.T, l []string) []string {
			other := crypto.GenerateSigningKey()
			editLine(t, l, 0, func(m map[string]any) { m["instance"] = registry.FormatPublicKey(other.Public()) })
			return l
		}, []string{"not signed by the pinned registry instance"}},
		{"approval removed", func(t *testing.T, l []string) []string {
			editLine(t, l, 0, func(m map[string]any) { m["approvals"] = []any{} })
			return l
		}, []string{"approvals of 0 distinct pinned persons"}},
		{"approval by an unpinned key", func(t *testing.T, l []string) []string {
			other := crypto.GenerateSigningKey()
			editLine(t, l, 0, func(m map[string]any) {
				a := m["approvals"].([]any)[0].(map[string]any)
				a["public_key"] = registry.FormatPublicKey(other.Public())
			})
			return l
		}, []string{"does not pin"}},
		{"letter request passed off as the office's", func(t *testing.T, l []string) []string {
			editLine(t, l, 0, func(m map[string]any) { m["origin"] = "letter" })
			return l
		}, []string{"does not cover this request"}},
		{"unknown field", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(m map[string]any) { m["note"] = "x" })
			return l
		}, []string{"Line 2", "malformed"}},
		{"duplicate field", func(t *testing.T, l []string) []string {
			l[1] = strings.Replace(l[1], `{"visit_id":`, `{"site":"rathaus","visit_id":`, 1)
			return l
		}, []string{"Line 2", "malformed"}},
		{"field name in other case", func(t *testing.T, l []string) []string {
			l[1] = strings.Replace(l[1], `"site":`, `"SITE":`, 1)
			return l
		}, []string{"Line 2", "malformed"}},
		{"trailing data", func(t *testing.T, l []string) []string {
			l[2] += ` {}`
			return l
		}, []string{"Line 3", "malformed"}},
		{"nested object", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(m map[string]any) { m["area"] = map[string]any{"a": 1} })
			return l
		}, []string{"Line 2", "malformed"}},
		{"unknown format", func(t *testing.T, l []string) []string {
			editLine(t, l, 0, func(m map[string]any) { m["format"] = "registry-export/1" })
			return l
		}, []string{"unknown format"}},
		{"count beyond the limit", func(t *testing.T, l []string) []string {
			editLine(t, l, 0, func(m map[string]any) { m["count"] = MaxRecords + 1 })
			return l
		}, []string{"at most"}},
		{"line too long", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(m map[string]any) { m["area"] = strings.Repeat("x", MaxLine) })
			return l
		}, []string{"Line 2", "longer than"}},
		{"empty", func(t *testing.T, l []string) []string {
			return nil
		}, []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := f.plainLines(t, sealed)
			forged := f.reseal(t, tt.tamper(t, lines))
			b, err := Read(bytes.NewReader(forged), f.office, f.trust)
			if b != nil || registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("Read = %v, %v; want nil and EINVALID", b, err)
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, secret := range []string{"Zoë", "Müller", "Meschede", "291 1234"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds contact data %q", err, secret)
				}
			}
		})
	}
	t.Run("untampered reseal reads", func(t *testing.T) {
		if _, err := Read(bytes.NewReader(f.reseal(t, f.plainLines(t, sealed))), f.office, f.trust); err != nil {
			t.Errorf("Read of the re-sealed original: %v", err)
		}
	})
}

func TestReadWrongIdentity(t *testing.T) {
	f := newFixture(t)
	req, visits, _ := roundTripSet(t, f)
	sealed := f.write(t, req, visits)
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := crypto.WriteIdentityFile(other, crypto.Hybrid, testNow); err != nil {
		t.Fatal(err)
	}
	ids, err := crypto.ReadIdentities(other)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(bytes.NewReader(sealed), ids, f.trust)
	if b != nil || registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(err.Error(), "not sealed to the given identities") {
		t.Errorf("Read with another identity = %v, %v; want EINVALID naming the identities", b, err)
	}
	if _, err := Read(bytes.NewReader(sealed), nil, f.trust); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("Read without identities: error = %v, want EINVALID", err)
	}
}

// TestReadInnerForOtherOffice: a bundle whose outer layer opens but whose
// inner ciphertexts are sealed to another office fails record by record.
func TestReadInnerForOtherOffice(t *testing.T) {
	f, g := newFixture(t), newFixture(t)
	g.instance, g.approver = f.instance, f.approver // the same registry, another office's recipients
	req, visits, _ := roundTripSet(t, g)
	lines := g.plainLines(t, g.write(t, req, visits))
	_, err := Read(bytes.NewReader(f.reseal(t, lines)), f.office, f.trust)
	if registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(err.Error(), "3 of 3 records") {
		t.Errorf("Read = %v, want EINVALID for all 3 records", err)
	}
}

func TestReadTruncated(t *testing.T) {
	f := newFixture(t)
	from := time.Date(2021, 3, 5, 12, 0, 0, 0, time.UTC)
	req := testRequest(from, from.Add(6*time.Hour), "rathaus")
	var visits []*registry.Visit
	for i := range 200 { // > 64 KiB of plaintext: several age chunks
		v, _ := f.visit(t, "rathaus", "", from.Add(time.Duration(i)*time.Minute), nil, "Anna")
		visits = append(visits, v)
	}
	sealed := f.write(t, req, visits)
	for _, n := range []int{0, 20, 200, len(sealed) / 2, len(sealed) - 70000, len(sealed) - 17, len(sealed) - 1} {
		if _, err := Read(bytes.NewReader(sealed[:n]), f.office, f.trust); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("Read of the first %d of %d bytes: error = %v, want EINVALID", n, len(sealed), err)
		}
	}
	if _, err := Read(bytes.NewReader(append(sealed, 0)), f.office, f.trust); err == nil {
		t.Errorf("Read with a trailing byte succeeded")
	}
	if _, err := Read(bytes.NewReader(sealed), f.office, f.trust); err != nil {
		t.Errorf("Read of the whole bundle: %v", err)
	}
}

// TestReadCountsPersons: a letter request needs the approvals of two
// persons; the trust file pins keys to persons, and two keys of one
// person count once, whatever the bundle says.
func TestReadCountsPersons(t *testing.T) {
	f := newFixture(t)
	second := crypto.GenerateSigningKey()
	v, _ := f.visit(t, "rathaus", "", testNow.Add(-2*time.Hour), nil, "Zoë")
	letter := func(keys ...*crypto.SigningKey) []byte {
		req := testRequest(testNow.Add(-3*time.Hour), testNow, "rathaus")
		req.OwnerToken, req.Nonce = "", registry.NewNonce()
		exp := testNow.Add(72 * time.Hour)
		for _, k := range keys {
			req.Approvals = append(req.Approvals, &registry.Approval{RequestID: req.ID, ApproverID: k.ID(), Name: "x",
				PublicKey: registry.FormatPublicKey(k.Public()), Decision: registry.DecisionApprove, ExpiresAt: exp, SignedAt: testNow,
				Signature: k.Sign(registry.PurposeDecision, registry.DecisionStatement(req, registry.DecisionApprove, exp))})
		}
		var buf bytes.Buffer
		if _, err := Write(&buf, req, 1, visitSeq([]*registry.Visit{v}), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: time.Hour, Now: testNow}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	// Anna's second key, pinned to her person.
	f.trust.Approvers[second.ID()] = TrustedApprover{Name: "Anna DSB", Person: f.approver.ID(), Key: second.PublicKey()}
	_, err := Read(bytes.NewReader(letter(f.approver, second)), f.office, f.trust)
	if registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(err.Error(), "1 distinct pinned persons; a letter request needs 2") {
		t.Errorf("two keys of one person: %v, want EINVALID counting one person", err)
	}
	// The same key, pinned as another person's, counts twice.
	f.trust.Approvers[second.ID()] = TrustedApprover{Name: "Bert DSB", Person: second.ID(), Key: second.PublicKey()}
	if _, err := Read(bytes.NewReader(letter(f.approver, second)), f.office, f.trust); err != nil {
		t.Errorf("two persons: %v", err)
	}
	// Trust files of both versions parse; the person of a v1 line is its
	// own key.
	tr, err := ParseTrust(bytes.NewReader(f.trust.Marshal()), "v2")
	if err != nil || tr.Persons() != 2 || tr.Approvers[second.ID()].Person != second.ID() {
		t.Errorf("v2 trust = %+v, %v", tr, err)
	}
	v1 := "# registry trust file v1\ninstance " + registry.FormatPublicKey(f.instance.Public()) + "\napprover " +
		registry.FormatPublicKey(second.Public()) + " Bert DSB\n"
	if tr, err := ParseTrust(strings.NewReader(v1), "v1"); err != nil || tr.Approvers[second.ID()].Name != "Bert DSB" || tr.Approvers[second.ID()].Person != second.ID() {
		t.Errorf("v1 trust = %+v, %v", tr, err)
	}
}
