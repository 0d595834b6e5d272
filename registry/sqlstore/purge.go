package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// errDryRun rolls back a dry run after it counted everything.
var errDryRun = errors.New("dry run")

// settingErasePending holds the cutoff (unix microseconds) of the latest
// purge that deleted visits until the dialect's AfterPurge succeeded, so
// that a failed clean-up is retried by the next purge even when that one
// deletes nothing.
const settingErasePending = "erase_pending"

// purgeChunk is how many expired visits one transaction deletes. A purge
// of a week's backlog deletes in many short transactions, so that intake,
// which waits for the write lock on SQLite, is never held for long.
const purgeChunk = 1000

// Purge carries out p: it deletes the expired visits in chunks of
// purgeChunk, each in a transaction of its own, then runs the rest (the
// automatic check-outs, expired requests, destroyed keys) in one last
// transaction with one AuditPurge event whose details are the report; see
// registry.PurgeStore. Visits checked in before the cutoff cannot be
// registered any more, so the chunks race with nothing. A dry run counts
// the same statements in a transaction it rolls back; it records nothing.
// After a real run that deleted visits, the dialect's AfterPurge makes the
// deleted bytes unrecoverable; if that fails the purge stays committed,
// the error says so and the next purge retries the clean-up.
func (s *Store) Purge(ctx context.Context, actor registry.Actor, p registry.PurgePlan) (*registry.PurgeReport, error) {
	if p.Now.IsZero() || p.Cutoff.IsZero() {
		return nil, registry.Errorf(registry.EINVALID, "A purge needs a time and a cutoff.")
	}
	rep := &registry.PurgeReport{
		RanAt: utcMicro(p.Now), DryRun: p.DryRun, Cutoff: utcMicro(p.Cutoff), KeysDestroyed: []registry.Day{},
	}
	rep.KeysDestroyed = append(rep.KeysDestroyed, p.Destroyed...)
	if !p.DryRun {
		n, err := s.deleteExpired(ctx, p.Cutoff)
		rep.VisitsDeleted = n
		if err != nil {
			return nil, err
		}
	}
	remaining, err := s.countRemaining(ctx, p.Cutoff)
	if err != nil {
		return nil, err
	}
	rep.VisitsRemaining = remaining
	var erase *time.Time
	err = s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		if err := s.purge(ctx, tx, p, rep); err != nil {
			return err
		}
		if p.DryRun {
			return errDryRun
		}
		if erase, err = s.erasePending(ctx, tx); err != nil {
			return err
		}
		return s.audit(ctx, tx, rep.RanAt, actor, "", *rep)
	})
	if p.DryRun && errors.Is(err, errDryRun) {
		return rep, nil
	} else if err != nil {
		return nil, err
	}
	if erase != nil {
		if err := s.erase(ctx, *erase); err != nil {
			return rep, fmt.Errorf("purge committed, but erasing deleted bytes failed (the next purge retries): %w", err)
		}
	}
	return rep, nil
}

// deleteExpired deletes the visits checked in before cutoff, purgeChunk at
// a time, each chunk with the erase-pending mark, and returns how many.
func (s *Store) deleteExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
			n, err = s.exec(ctx, tx, `DELETE FROM visits WHERE check_in < ? AND id IN
(SELECT id FROM visits WHERE check_in < ? ORDER BY check_in LIMIT ?)`, micros(cutoff), micros(cutoff), purgeChunk)
			if err != nil || n == 0 {
				return err
			}
			return s.markErase(ctx, tx, cutoff)
		})
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}

// countRemaining counts the visits not expired at cutoff on the read pool,
// outside the write transaction: counting a large table there would hold
// intake for as long.
func (s *Store) countRemaining(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.read.GetContext(ctx, &n, s.rebind(`SELECT count(*) FROM visits WHERE check_in >= ?`), micros(cutoff))
	return n, s.errorf(err, "count remaining visits")
}

