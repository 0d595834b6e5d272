package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/sqlite"
)

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func dsnHasPassword(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return true // cannot tell: refuse rather than risk it
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return u.Query().Get("password") != ""
}

// openStore opens the database named by --db: a postgres:// URL opens
// PostgreSQL, anything else is a SQLite file whose directory is created
// (mode 0700) if missing. Both run their migrations.
func (a *app) openStore(ctx context.Context) (registry.Store, error) {
	if a.db == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "no database configured"), "pass --db FILE or --db postgres://… (or set REGISTRY_DB)")
	}
	if isPostgres(a.db) {
		s, err := postgres.Open(ctx, a.db)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(a.db), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	s, err := sqlite.Open(ctx, a.db)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", a.db, err)
	}
	return s, nil
}

// describeDB names the database for messages without any credentials.
func describeDB(dsn string) string {
	if !isPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	return "postgres://" + u.Host + u.Path
}
