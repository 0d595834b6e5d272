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
	// The file has no name: a crash or kill leaves nothing in the
	// directory, and the kernel frees the blocks with the descriptor.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files in the scratch directory, want none (the file is unlinked at once)", len(entries))
	}
	// What reaches the disk is sealed: read it through the process's
	// descriptor, as a reader of the raw blocks would see it.
	raw := unlinkedFile(t, dir)
	if bytes.Contains(raw, []byte("Mustermann")) {
		t.Error("the scratch file holds plaintext")
	}
	var noMatch *age.NoIdentityMatchError
	if _, err := age.Decrypt(bytes.NewReader(raw), o.identities...); !errors.As(err, &noMatch) {
		t.Errorf("the scratch file opens with the office's identity: %v", err)
	}
	// A leftover of an older version (named) is removed at the next start.
	leftover := filepath.Join(dir, "scratch-123456")
	if err := os.WriteFile(leftover, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.OpenScratchDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
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

// unlinkedFile returns the content of the one deleted file of dir that
// this process holds open, found through /proc/self/fd.
func unlinkedFile(t *testing.T, dir string) []byte {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list /proc/self/fd: %v", err)
	}
	var found []byte
	n := 0
	for _, fd := range fds {
		p := filepath.Join("/proc/self/fd", fd.Name())
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, dir+"/") || !strings.HasSuffix(target, " (deleted)") {
			continue
		}
		if found, err = os.ReadFile(p); err != nil {
			t.Fatalf("read %s: %v", target, err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d deleted files of the scratch directory are open, want 1", n)
	}
	return found
}
