package crypto_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// TestScratchFiles: a scratch file reads back what was written, holds no
// plaintext on disk, and, once its process has forgotten the key (a crash
// leaves it behind), opens with no identity, the health office's
// included; the next OpenScratchDir removes it.
func TestScratchFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmp")
	d, err := crypto.OpenScratchDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("scratch directory mode %04o, want 0700", fi.Mode().Perm())
	}
	o := newOffice(t)
	plain := bytes.Repeat([]byte("KONTAKTDATEN-Erika-Mustermann "), 10000)
	f, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) || f.Size() != int64(len(plain)) {
		t.Fatalf("read back %d bytes (%v), size %d; want the %d written", len(got), err, f.Size(), len(plain))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the scratch directory, want 1", len(entries))
	}
	path := filepath.Join(dir, entries[0].Name())
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("Mustermann")) {
		t.Error("the scratch file holds plaintext")
	}
	// The file as a crash leaves it: nobody can open it.
	var noMatch *age.NoIdentityMatchError
	if _, err := age.Decrypt(bytes.NewReader(raw), o.identities...); !errors.As(err, &noMatch) {
		t.Errorf("a leftover scratch file opens with the office's identity: %v", err)
	}
	if _, err := crypto.OpenScratchDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover survived OpenScratchDir: %v", err)
	}
	if err := f.Remove(); err != nil {
		t.Errorf("Remove after removal: %v", err)
	}
}

func TestScratchDirRefusesOpenModes(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	_, err := crypto.OpenScratchDir(dir)
	if registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(registry.ErrorMessage(err), "chmod 700") {
		t.Errorf("OpenScratchDir(0755) = %v, want EINVALID with a hint", err)
	}
}