// markErase records that deleted bytes up to cutoff await erasure.
func (s *Store) markErase(ctx context.Context, tx *sqlx.Tx, cutoff time.Time) error {
	_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO settings (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value`), settingErasePending, []byte(strconv.FormatInt(micros(cutoff), 10)))
	return s.errorf(err, "mark erase pending")
}

// erasePending returns the cutoff of the deleted bytes that await erasure
// (from this purge or an earlier one), or nil.
func (s *Store) erasePending(ctx context.Context, tx *sqlx.Tx) (*time.Time, error) {
	v, err := s.setting(ctx, tx, settingErasePending)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	us, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		us = time.Now().UnixMicro() // an older release wrote "1": erase everything
	}
	t := fromMicros(us)
	return &t, nil
}

// erase runs the dialect's clean-up and clears the pending mark.
func (s *Store) erase(ctx context.Context, cutoff time.Time) error {
	if err := s.dialect.AfterPurge(ctx, s.db, cutoff); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM settings WHERE name = ?`), settingErasePending)
	return s.errorf(err, "clear erase pending")
}

// purge runs the last transaction's statements and fills in the report.
// Open visits are found through the partial index of open visits, bounded
// below by the cutoff (older ones are deleted).
func (s *Store) purge(ctx context.Context, tx *sqlx.Tx, p registry.PurgePlan, rep *registry.PurgeReport) error {
	var err error
	now, cutoff := micros(p.Now), micros(p.Cutoff)
	if p.DryRun {
		if err := tx.GetContext(ctx, &rep.VisitsDeleted, s.rebind(`SELECT count(*) FROM visits WHERE check_in < ?`), cutoff); err != nil {
			return s.errorf(err, "count expired visits")
		}
	}
	// An idempotency record of a check-in before the cutoff names only
	// deleted visits.
	if _, err := s.exec(ctx, tx, `DELETE FROM idempotency WHERE check_in < ?`, cutoff); err != nil {
		return err
	}
	// Appointments (and their link to visits) go with the same period.
	if p.DryRun {
		err = tx.GetContext(ctx, &rep.AppointmentsDeleted, s.rebind(`SELECT count(*) FROM appointments WHERE start_at < ?`), cutoff)
	} else {
		rep.AppointmentsDeleted, err = s.exec(ctx, tx, `DELETE FROM appointments WHERE start_at < ?`, cutoff)
	}
	if err != nil {
		return s.errorf(err, "delete expired appointments")
	}
	if !p.StaleBefore.IsZero() {
		rep.VisitsAutoCheckedOut, err = s.exec(ctx, tx, `UPDATE visits SET check_out = check_in + ?, checkout_auto = ?, checkout_reason = ?
WHERE check_out IS NULL AND check_in >= ? AND check_in < ?`, p.MaxStay.Microseconds(), true, string(registry.CheckoutMaxStay), cutoff, micros(p.StaleBefore))
		if err != nil {
			return err
		}
	}
	// A pending request whose window ended by the cutoff has no data left:
	// every visit in its scope checked in before its end.
	rep.RequestsExpired, err = s.exec(ctx, tx, `UPDATE trace_requests SET status = ?, closed_at = ?
WHERE (status = ? AND expires_at <= ?) OR (status = ? AND window_to <= ?)`,
		string(registry.TraceExpired), now, string(registry.TraceApproved), now, string(registry.TracePending), cutoff)
	if err != nil {
		return err
	}
	if !p.StaffBefore.IsZero() {
		if err := s.eraseStaff(ctx, tx, p.StaffBefore, rep); err != nil {
			return err
		}
		before := utcMicro(p.StaffBefore)
		rep.StaffBefore = &before
	}
	for _, day := range p.Destroyed {
		if _, err := s.exec(ctx, tx, `UPDATE epoch_keys SET destroyed_at = ? WHERE day = ? AND destroyed_at IS NULL`, now, string(day)); err != nil {
			return err
		}
	}
	var oldest sql.NullInt64
	if err := tx.GetContext(ctx, &oldest, s.rebind(`SELECT min(check_in) FROM visits WHERE check_in >= ?`), cutoff); err != nil {
		return s.errorf(err, "find the oldest remaining visit")
	}
	rep.OldestCheckIn = fromNullMicros(oldest)
	return nil
}

