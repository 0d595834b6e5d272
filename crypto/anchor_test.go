package crypto_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// TestAnchors: the instance notes the log's head in the key store, signed;
// it only moves forward; a file edited by hand, or signed by another
// instance, is refused.
func TestAnchors(t *testing.T) {
	ks, err := crypto.OpenKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := ks.InstanceKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	an := ks.Anchors(inst)
	if a, err := an.Anchor(); a != nil || err != nil {
		t.Fatalf("Anchor() before any = %v, %v; want none", a, err)
	}
	h := bytes.Repeat([]byte{7}, 32)
	if err := an.Note(&registry.LogAnchor{Size: 10, Hash: h}); err != nil {
		t.Fatal(err)
	}
	if err := an.Note(&registry.LogAnchor{Size: 5, Hash: bytes.Repeat([]byte{1}, 32)}); err != nil {
		t.Fatal(err)
	}
	if a, err := an.Anchor(); err != nil || a.Size != 10 || !bytes.Equal(a.Hash, h) {
		t.Fatalf("Anchor() = %+v, %v; want size 10 (it never moves back)", a, err)
	}
	path := filepath.Join(ks.Dir, "audit.anchor")
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("anchor file mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), "size 10", "size 3", 1)), 0o600)
	if _, err := an.Anchor(); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("an edited anchor = %v, want EINVALID", err)
	}
	os.WriteFile(path, data, 0o600)
	other := ks.Anchors(crypto.GenerateSigningKey())
	if _, err := other.Anchor(); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("an anchor of another instance = %v, want EINVALID", err)
	}
}
