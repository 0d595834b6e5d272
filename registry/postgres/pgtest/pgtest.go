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
