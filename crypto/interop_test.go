package crypto_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/agetest"
)

// TestAgeCLIInterop builds the stock age CLI from the module cache and
// checks, for hybrid and X25519 keys alike, that it reads our key files
// and ciphertexts and that we read its ciphertexts: the promise that a
// health office can use plain age.
func TestAgeCLIInterop(t *testing.T) {
	runAge := agetest.Build(t)
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		t.Run(kind.String(), func(t *testing.T) { testAgeInterop(t, kind, runAge) })
	}
}

// testAgeInterop runs the stock age CLI over keys of kind on both layers.
func testAgeInterop(t *testing.T, kind crypto.KeyKind, runAge func(t testing.TB, stdin []byte, args ...string) []byte) {
	tmp := t.TempDir()
	o := newOfficeKind(t, kind)
	writeFile(t, o.recipientsPath, "# Gesundheitsamt, Infektionsschutz\n\n"+strings.Join(o.recipients.Strings(), "\n")+"\n")
	e := newEpochKind(t, registry.DayOf(testNow), kind)
	want := testContact()
	sealed, err := crypto.NewSealer(o.recipients).Seal(want, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := crypto.OpenOuter(sealed, e.id)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("age opens the outer layer with an epoch key file", func(t *testing.T) {
		sealedPath := filepath.Join(tmp, "sealed.age")
		writeFile(t, sealedPath, string(sealed))
		keyFile := filepath.Join(e.store.Dir, "epoch-"+string(e.key.Day)+".age")
		if got := runAge(t, nil, "-d", "-i", keyFile, sealedPath); !bytes.Equal(got, inner) {
			t.Errorf("age -d of the sealed record = %d bytes, want the %d-byte inner ciphertext", len(got), len(inner))
		}
	})
	t.Run("age decrypts the inner ciphertext with the office key file", func(t *testing.T) {
		innerPath := filepath.Join(tmp, "inner.age")
		writeFile(t, innerPath, string(inner))
		var got registry.Contact
		if err := json.Unmarshal(runAge(t, nil, "-d", "-i", o.keyPath, innerPath), &got); err != nil {
			t.Fatalf("age -d output is not the contact JSON: %v", err)
		}
		sameContact(t, &got, want)
	})
	t.Run("we decrypt what age encrypts to the recipient", func(t *testing.T) {
		c := testContact()
		plain, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		ciphertext := runAge(t, plain, "-e", "-r", o.recipients.Strings()[0])
		ids, err := crypto.ReadIdentities(o.keyPath)
		if err != nil {
			t.Fatal(err)
		}
		got, err := crypto.OpenInner(ciphertext, ids)
		if err != nil {
			t.Fatalf("OpenInner of age -e output: %v", err)
		}
		sameContact(t, got, c)
	})
	t.Run("we decrypt what age encrypts to the recipients file", func(t *testing.T) {
		c := testContact()
		plain, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		ciphertext := runAge(t, plain, "-e", "-R", o.recipientsPath)
		got, err := crypto.OpenInner(ciphertext, o.identities)
		if err != nil {
			t.Fatalf("OpenInner of age -e -R output: %v", err)
		}
		sameContact(t, got, c)
	})
	t.Run("a record sealed by stock age in both layers opens with the registry", func(t *testing.T) {
		c := testContact()
		plain, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		inner := runAge(t, plain, "-e", "-R", o.recipientsPath)
		outer := runAge(t, inner, "-e", "-r", e.key.Recipient)
		got, err := crypto.Open(visitOf(c, outer), e.id, o.identities)
		if err != nil {
			t.Fatalf("Open of a record sealed by age in two layers: %v", err)
		}
		sameContact(t, got, c)
	})
}