// exec runs a statement and returns the number of rows it affected.
func (s *Store) exec(ctx context.Context, tx *sqlx.Tx, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, s.rebind(query), args...)
	if err != nil {
		return 0, s.errorf(err, "purge")
	}
	n, err := res.RowsAffected()
	return n, s.errorf(err, "purge")
}

// Horizon returns the newest check-in, the newest write (visit or audit
// event) and, through the dialect, the database server's clock.
func (s *Store) Horizon(ctx context.Context) (*registry.Horizon, error) {
	var row struct {
		CheckIn sql.NullInt64 `db:"check_in"`
		Created sql.NullInt64 `db:"created"`
		Audit   sql.NullInt64 `db:"audit"`
	}
	err := s.read.GetContext(ctx, &row, `SELECT (SELECT max(check_in) FROM visits) AS check_in,
(SELECT max(created_at) FROM visits) AS created, (SELECT max(at) FROM audit_events) AS audit`)
	if err != nil {
		return nil, s.errorf(err, "read the newest stored times")
	}
	h := &registry.Horizon{NewestCheckIn: fromNullMicros(row.CheckIn)}
	if row.Audit.Int64 > row.Created.Int64 {
		h.NewestWrite = fromNullMicros(row.Audit)
	} else {
		h.NewestWrite = fromNullMicros(row.Created)
	}
	if h.DatabaseNow, err = s.dialect.Now(ctx, s.read); err != nil {
		return nil, s.errorf(err, "read the database's clock")
	}
	return h, nil
}

// CountVisits counts the visits checked in within [from, to).
func (s *Store) CountVisits(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	err := s.read.GetContext(ctx, &n, s.rebind(`SELECT count(*) FROM visits WHERE check_in >= ? AND check_in < ?`), micros(from), micros(to))
	return n, s.errorf(err, "count visits")
}

// eraseStaff erases the staff's personal data recorded before before: the
// contact person, notes and actors of trace requests closed before it, and
// the names (and salts) of people among the audit log's actors of the
// months before its month. Tokens and the system are no people; their
// names stay. The audit chain still verifies: it covers commitments.
func (s *Store) eraseStaff(ctx context.Context, tx *sqlx.Tx, before time.Time, rep *registry.PurgeReport) error {
	var err error
	if _, err := s.exec(ctx, tx, `UPDATE trace_approvals SET note = '' WHERE note <> '' AND request_id IN
(SELECT id FROM trace_requests WHERE closed_at < ?)`, micros(before)); err != nil {
		return err
	}
	rep.StaffRequestsErased, err = s.exec(ctx, tx, `UPDATE trace_requests SET contact = '', decision_note = '', created_by = '', decided_by = ''
WHERE closed_at < ? AND (contact <> '' OR decision_note <> '' OR created_by <> '' OR decided_by <> '')`, micros(before))
	if err != nil {
		return err
	}
	rep.StaffNamesErased, err = s.exec(ctx, tx, `DELETE FROM audit_actors
WHERE month < ? AND actor NOT LIKE 'token:%' AND actor NOT IN ('system', 'intake')`, before.UTC().Format("2006-01"))
	if err != nil {
		return err
	}
	// A former approver's name (every key of the person removed before
	// it) goes too; the log keeps only its commitment. Pending approver
	// changes that expired hold names as well.
	n, err := s.exec(ctx, tx, `UPDATE approvers SET name = '', name_salt = NULL WHERE name <> '' AND person IN
(SELECT person FROM approvers GROUP BY person HAVING count(*) = count(removed_at) AND max(removed_at) < ?)`, micros(before))
	if err != nil {
		return err
	}
	rep.StaffNamesErased += n
	if _, err := s.exec(ctx, tx, `DELETE FROM approver_changes WHERE expires_at < ?`, micros(rep.RanAt)); err != nil {
		return err
	}
	if rep.StaffRequestsErased+rep.StaffNamesErased > 0 && !rep.DryRun {
		return s.markErase(ctx, tx, rep.Cutoff)
	}
	return nil
}
