package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlite"
	"github.com/cityhall/registry/registry/storetest"
)

// open returns a store on a fresh file in the test's temporary directory.
func open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) registry.Store { return open(t) })
}

// TestOpenConcurrent opens one new file from several goroutines at once:
// the migrations must run once and every Open must succeed.
func TestOpenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	storetest.OpensConcurrently(t, func() (registry.Store, error) { return sqlite.Open(context.Background(), path) })
}

func TestOpenRejectsURIs(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?_pragma=secure_delete(OFF)"} {
		_, err := sqlite.Open(context.Background(), path)
		if got := registry.ErrorCode(err); got != registry.EINVALID {
			t.Errorf("Open(%q) error code = %q, want %q", path, got, registry.EINVALID)
		}
	}
}

func TestOpenMissingDir(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "missing", "r.db")); err == nil {
		t.Error("Open() in a missing directory = nil, want an error")
	}
}

// TestFileModes: the database and its -wal and -shm files are private.
func TestFileModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.SeedOneVisit(t, s)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestTampering(t *testing.T) {
	s := open(t)
	storetest.Tampering(t, s, s.DB())
}

func TestDataTampering(t *testing.T) {
	s := open(t)
	storetest.DataTampering(t, s, s.DB())
}
