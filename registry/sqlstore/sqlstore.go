// Package sqlstore implements registry.Store once over database/sql (through
// sqlx) for every SQL database the registry supports. The adapters
// registry/sqlite and registry/postgres open the database, run their own
// migrations and hand sqlstore a Dialect for the few things that differ:
// the audit-append lock, the clean-up after a purge and the classification
// of driver errors.
//
// All SQL is written with '?' placeholders and rebound for the driver, so
// one text serves both databases. Times are stored as BIGINT unix
// microseconds UTC, days as 'YYYY-MM-DD' text.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// Dialect is what differs between the databases.
type Dialect interface {
	// LockAudit serialises audit appends across connections and processes
	// inside the write transaction tx, before the chain head is read. SQLite
	// has one writer and needs nothing; PostgreSQL takes a transaction-scoped
	// advisory lock.
	LockAudit(ctx context.Context, tx *sqlx.Tx) error
	// AfterPurge runs after a purge that deleted the visits checked in
	// before cutoff committed (and after every purge until it once
	// succeeded), outside any transaction, to make the deleted bytes
	// unrecoverable from the database files.
	AfterPurge(ctx context.Context, db *sqlx.DB, cutoff time.Time) error
	// ErrorCode classifies a driver error: registry.ECONFLICT for a unique
	// violation, registry.EUNAVAILABLE for a busy or lost database, "" for
	// anything else.
	ErrorCode(err error) string
	// AddDays prepares the storage of visits checked in on the days, inside
	// the transaction that adds their epoch keys (PostgreSQL: one partition
	// per day). SQLite needs nothing.
	AddDays(ctx context.Context, tx *sqlx.Tx, days []registry.Day) error
	// Now returns the database server's clock, or nil when the database
	// has none of its own (SQLite runs on the host's clock).
	Now(ctx context.Context, db *sqlx.DB) (*time.Time, error)
	// SnapshotIsolation is the isolation level of a read-only transaction
	// that must see one snapshot throughout (PostgreSQL: repeatable read;
	// SQLite: a read transaction always does).
	SnapshotIsolation() sql.IsolationLevel
}

// Store implements registry.Store. Write transactions run on the write
// pool; reads outside transactions on the read pool (the same pool for
// PostgreSQL, a separate one for SQLite's single writer).
type Store struct {
	// Now is the clock for times the interface does not pass in (audit
	// times of visits, tokens, keys and requests). Defaults to time.Now.
	Now func() time.Time

	db      *sqlx.DB
	read    *sqlx.DB
	dialect Dialect
	stmts   map[string]*sqlx.Stmt // prepared statements of the write path, by query text
	days    sync.Map              // registry.Day → true: days whose storage is prepared
	salts   sync.Map              // actor + "\x00" + month → the actor's salt
	// noWrite is set when a write failed for lack of space or a failing
	// disk (CodeNoWrite), cleared by the next commit (see WriteHealth);
	// writeFailures counts those failures.
	noWrite       atomic.Bool
	writeFailures atomic.Uint64
}

// CodeNoWrite is what a Dialect's ErrorCode returns for a write that
// failed for lack of space or a failing disk: the store answers
// EUNAVAILABLE (503, retry later) and reports not ready until a write
// succeeds again.
const CodeNoWrite = "no_write"

// CodeCorrupt is what a Dialect's ErrorCode returns when the database
// reports damaged storage; the store answers ErrCorrupt.
const CodeCorrupt = "corrupt"

// ErrCorrupt is the error of a damaged database (errors.Is finds it): an
// internal error whose message says what to do.
var ErrCorrupt = registry.Errorf(registry.EINTERNAL, "The database file is damaged (the database reports corruption). Stop serve, keep the damaged file for analysis, and restore the latest backup (docs/operations.md: Backups); registrations since that backup are lost.")

// preparedQueries are the statements every registration batch runs. They
// are prepared once on the write pool, before any transaction holds its
// connection (SQLite's write pool has one), and reused by every
// transaction: the database parses them once, not per statement.
var preparedQueries = append(chunkQueries(), insertAudit, lastAuditQuery, actorSaltQuery, insertActor)

// New returns a Store over the write and read pools, which may be the same,
// with the hot statements prepared. Closing the Store closes both pools.
func New(ctx context.Context, write, read *sqlx.DB, d Dialect) (*Store, error) {
	s := &Store{Now: time.Now, db: write, read: read, dialect: d, stmts: map[string]*sqlx.Stmt{}}
	for _, q := range preparedQueries {
		st, err := write.PreparexContext(ctx, write.Rebind(q))
		if err != nil {
			s.closeStmts()
			return nil, s.errorf(err, "prepare statement")
		}
		s.stmts[q] = st
	}
	return s, nil
}

// stmt returns the prepared statement of query (one of preparedQueries)
// bound to tx.
func (s *Store) stmt(ctx context.Context, tx *sqlx.Tx, query string) (*sqlx.Stmt, error) {
	st, ok := s.stmts[query]
	if !ok {
		return nil, fmt.Errorf("statement not prepared: %.40s", query)
	}
	return tx.StmtxContext(ctx, st), nil
}

func (s *Store) closeStmts() {
	for _, st := range s.stmts {
		st.Close()
	}
}

