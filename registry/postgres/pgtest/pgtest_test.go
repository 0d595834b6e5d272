package pgtest_test

import (
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	_ "github.com/lib/pq"

	"github.com/cityhall/registry/registry/postgres/pgtest"
)

func TestNewDatabase(t *testing.T) {
	server := pgtest.DSN(t)
	var names []string
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			dsn := pgtest.NewDatabase(t)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("postgres", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var current string
			if err := db.QueryRow(`SELECT current_database()`).Scan(&current); err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimPrefix(u.Path, "/"); current != want || !strings.HasPrefix(current, "registry_test_") {
				t.Fatalf("current_database() = %q, want %q with prefix registry_test_", current, want)
			}
			names = append(names, current)
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases %v, want two distinct ones", names)
	}
	db, err := sql.Open("postgres", server)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, name := range names {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

// TestDSNWithoutServer runs this test binary without a DSN: it must fail,
// or skip with REGISTRY_TEST_POSTGRES=skip.
func TestDSNWithoutServer(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		pgtest.DSN(t)
		return
	}
	tests := []struct {
		name, skip string
		wantFail   bool
		wantOutput string
	}{
		{"fails", "", true, "run make test"},
		{"skips", "skip", false, "SKIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestDSNWithoutServer$", "-test.v")
			cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", "REGISTRY_TEST_POSTGRES_DSN=", "REGISTRY_TEST_POSTGRES="+tt.skip)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.wantOutput) {
				t.Errorf("child failed=%v, want %v; output:\n%s", failed, tt.wantFail, out)
			}
		})
	}
}
