// Package postgres is the production store: registry.Store on PostgreSQL
// through sqlx and lib/pq, for several intake nodes sharing one database.
//
// Every write runs in a READ COMMITTED transaction; audit appends take a
// transaction-scoped advisory lock before they read the chain head, so
// writers on any number of nodes extend one chain and never fork it.
// Migrations run under goose's session lock, so nodes may start at once.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is registry.Store on PostgreSQL. Its Now field (from
// sqlstore.Store) is the clock for times the interface does not pass in.
type Store struct {
	*sqlstore.Store

	// EraseWait bounds how long a purge waits for transactions older than
	// itself to end before it rewrites the visits table (see AfterPurge in
	// vacuum.go). Defaults to DefaultEraseWait.
	EraseWait time.Duration
}

var _ registry.Store = (*Store)(nil)

// MaxConns bounds the connection pool of a Store.
const MaxConns = 16

// Open connects to the database at dsn (a postgres:// URL or key=value
// string), checks that it answers and runs the migrations. EUNAVAILABLE
// when the server cannot be reached, with a message that says why (wrong
// password, unknown database, TLS required or refused, connection refused,
// timeout); the password is never part of the error.
func Open(ctx context.Context, dsn string) (*Store, error) {
	sdb, cfg, err := openDB(dsn)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(sdb, "postgres")
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns)
	pctx, cancel := context.WithTimeout(ctx, 2*connectTimeout)
	err = db.PingContext(pctx)
	cancel()
	if err != nil {
		db.Close()
		return nil, connectError(err, cfg)
	}
	if err := checkVersion(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{EraseWait: DefaultEraseWait}
	if s.Store, err = sqlstore.New(ctx, db, db, &dialect{store: s}); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// MinServerVersion is the oldest PostgreSQL the store runs on: from 14 on,
// the horizon that decides which deleted rows VACUUM keeps counts only
// sessions of the same database (see AfterPurge).
const MinServerVersion = 140000

func checkVersion(ctx context.Context, db *sqlx.DB) error {
	var v int
	if err := db.GetContext(ctx, &v, `SELECT current_setting('server_version_num')::int`); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	if v < MinServerVersion {
		return registry.Errorf(registry.EUNAVAILABLE, "PostgreSQL %d.%d is too old: registry needs 14 or newer.", v/10000, v%10000)
	}
	return nil
}

type openError struct {
	domain *registry.Error
	cause  error
}

func (e *openError) Error() string   { return "connect to postgres: " + e.cause.Error() }
func (e *openError) Unwrap() []error { return []error{e.domain, e.cause} }

func migrate(ctx context.Context, db *sqlx.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	// Retry every second for up to five minutes while another node migrates.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		if r.Source != nil && r.Source.Version == 2 {
			scrubStatistics(ctx, db)
		}
	}
	return nil
}

// settingScrubPending marks a database whose pg_statistic may still hold
// sealed bytes sampled by the first release, which did not exclude them
// from statistics: migration 0002 dropped that table (and its statistics
// rows), but the rows' bytes stay in the catalog's pages until it is
// rewritten. `registry doctor` reports the mark.
const settingScrubPending = "statistics_scrub_pending"

// scrubStatistics rewrites pg_statistic after the upgrade from the first
// release. A database owner may do that; when the role may not, the mark
// stays and the operator runs it as a superuser.
func scrubStatistics(ctx context.Context, db *sqlx.DB) {
	if _, err := db.ExecContext(ctx, `VACUUM (FULL) pg_catalog.pg_statistic`); err == nil {
		return
	}
	db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, '\x31') ON CONFLICT (name) DO NOTHING`, settingScrubPending)
}

// auditLockSQL is the key of the advisory lock that serialises audit
// appends: "registry" in ASCII, 0x7265676973747279. It is a constant
// literal rather than a parameter so that taking the lock costs one round
// trip instead of two.
const auditLockSQL = "8243108395577799289"

// dialect is what PostgreSQL does differently.
type dialect struct {
	store *Store // for its settings
}

// LockAudit takes the audit advisory lock until the transaction ends. Under
// READ COMMITTED the head read after it sees the previous holder's commit.
func (*dialect) LockAudit(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+auditLockSQL+`)`)
	return err
}

// AddDays creates and attaches the visits partition of each day that has
// none (registry_add_visit_partition in the migrations): a new table is
// attached with ATTACH PARTITION, which does not block the inserts and
// reads of the other partitions the way CREATE TABLE … PARTITION OF does.
func (*dialect) AddDays(ctx context.Context, tx *sqlx.Tx, days []registry.Day) error {
	for _, d := range days {
		if _, err := tx.ExecContext(ctx, `SELECT registry_add_visit_partition($1::date)`, string(d)); err != nil {
			return err
		}
	}
	return nil
}

// Now returns the database server's clock: a second clock for the purge's
// clock guard, on another host when the database is.
func (*dialect) Now(ctx context.Context, db *sqlx.DB) (*time.Time, error) {
	var us int64
	if err := db.GetContext(ctx, &us, `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint`); err != nil {
		return nil, err
	}
	t := time.UnixMicro(us).UTC()
	return &t, nil
}

// SnapshotIsolation is repeatable read: one snapshot for the whole
// transaction.
func (*dialect) SnapshotIsolation() sql.IsolationLevel { return sql.LevelRepeatableRead }

// ErrorCode classifies PostgreSQL errors by SQLSTATE.
func (*dialect) ErrorCode(err error) string {
	var e *pq.Error
	switch {
	case errors.Is(err, driver.ErrBadConn):
		return registry.EUNAVAILABLE
	case !errors.As(err, &e):
		return ""
	case e.Code == "23505": // unique_violation
		return registry.ECONFLICT
	case e.Code == "53100", e.Code == "58030": // disk_full, io_error
		return sqlstore.CodeNoWrite
	case e.Code == "40001", e.Code == "40P01", // serialization failure, deadlock
		e.Code == "55P03",                        // lock_not_available (lock_timeout)
		e.Code == "57014",                        // query_canceled (statement_timeout, cancel)
		strings.HasPrefix(string(e.Code), "08"),  // connection exceptions
		strings.HasPrefix(string(e.Code), "53"),  // insufficient resources
		strings.HasPrefix(string(e.Code), "57P"): // admin shutdown, crash shutdown, cannot connect now
		return registry.EUNAVAILABLE
	}
	return ""
}