// SetClock sets Now, for callers that hold the store behind an interface.
func (s *Store) SetClock(now func() time.Time) { s.Now = now }

// DB returns the write pool, for adapters and their tests.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping returns an error unless both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return s.errorf(err, "ping database")
	}
	if err := s.read.PingContext(ctx); err != nil {
		return s.errorf(err, "ping database")
	}
	return nil
}

// Close closes the pools.
func (s *Store) Close() error {
	s.closeStmts()
	err := s.db.Close()
	if s.read != s.db {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// rebind turns '?' placeholders into the driver's.
func (s *Store) rebind(query string) string { return s.db.Rebind(query) }

// inTx runs fn in a write transaction and commits when fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return s.errorf(err, "begin transaction")
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.errorf(err, "commit")
	}
	s.noWrite.Store(false)
	return nil
}

// settingWriteProbe is the row WriteHealth writes.
const settingWriteProbe = "write_probe"

// WriteHealth reports whether the database can write. After a write
// failed for lack of space or a failing disk it tries a small write of
// its own, and answers nil once one succeeds; /readyz reports it, so that
// a node with a full disk takes no traffic until it can store again.
func (s *Store) WriteHealth(ctx context.Context) error {
	if !s.noWrite.Load() {
		return nil
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO settings (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value`), settingWriteProbe, []byte(strconv.FormatInt(s.now().UnixMicro(), 10)))
		return s.errorf(err, "probe write")
	})
}

// WriteFailures counts the writes that failed for lack of space or a
// failing disk since the store was opened.
func (s *Store) WriteFailures() uint64 { return s.writeFailures.Load() }

// errorf wraps a driver error with what was being done. Unique violations
// become ECONFLICT; busy, restarting, unreachable or silent databases and
// cancelled calls EUNAVAILABLE; missing rows ENOTFOUND. The driver's text
// stays in the wrapped chain for logs only.
func (s *Store) errorf(err error, doing string) error {
	if err == nil {
		return nil
	}
	var e *registry.Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return registry.Errorf(registry.ENOTFOUND, "Not found.")
	}
	cause := fmt.Errorf("%s: %w", doing, err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return &wrapped{errTimeout, cause}
	case unreachable(err):
		return &wrapped{errUnreachable, cause}
	}
	switch s.dialect.ErrorCode(err) {
	case registry.ECONFLICT:
		return &wrapped{registry.Errorf(registry.ECONFLICT, "Conflicts with a stored record."), cause}
	case registry.EUNAVAILABLE:
		return &wrapped{errBusy, cause}
	case CodeNoWrite:
		s.noWrite.Store(true)
		s.writeFailures.Add(1)
		return &wrapped{errNoWrite, cause}
	case CodeCorrupt:
		return &wrapped{ErrCorrupt, cause}
	}
	return cause
}

var (
	errTimeout     = registry.Errorf(registry.EUNAVAILABLE, "The database did not answer in time; try again shortly.")
	errUnreachable = registry.Errorf(registry.EUNAVAILABLE, "The database cannot be reached right now; try again shortly.")
	errBusy        = registry.Errorf(registry.EUNAVAILABLE, "The database is busy or restarting; try again shortly.")
	errNoWrite     = registry.Errorf(registry.EUNAVAILABLE, "The database cannot write right now (its disk is full or failing); try again later.")
)

// unreachable reports whether err says that the database server is gone:
// a refused, reset or broken connection, a network timeout, or a
// connection the driver gave up on. Such an error is no fault of the
// request and is answered 503, not 500.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// wrapped carries a domain error and the driver error behind it, so that
// registry.ErrorCode sees the domain code and logs see the cause.
type wrapped struct {
	domain *registry.Error
	cause  error
}

func (w *wrapped) Error() string   { return w.cause.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.domain, w.cause} }

// Time conversion: BIGINT unix microseconds, UTC.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

// nullBytes binds nil as SQL NULL (drivers may bind an empty blob).
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func utcMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// update runs a guarded UPDATE (one whose WHERE re-checks the state the
// caller read) and returns ECONFLICT with msg unless it changed exactly one
// row. Under PostgreSQL's READ COMMITTED a concurrent transaction may have
// changed the row since it was read; the guard then matches nothing.
func (s *Store) update(ctx context.Context, tx *sqlx.Tx, msg, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, s.rebind(query), args...)
	if err != nil {
		return s.errorf(err, "update")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.errorf(err, "update")
	}
	if n != 1 {
		return registry.Errorf(registry.ECONFLICT, "%s", msg)
	}
	return nil
}

// setting returns a stored setting, or ENOTFOUND.
func (s *Store) setting(ctx context.Context, q sqlx.QueryerContext, name string) ([]byte, error) {
	var value []byte
	err := sqlx.GetContext(ctx, q, &value, s.rebind(`SELECT value FROM settings WHERE name = ?`), name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Setting %s not found.", name)
	}
	return value, s.errorf(err, "read setting")
}

// PrepareDays prepares the storage of visits checked in on the days (see
// Dialect.AddDays), for loading visits straight into the table (bulk loads
// of benchmarks and restores).
func (s *Store) PrepareDays(ctx context.Context, days []registry.Day) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		return s.errorf(s.dialect.AddDays(ctx, tx, days), "prepare the days' storage")
	})
	if err == nil {
		s.markDays(days)
	}
	return err
}
