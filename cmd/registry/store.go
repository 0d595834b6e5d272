package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// dbMode says whether openStore may create a new SQLite database.
type dbMode int

const (
	existingDB dbMode = iota // refuse a file that does not exist
	createDB                 // create it (migrate, serve)
)

// openStore opens the database named by --db: a postgres:// URL opens
// PostgreSQL, anything else is a SQLite file. With createDB a missing file
// is created (mode 0600, its directory 0700 when missing); otherwise a
// missing file is refused, so that a mistyped path never creates an empty
// database. A SQLite database file others may read is refused; one the
// group may read, or a directory others may enter, is warned about. Both
// stores run their migrations.
func (a *app) openStore(ctx context.Context, mode dbMode) (registry.Store, error) {
	if a.db == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "no database configured"), "pass --db FILE or --db postgres://… (or set REGISTRY_DB)")
	}
	if isPostgres(a.db) {
		s, err := postgres.Open(ctx, a.db)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		s.Now = a.now
		return s, nil
	}
	if err := a.prepareSQLite(mode); err != nil {
		return nil, err
	}
	s, err := sqlite.Open(ctx, a.db)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", a.db, err)
	}
	s.Now = a.now // the store writes its times by the command's clock
	return s, nil
}

// prepareSQLite checks, or with createDB creates, the database file and
// its directory with private modes: SQLite gives its -wal and -shm files
// the mode of the database file.
func (a *app) prepareSQLite(mode dbMode) error {
	dir := filepath.Dir(a.db)
	_, err := os.Stat(a.db)
	switch {
	case errors.Is(err, fs.ErrNotExist) && mode == existingDB:
		return withHint(registry.Errorf(registry.EINVALID, "there is no database at %s", a.db),
			"check --db (or REGISTRY_DB); 'registry migrate' or 'registry serve' creates a new database")
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
		f, err := os.OpenFile(a.db, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create database file: %w", err)
		} else if err == nil {
			f.Close()
		}
	case err != nil:
		return fmt.Errorf("open SQLite database %s: %w", a.db, err)
	}
	return a.checkPrivate(dir, a.db)
}

// checkPrivate refuses a database file that others may read and warns
// about one the group may read, and about a directory others may enter.
func (a *app) checkPrivate(dir, db string) error {
	for _, p := range []string{db, dir} {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check %s: %w", p, err)
		}
		perm, want := fi.Mode().Perm(), "600"
		if fi.IsDir() {
			want = "700"
		}
		switch {
		case !fi.IsDir() && perm&0o004 != 0:
			return withHint(registry.Errorf(registry.EINVALID, "%s can be read by every user of this host (mode %04o)", p, perm),
				"run chmod %s %s; the database holds sealed contact data and its metadata", want, p)
		case perm&0o077 != 0:
			a.logger.Warn("the database or its directory is open to other users of this host; chmod it", "path", p, "mode", fmt.Sprintf("%04o", perm), "want", want)
		}
	}
	return nil
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
