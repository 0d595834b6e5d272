package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"github.com/cityhall/registry/registry/audit"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/cityhall/registry/registry"
)

func testKeys(t *testing.T, name string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := audit.GenerateSignerKey(name)
	if err != nil {
		t.Fatalf("audit.GenerateSignerKey: %v", err)
	}
	return skey, vkey
}

func testCheckpoint() audit.Checkpoint {
	h := sha256.Sum256([]byte("head"))
	return audit.Checkpoint{Origin: "registry.meschede.de/audit", Size: 42, Hash: h[:]}
}

func TestSignOpen(t *testing.T) {
	skey, vkey := testKeys(t, "registry-audit")
	cp := testCheckpoint()
	msg, err := audit.Sign(cp, skey)
	if err != nil {
		t.Fatalf("audit.Sign: %v", err)
	}
	text, _, _ := strings.Cut(string(msg), "\n\n")
	if want := "registry.meschede.de/audit\n42\n" + b64(cp.Hash); text != want {
		t.Errorf("text = %q, want %q", text, want)
	}
	if !strings.Contains(string(msg), "\n— registry-audit ") {
		t.Errorf("message %q lacks the signature line", msg)
	}
	got, err := audit.Open(msg, vkey)
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	if got.Origin != cp.Origin || got.Size != cp.Size || !bytes.Equal(got.Hash, cp.Hash) {
		t.Errorf("audit.Open = %+v, want %+v", got, cp)
	}
	if !strings.Contains(skey, "PRIVATE+KEY+registry-audit+") || strings.Contains(vkey, "PRIVATE") {
		t.Errorf("keys have unexpected forms: %.30s…, %s", skey, vkey)
	}
}

func TestOpenRefuses(t *testing.T) {
	skey, vkey := testKeys(t, "registry-audit")
	_, otherV := testKeys(t, "registry-audit")
	otherS, _ := testKeys(t, "mallory")
	msg, err := audit.Sign(testCheckpoint(), skey)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := audit.Sign(testCheckpoint(), otherS)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte { return []byte(strings.Replace(string(msg), old, new, 1)) }
	tests := []struct {
		name string
		msg  []byte
		vkey string
		want string
	}{
		{"signed by another key", byOther, vkey, "not signed by the key"},
		{"same name, other key", msg, otherV, "not signed by the key"},
		{"size edited", edit("\n42\n", "\n43\n"), vkey, "does not verify"},
		{"origin edited", edit("meschede", "arnsberg"), vkey, "does not verify"},
		{"hash edited", edit(b64(testCheckpoint().Hash), b64(registry.GenesisHash)), vkey, "does not verify"},
		{"signature removed", []byte(strings.SplitAfter(string(msg), "\n\n")[0]), vkey, "not a signed note"},
		{"garbage", []byte("hello"), vkey, "not a signed note"},
		{"malformed verifier key", msg, "registry-audit+00000000+AAAA", "verifier key is malformed"},
		{"private key as verifier", msg, skey, "verifier key is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, err := audit.Open(tt.msg, tt.vkey)
			if cp != nil || registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("audit.Open = %v, %v; want EINVALID containing %q", cp, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE") {
				t.Errorf("error %q holds key material", err)
			}
		})
	}
}

// TestOpenStrictText: a correctly signed note that is not a canonical
// checkpoint is refused.
func TestOpenStrictText(t *testing.T) {
	skey, vkey := testKeys(t, "registry-audit")
	h := testCheckpoint().Hash
	for name, text := range map[string]string{
		"four lines":        "o\n1\n" + b64(h) + "\nextra\n",
		"size with plus":    "o\n+1\n" + b64(h) + "\n",
		"size leading zero": "o\n01\n" + b64(h) + "\n",
		"negative size":     "o\n-1\n" + b64(h) + "\n",
		"short hash":        "o\n1\nAAAA\n",
		"empty origin":      "\n1\n" + b64(h) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			msg := signText(t, text, skey)
			if cp, err := audit.Open(msg, vkey); cp != nil || registry.ErrorCode(err) != registry.EINVALID {
				t.Errorf("audit.Open(%q) = %v, %v; want EINVALID", text, cp, err)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	skey, _ := testKeys(t, "registry-audit")
	good := testCheckpoint()
	tests := []struct {
		name string
		cp   audit.Checkpoint
		skey string
	}{
		{"origin with newline", audit.Checkpoint{Origin: "a\nb", Size: 1, Hash: good.Hash}, skey},
		{"empty origin", audit.Checkpoint{Size: 1, Hash: good.Hash}, skey},
		{"negative size", audit.Checkpoint{Origin: "o", Size: -1, Hash: good.Hash}, skey},
		{"short hash", audit.Checkpoint{Origin: "o", Size: 1, Hash: good.Hash[:5]}, skey},
		{"malformed signer key", good, "PRIVATE+KEY+x+1+AAAA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := audit.Sign(tt.cp, tt.skey)
			if msg != nil || registry.ErrorCode(err) != registry.EINVALID {
				t.Errorf("audit.Sign = %q, %v; want EINVALID", msg, err)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE") {
				t.Errorf("error %q holds key material", err)
			}
		})
	}
	for _, name := range []string{"", "a b", "a+b"} {
		if _, _, err := audit.GenerateSignerKey(name); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("audit.GenerateSignerKey(%q): error = %v, want EINVALID", name, err)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// signText signs any text, to test what audit.Open makes of notes that are not
// canonical checkpoints.
func signText(t *testing.T, text, skey string) []byte {
	t.Helper()
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func ExampleSign() {
	skey, _, err := audit.GenerateSignerKey("registry-audit")
	if err != nil {
		panic(err)
	}
	cp := audit.Checkpoint{Origin: "registry.meschede.de/audit", Size: 3, Hash: registry.GenesisHash}
	msg, err := audit.Sign(cp, skey)
	if err != nil {
		panic(err)
	}
	text, sig, _ := strings.Cut(string(msg), "\n\n")
	fmt.Println(text)
	fmt.Println(strings.HasPrefix(sig, "— registry-audit "))
	// Output:
	// registry.meschede.de/audit
	// 3
	// AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
	// true
}
