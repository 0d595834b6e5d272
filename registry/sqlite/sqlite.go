// Package sqlite is the embedded default store: registry.Store on a SQLite
// file through the pure-Go driver modernc.org/sqlite.
//
// The file runs in WAL mode with synchronous=FULL (a committed transaction
// is on disk), foreign_keys=ON and secure_delete=ON on every connection, so
// deleted rows are overwritten with zeros; a purge then checkpoints and
// truncates the WAL so no old page images remain. Writes go through one
// connection that begins every transaction with BEGIN IMMEDIATE (SQLite has
// one writer; taking the lock up front avoids upgrade deadlocks); reads use
// a separate pool of query-only connections. The WAL is copied into the
// database file by a checkpoint in the background, on a connection of its
// own, not by the commit that happens to fill it (see checkpointer).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is registry.Store on a SQLite file. Its Now field (from
// sqlstore.Store) is the clock for times the interface does not pass in.
type Store struct {
	*sqlstore.Store
	path string
	ckpt *checkpointer
	// spaceChecked is the WriteFailures count up to which WriteHealth
	// found minFree bytes free again.
	spaceChecked atomic.Uint64
}

var _ registry.Store = (*Store)(nil)

// readers is the size of the read pool.
const readers = 4

// Open opens or creates the database file at path (its directory must
// exist), sets the pragmas, checks that they took effect and runs the
// migrations. EINVALID for a path the driver cannot take.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := open(ctx, path)
	if err != nil && (dialect{}).ErrorCode(err) == sqlstore.CodeCorrupt {
		return nil, fmt.Errorf("%w (%w)", sqlstore.ErrCorrupt, err)
	}
	return s, err
}

func open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, registry.Errorf(registry.EINVALID, "The database path must be a plain file path.")
	}
	// Setting up a fresh file (switching it to WAL, creating the schema)
	// is done by one process at a time: SQLite answers SQLITE_BUSY without
	// waiting while another connection recovers or converts the file.
	unlock, err := lockDir(ctx, path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A new file is created private: SQLite gives the -wal and -shm files
	// the mode of the database file.
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create sqlite %s: %w", path, err)
	}
	write, err := openPool(ctx, path, true)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := openPool(ctx, path, false)
	if err != nil {
		write.Close()
		return nil, err
	}
	ckpt, err := startCheckpointer(ctx, path)
	if err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	st, err := sqlstore.New(ctx, write, read, dialect{ckpt: ckpt})
	if err != nil {
		write.Close()
		read.Close()
		ckpt.close()
		return nil, err
	}
	return &Store{Store: st, path: path, ckpt: ckpt}, nil
}

// Close stops the background checkpoint and closes the connections; the
// last connection to the file checkpoints what is left.
func (s *Store) Close() error {
	return errors.Join(s.ckpt.close(), s.Store.Close())
}

// QuickCheck runs SQLite's quick integrity check and returns what it
// found wrong (at most ten problems), none for a sound file.
func (s *Store) QuickCheck(ctx context.Context) ([]string, error) {
	var rows []string
	if err := s.DB().SelectContext(ctx, &rows, `PRAGMA quick_check(10)`); err != nil {
		if (dialect{}).ErrorCode(err) == sqlstore.CodeCorrupt {
			return nil, fmt.Errorf("%w (%w)", sqlstore.ErrCorrupt, err)
		}
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	if len(rows) == 1 && rows[0] == "ok" {
		return nil, nil
	}
	return rows, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// dsn returns the driver's connection string: the pragmas run on every new
// connection of the pool.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "secure_delete(ON)")
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		// The checkpointer does it (see checkpointer).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(ON)")
	}
	return path + "?" + q.Encode()
}

