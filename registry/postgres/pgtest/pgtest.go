// Package pgtest gives tests a PostgreSQL database of their own.
//
// Tests that need PostgreSQL read the server's DSN from
// REGISTRY_TEST_POSTGRES_DSN (`make test` starts a throwaway server with
// scripts/pg-test-server). When it is unset they fail, so that a missing
// server is never mistaken for a pass, unless REGISTRY_TEST_POSTGRES=skip
// is set, in which case they are skipped.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
)

// DSN returns the test server's DSN from REGISTRY_TEST_POSTGRES_DSN. Without
// it, it fails tb, or skips it when REGISTRY_TEST_POSTGRES=skip.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("REGISTRY_TEST_POSTGRES_DSN")
	if dsn != "" {
		return dsn
	}
	if os.Getenv("REGISTRY_TEST_POSTGRES") == "skip" {
		tb.Skip("REGISTRY_TEST_POSTGRES=skip: skipping a PostgreSQL test")
	}
	tb.Fatal("REGISTRY_TEST_POSTGRES_DSN is not set: run make test, or eval $(scripts/pg-test-server start) " +
		"(set REGISTRY_TEST_POSTGRES=skip to skip PostgreSQL tests)")
	return ""
}

// NewDatabase creates a fresh database registry_test_<random> on the test
// server, returns its DSN and drops it when the test ends. Call it from
// the test's own goroutine (it may skip or fail tb).
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	dsn, drop, err := CreateDatabase(DSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return dsn
}

// CreateDatabase creates a fresh database registry_test_<random> on the
// server and returns its DSN and a function that drops it. It never
// touches a testing.TB, so that it may run in other goroutines (the
// Setup of testscript).
func CreateDatabase(server string) (dsn string, drop func() error, err error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, fmt.Errorf("REGISTRY_TEST_POSTGRES_DSN must be a postgres:// URL: %w", err)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "registry_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("postgres", server)
	if err != nil {
		return "", nil, fmt.Errorf("open test server: %w", err)
	}
	admin.SetMaxOpenConns(1)
	if _, err := admin.Exec("CREATE DATABASE " + pq.QuoteIdentifier(name)); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create test database (is the server at REGISTRY_TEST_POSTGRES_DSN up? eval $(scripts/pg-test-server start)): %w", err)
	}
	drop = func() error {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop test database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func openAdmin(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		tb.Fatalf("open test server: %v", err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		tb.Fatalf("test server at REGISTRY_TEST_POSTGRES_DSN does not answer: %v "+
			"(start one with eval $(scripts/pg-test-server start))", err)
	}
	return db
}

// Cluster is a PostgreSQL cluster of a test's own, started with
// scripts/pg-test-server: for tests that stop, crash or freeze the server,
// and for benchmarks that need durable settings.
type Cluster struct {
	tb     testing.TB
	DSN    string // the cluster's postgres database
	dir    string
	env    []string
	script string
}

// OwnCluster starts a cluster for tb and stops it at cleanup. With durable
// set it runs with fsync and synchronous_commit on (an immediate stop then
// loses nothing committed); otherwise as the shared test cluster does. It
// fails tb, or skips it with REGISTRY_TEST_POSTGRES=skip, like DSN.
func OwnCluster(tb testing.TB, durable bool) *Cluster {
	tb.Helper()
	DSN(tb) // the PostgreSQL tests skip, or fail, together
	script, err := repoScript("scripts/pg-test-server")
	if err != nil {
		tb.Fatal(err)
	}
	start := exec.Command(script, "start")
	start.Env = os.Environ()
	if durable {
		start.Env = append(start.Env, "REGISTRY_TEST_PG_DURABLE=1")
	}
	var stderr strings.Builder
	start.Stderr = &stderr
	out, err := start.Output()
	if err != nil {
		tb.Fatalf("start a PostgreSQL cluster: %v\n%s", err, stderr.String())
	}
	return newCluster(tb, script, os.Environ(), out)
}

// newCluster is the cluster that pg-test-server's export line out names;
// it is stopped at cleanup.
func newCluster(tb testing.TB, script string, env []string, out []byte) *Cluster {
	c := &Cluster{tb: tb, env: env, script: script}
	for _, part := range strings.Split(strings.TrimSpace(string(out)), ";") {
		k, v, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(part), "export "), "=")
		v = strings.Trim(v, "'")
		c.env = append(c.env, k+"="+v)
		switch k {
		case "REGISTRY_TEST_POSTGRES_DSN":
			c.DSN = v
		case "REGISTRY_TEST_PG_DIR":
			c.dir = v
		}
	}
	tb.Cleanup(func() {
		c.run("thaw")
		c.run("stop")
	})
	return c
}

// Standby starts a synchronous streaming standby of c (scripts/pg-test-
// server standby): from then on a commit on c returns only once the
// standby has it. It is stopped at cleanup.
func (c *Cluster) Standby() *Cluster {
	c.tb.Helper()
	cmd := exec.Command(c.script, "standby")
	cmd.Env = c.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.tb.Fatalf("start a standby: %v\n%s", err, stderr.String())
	}
	return newCluster(c.tb, c.script, os.Environ(), out)
}

// Port is the cluster's TCP port on 127.0.0.1.
func (c *Cluster) Port() string {
	u, err := url.Parse(c.DSN)
	if err != nil {
		c.tb.Fatal(err)
	}
	return u.Port()
}

// Do runs a fault action of scripts/pg-test-server on the cluster: halt,
// resume, freeze, thaw, kill or promote. It fails the test, with the server's log, when
// the action fails.
func (c *Cluster) Do(action string) {
	c.tb.Helper()
	if out, err := c.run(action); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.tb.Fatalf("pg-test-server %s: %v\n%s\nserver log:\n%s", action, err, out, log)
	}
}

func (c *Cluster) run(action string) ([]byte, error) {
	cmd := exec.Command(c.script, action)
	cmd.Env = c.env
	return cmd.CombinedOutput()
}

// repoScript finds path from the working directory upwards (tests run in
// their package's directory).
func repoScript(path string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, path)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the working directory", path)
		}
		dir = parent
	}
}
