package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// ExportTraceRequest checks, selects, builds and records an export in one
// transaction; see registry.TraceStore. ENOTFOUND for an unknown id,
// ECONFLICT when already exported, EFORBIDDEN unless approved and unexpired
// at now. An error from build is returned wrapped and nothing is recorded.
func (s *Store) ExportTraceRequest(ctx context.Context, actor registry.Actor, id string, now time.Time, maxStay time.Duration, build registry.ExportFunc) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	var r *registry.TraceRequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.findTraceRequest(ctx, tx, id); err != nil {
			return err
		}
		if err := checkExport(r, now); err != nil {
			return err
		}
		visits, err := s.scope(ctx, tx, r, maxStay)
		if err != nil {
			return err
		}
		digest, err := build(visits)
		if err != nil {
			return fmt.Errorf("build export: %w", err)
		}
		r.Status, r.ExportedAt, r.ExportCount, r.ExportDigest = registry.TraceExported, &now, len(visits), digest
		err = s.update(ctx, tx, "The request was exported concurrently.", `UPDATE trace_requests SET status = ?, exported_at = ?,
export_count = ?, export_digest = ?, closed_at = ? WHERE id = ? AND status = ?`,
			string(r.Status), micros(now), r.ExportCount, digest, micros(now), id, string(registry.TraceApproved))
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, now, actor, id, registry.RequestExported{Count: r.ExportCount, Digest: digest})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func checkExport(r *registry.TraceRequest, now time.Time) error {
	switch {
	case r.Status == registry.TraceExported:
		return registry.Errorf(registry.ECONFLICT, "The request was already exported; a new export needs a new request.")
	case r.Status != registry.TraceApproved:
		return registry.Errorf(registry.EFORBIDDEN, "The request is %s, not approved.", r.Status)
	case expired(r, now):
		return registry.Errorf(registry.EFORBIDDEN, "The approval of the request has expired.")
	}
	return nil
}

// scope returns the visits in the request's scope (registry.ScopeQuery),
// ordered by check-in and id.
func (s *Store) scope(ctx context.Context, tx *sqlx.Tx, r *registry.TraceRequest, maxStay time.Duration) ([]*registry.Visit, error) {
	query := `SELECT ` + visitColumns + ` FROM visits
WHERE check_in < ? AND coalesce(check_out, check_in + ?) > ? AND site IN (?)`
	args := []any{micros(r.To), maxStay.Microseconds(), micros(r.From), r.Sites}
	if len(r.Areas) > 0 {
		query += ` AND area IN (?)`
		args = append(args, r.Areas)
	}
	query, args, err := sqlx.In(query+` ORDER BY check_in, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("build scope query: %w", err)
	}
	var rows []visitRow
	if err := tx.SelectContext(ctx, &rows, s.rebind(query), args...); err != nil {
		return nil, s.errorf(err, "select scope")
	}
	visits := make([]*registry.Visit, len(rows))
	for i := range rows {
		visits[i] = rows[i].visit()
	}
	return visits, nil
}