func openPool(ctx context.Context, path string, writer bool) (*sqlx.DB, error) {
	db, err := sqlx.Open("sqlite", dsn(path, writer))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if writer {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	} else {
		db.SetMaxOpenConns(readers)
		db.SetMaxIdleConns(readers)
	}
	if err := checkPragmas(ctx, db, writer); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// checkPragmas fails closed when a connection does not run with the
// settings the guarantees rest on.
func checkPragmas(ctx context.Context, db *sqlx.DB, writer bool) error {
	want := map[string]string{"journal_mode": "wal", "secure_delete": "1", "synchronous": "2", "foreign_keys": "1"}
	if !writer {
		want["query_only"] = "1"
	}
	for name, value := range want {
		var got string
		if err := db.GetContext(ctx, &got, "PRAGMA "+name); err != nil {
			return fmt.Errorf("read pragma %s: %w", name, err)
		}
		if !strings.EqualFold(got, value) {
			return fmt.Errorf("pragma %s is %q, want %q", name, got, value)
		}
	}
	return nil
}

// migrate runs the pending migrations while holding the directory lock.
func migrate(ctx context.Context, db *sqlx.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db.DB, migrationsFS())
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// dialect is what SQLite does differently.
type dialect struct {
	ckpt *checkpointer
}

// LockAudit does nothing: the single writer connection and BEGIN IMMEDIATE
// already serialise every write transaction, across processes too.
func (dialect) LockAudit(context.Context, *sqlx.Tx) error { return nil }

// AfterPurge checkpoints the WAL into the database file and truncates it.
// secure_delete has zeroed the deleted cells in the pages the checkpoint
// writes; truncation removes the WAL frames that still held the inserted
// rows. It fails when a reader kept the checkpoint from completing.
func (d dialect) AfterPurge(ctx context.Context, db *sqlx.DB, _ time.Time) error {
	busy, log, done, err := d.ckpt.checkpoint(ctx, db, "TRUNCATE")
	if err != nil {
		return err
	}
	if busy {
		return fmt.Errorf("checkpoint wal: blocked by a reader (%d of %d frames)", done, log)
	}
	return nil
}

// Now returns nil: SQLite reads the host's clock.
func (dialect) Now(context.Context, *sqlx.DB) (*time.Time, error) { return nil, nil }

// SnapshotIsolation is the default: a SQLite read transaction sees one
// snapshot of the WAL until it ends.
func (dialect) SnapshotIsolation() sql.IsolationLevel { return sql.LevelDefault }

// AddDays does nothing: SQLite keeps all visits in one table.
func (dialect) AddDays(context.Context, *sqlx.Tx, []registry.Day) error { return nil }

// ErrorCode classifies SQLite errors by their (extended) result code.
func (dialect) ErrorCode(err error) string {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return registry.ECONFLICT
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return registry.EUNAVAILABLE
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
		return sqlstore.CodeNoWrite
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return sqlstore.CodeCorrupt
	}
	return ""
}

// migrationsFS returns the embedded migrations with the directory stripped,
// as goose expects.
func migrationsFS() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// minFree is the free space below which a store whose write failed for
// lack of space does not even try again (WriteHealth).
const minFree = 1 << 20

// WriteHealth is sqlstore's, with a look at the file system first: after
// a write failed for lack of space, a small write (the probe, the purge's
// audit entry) can still succeed in the WAL's old space while the
// database file cannot grow, so the store stays not ready until its
// directory has minFree bytes free again, whatever succeeded meanwhile.
func (s *Store) WriteHealth(ctx context.Context) error {
	if n := s.WriteFailures(); n != s.spaceChecked.Load() {
		if free, ok := freeSpace(filepath.Dir(s.path)); ok && free < minFree {
			return registry.Errorf(registry.EUNAVAILABLE, "The database's disk is full (%d KiB free); free space on it.", free>>10)
		}
		s.spaceChecked.Store(n)
	}
	return s.Store.WriteHealth(ctx)
}

// Backup writes a consistent copy of the database to path (VACUUM INTO:
// online, while serve runs; a new file of mode 0600). path must not exist.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name.", path)
	}
	if _, err := s.DB().ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("back up the database: %w", err)
	}
	return os.Chmod(path, 0o600)
}
