package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// errDryRun rolls back a dry run after it counted everything.
var errDryRun = errors.New("dry run")

// settingErasePending is set by a purge that deleted visits and cleared
// once the dialect's AfterPurge succeeded, so that a failed clean-up is
// retried by the next purge even when that one deletes nothing.
const settingErasePending = "erase_pending"

// Purge carries out p in one transaction with one AuditPurge event whose
// details are the report; see registry.PurgeStore. A dry run performs the
// same statements and rolls them back, so its counts are exactly what a
// real run would do at that moment; it records nothing. After a real run
// that deleted visits the dialect's AfterPurge makes deleted bytes
// unrecoverable; if that fails the purge stays committed, the error says so
// and the next purge retries the clean-up.
func (s *Store) Purge(ctx context.Context, actor registry.Actor, p registry.PurgePlan) (*registry.PurgeReport, error) {
	if p.Now.IsZero() || p.Cutoff.IsZero() {
		return nil, registry.Errorf(registry.EINVALID, "A purge needs a time and a cutoff.")
	}
	rep := &registry.PurgeReport{
		RanAt: utcMicro(p.Now), DryRun: p.DryRun, Cutoff: utcMicro(p.Cutoff), KeysDestroyed: []registry.Day{},
	}
	rep.KeysDestroyed = append(rep.KeysDestroyed, p.Destroyed...)
	var erase bool
	err := s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		if err := s.purge(ctx, tx, p, rep); err != nil {
			return err
		}
		if p.DryRun {
			return errDryRun
		}
		if erase, err = s.markErase(ctx, tx, rep.VisitsDeleted > 0); err != nil {
			return err
		}
		return s.audit(ctx, tx, entry{actor: actor, action: registry.AuditPurge, at: rep.RanAt, details: rep})
	})
	if p.DryRun && errors.Is(err, errDryRun) {
		return rep, nil
	} else if err != nil {
		return nil, err
	}
	if erase {
		if err := s.erase(ctx); err != nil {
			return rep, fmt.Errorf("purge committed, but erasing deleted bytes failed (the next purge retries): %w", err)
		}
	}
	return rep, nil
}

// markErase records that deleted bytes await erasure when deleted is set,
// and reports whether they do (from this purge or an earlier one).
func (s *Store) markErase(ctx context.Context, tx *sqlx.Tx, deleted bool) (bool, error) {
	if deleted {
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`),
			settingErasePending, []byte("1"))
		return true, s.errorf(err, "mark erase pending")
	}
	_, err := s.setting(ctx, tx, settingErasePending)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// erase runs the dialect's clean-up and clears the pending mark.
func (s *Store) erase(ctx context.Context) error {
	if err := s.dialect.AfterPurge(ctx, s.db); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM settings WHERE name = ?`), settingErasePending)
	return s.errorf(err, "clear erase pending")
}

// purge runs the statements of a purge and fills in the report.
func (s *Store) purge(ctx context.Context, tx *sqlx.Tx, p registry.PurgePlan, rep *registry.PurgeReport) error {
	var err error
	now, cutoff := micros(p.Now), micros(p.Cutoff)
	rep.VisitsDeleted, err = s.exec(ctx, tx, `DELETE FROM visits WHERE check_in < ?`, cutoff)
	if err != nil {
		return err
	}
	if !p.StaleBefore.IsZero() {
		rep.VisitsAutoCheckedOut, err = s.exec(ctx, tx, `UPDATE visits SET check_out = check_in + ?, checkout_auto = ?
WHERE check_out IS NULL AND check_in < ?`, p.MaxStay.Microseconds(), true, micros(p.StaleBefore))
		if err != nil {
			return err
		}
	}
	// A pending request whose window ended by the cutoff has no data left:
	// every visit in its scope checked in before its end.
	rep.RequestsExpired, err = s.exec(ctx, tx, `UPDATE trace_requests SET status = ?
WHERE (status = ? AND expires_at <= ?) OR (status = ? AND window_to <= ?)`,
		string(registry.TraceExpired), string(registry.TraceApproved), now, string(registry.TracePending), cutoff)
	if err != nil {
		return err
	}
	for _, day := range p.Destroyed {
		if _, err := s.exec(ctx, tx, `UPDATE epoch_keys SET destroyed_at = ? WHERE day = ? AND destroyed_at IS NULL`, now, string(day)); err != nil {
			return err
		}
	}
	return s.remaining(ctx, tx, rep)
}

func (s *Store) remaining(ctx context.Context, tx *sqlx.Tx, rep *registry.PurgeReport) error {
	var row struct {
		N      int64         `db:"n"`
		Oldest sql.NullInt64 `db:"oldest"`
	}
	if err := tx.GetContext(ctx, &row, `SELECT count(*) AS n, min(check_in) AS oldest FROM visits`); err != nil {
		return s.errorf(err, "count remaining visits")
	}
	rep.VisitsRemaining, rep.OldestCheckIn = row.N, fromNullMicros(row.Oldest)
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
