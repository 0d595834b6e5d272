package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
)

// ExportTraceRequest reads the request's scope from a read-only snapshot,
// hands it to build visit by visit, and records the export in a short
// write transaction; see registry.TraceStore. ENOTFOUND for an unknown
// id, ECONFLICT when already exported (also when another export won the
// race), EFORBIDDEN unless approved and unexpired at now. An error from
// build is returned wrapped and nothing is recorded.
func (s *Store) ExportTraceRequest(ctx context.Context, actor registry.Actor, id string, now time.Time, maxStay time.Duration, anchor *registry.LogAnchor, build registry.ExportFunc) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	digest, r, count, err := s.buildExport(ctx, id, now, maxStay, anchor, build)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		cur, err := s.findTraceRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.checkExport(ctx, tx, cur, now); err != nil {
			return err
		}
		valid, err := s.checkApprovals(ctx, tx, cur, now)
		if err != nil {
			return err
		}
		r = cur
		r.Status, r.ExportedAt, r.ExportCount, r.ExportDigest = registry.TraceExported, &now, count, digest
		err = s.update(ctx, tx, "The request was exported concurrently.", `UPDATE trace_requests SET status = ?, exported_at = ?,
export_count = ?, export_digest = ?, closed_at = ? WHERE id = ? AND status = ?`,
			string(r.Status), micros(now), r.ExportCount, digest, micros(now), id, string(registry.TraceApproved))
		if err != nil {
			return err
		}
		p := registry.RequestExported{Count: r.ExportCount, Digest: digest}
		for _, a := range valid {
			p.Approvers, p.Signatures = append(p.Approvers, a.ApproverID), append(p.Signatures, a.Signature)
		}
		return s.audit(ctx, tx, now, actor, id, p)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// buildExport checks the request and runs build over its scope inside a
// read-only transaction (a snapshot; on SQLite a reader of the WAL, which
// does not block the writer).
func (s *Store) buildExport(ctx context.Context, id string, now time.Time, maxStay time.Duration, anchor *registry.LogAnchor, build registry.ExportFunc) (digest string, r *registry.TraceRequest, count int, err error) {
	tx, err := s.read.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: s.dialect.SnapshotIsolation()})
	if err != nil {
		return "", nil, 0, s.errorf(err, "begin export snapshot")
	}
	defer tx.Rollback()
	if r, err = s.findTraceRequest(ctx, tx, id); err != nil {
		return "", nil, 0, err
	}
	if err := s.checkExport(ctx, tx, r, now); err != nil {
		return "", nil, 0, err
	}
	// Build with the approvals that count: the bundle carries them.
	if r.Approvals, err = s.checkApprovals(ctx, tx, r, now); err != nil {
		return "", nil, 0, err
	}
	check, err := s.exportCheck(ctx, tx, r, anchor)
	if err != nil {
		return "", nil, 0, err
	}
	if err := check.CheckRequest(r, r.Approvals); err != nil {
		return "", nil, 0, err
	}
	if r.IndexStays, err = s.indexStays(ctx, tx, r); err != nil {
		return "", nil, 0, err
	}
	query, args, err := scopeQuery(`count(*)`, r, maxStay, false)
	if err != nil {
		return "", nil, 0, err
	}
	if err := tx.GetContext(ctx, &count, s.rebind(query), args...); err != nil {
		return "", nil, 0, s.errorf(err, "count scope")
	}
	digest, err = build(r, count, check.Filter(s.scope(ctx, tx, r, maxStay)))
	if err != nil {
		return "", nil, 0, fmt.Errorf("build export: %w", err)
	}
	return digest, r, count, nil
}

// indexStays reads the stays of r's index visits from tx.
func (s *Store) indexStays(ctx context.Context, tx *sqlx.Tx, r *registry.TraceRequest) ([]registry.IndexStay, error) {
	if len(r.IndexVisits) == 0 {
		return nil, nil
	}
	query, args, err := sqlx.In(`SELECT id, site, area, check_in, check_out, checkout_auto, checkout_reason, party, appointment, epoch, created_at
FROM visits WHERE id IN (?) ORDER BY check_in, id`, r.IndexVisits)
	if err != nil {
		return nil, err
	}
	var rows []visitRow
	if err := tx.SelectContext(ctx, &rows, s.rebind(query), args...); err != nil {
		return nil, s.errorf(err, "read the index visits")
	}
	out := make([]registry.IndexStay, len(rows))
	for i := range rows {
		v := rows[i].visit()
		out[i] = registry.IndexStay{ID: v.ID, Site: v.Site, Area: v.Area, Party: v.Party, CheckIn: v.CheckIn, CheckOut: v.CheckOut}
	}
	return out, nil
}

// checkExport refuses a request that is not approved and unexpired at
// now, saying how far a pending one got ("1 of 2 approvals").
func (s *Store) checkExport(ctx context.Context, q sqlx.QueryerContext, r *registry.TraceRequest, now time.Time) error {
	switch {
	case r.Status == registry.TraceExported:
		return registry.Errorf(registry.ECONFLICT, "The request was already exported; a new export needs a new request.")
	case r.Status == registry.TracePending:
		set, err := s.approverSet(ctx, q)
		if err != nil {
			return err
		}
		have, need := registry.ApprovalCount(r, r.Approvals, set, now)
		return registry.Errorf(registry.EFORBIDDEN, "The request is pending: %d of %d approvals.", have, need)
	case r.Status != registry.TraceApproved:
		return registry.Errorf(registry.EFORBIDDEN, "The request is %s, not approved.", r.Status)
	case expired(r, now):
		return registry.Errorf(registry.EFORBIDDEN, "The approval of the request has expired.")
	}
	return nil
}

// exportCheck walks the audit log, in the export's snapshot, from the
// first entry that may have registered a visit of r's window (a visit is
// registered at its check-in or later, as paper forms are; a stay lasts
// registry.MaxStayLimit at most; an hour for clocks that differ) or r's
// creation, whichever is earlier, to the head (see
// audit.NewExportCheck).
func (s *Store) exportCheck(ctx context.Context, tx *sqlx.Tx, r *registry.TraceRequest, anchor *registry.LogAnchor) (*audit.ExportCheck, error) {
	var from sql.NullInt64
	err := tx.GetContext(ctx, &from, s.rebind(`SELECT min(seq) FROM audit_events WHERE at >= ? OR (action = ? AND subject = ?)`),
		micros(r.From.Add(-registry.MaxStayLimit-time.Hour)), registry.AuditRequestCreated, r.ID)
	if err != nil {
		return nil, s.errorf(err, "find the log's stretch of the export")
	}
	check, err := audit.NewExportCheck(ctx, txLog{s, tx}, r.ID, from.Int64, anchor)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			return nil, registry.Errorf(registry.EFORBIDDEN, "The audit log does not verify (seq %d, %s: %s): nothing was exported; call the data-protection officer.", ve.Seq, ve.Problem, ve.Detail)
		}
		return nil, err
	}
	return check, nil
}

// txLog reads audit events inside a transaction (the export's snapshot).
type txLog struct {
	s  *Store
	tx *sqlx.Tx
}

func (l txLog) AuditEvents(ctx context.Context, after int64, limit int) ([]*registry.AuditEvent, error) {
	return l.s.auditEvents(ctx, l.tx, after, limit)
}

func (l txLog) AppendAudit(context.Context, *registry.AuditEvent) error {
	return errors.New("read-only snapshot")
}

func (l txLog) LastAudit(context.Context, string) (*registry.AuditEvent, error) {
	return nil, errors.New("not available in the snapshot")
}

// scopeQuery builds the query of the request's scope (registry.ScopeQuery)
// selecting what, ordered by check-in and id when ordered.
func scopeQuery(what string, r *registry.TraceRequest, maxStay time.Duration, ordered bool) (string, []any, error) {
	from := `visits`
	if ordered {
		// The visits themselves, with the sealed note of the appointment
		// each was registered for (the derived table's columns are named
		// apart from the visits' so that the conditions below stay
		// unambiguous).
		what += `, n.note_appointment, n.note_code, n.note_epoch, n.note_sealed`
		from += ` LEFT JOIN (SELECT visit_id AS note_visit, id AS note_appointment, code AS note_code, note_epoch, note_sealed
FROM appointments WHERE visit_id <> '' AND note_sealed IS NOT NULL) n ON n.note_visit = visits.id`
	}
	query := `SELECT ` + what + ` FROM ` + from + `
WHERE check_in < ? AND check_in >= ? AND coalesce(check_out, check_in + ?) > ? AND site IN (?)`
	// check_in >= from - MaxStayLimit: no stay lasts longer, so older
	// visits cannot overlap; the bound lets PostgreSQL read only the
	// window's partitions.
	args := []any{micros(r.To), micros(r.From.Add(-registry.MaxStayLimit)), maxStay.Microseconds(), micros(r.From), r.Sites}
	if len(r.Areas) > 0 {
		query += ` AND area IN (?)`
		args = append(args, r.Areas)
	}
	if len(r.Hosts) > 0 || len(r.Appointments) > 0 {
		// The visitors of an appointment with one of the hosts or codes:
		// every visit registered with the appointment's code carries its
		// id, companions and parties that registered on their own alike.
		// Visits stored before that link (migration 0007, purged within
		// the retention period) are found as then: the registrant by the
		// appointment's visit, its companions by their party. sqlx.In
		// refuses an empty list, so an absent one is a list no host or
		// code equals.
		hosts, codes := orNone(r.Hosts), orNone(r.Appointments)
		query += ` AND (appointment IN (SELECT id FROM appointments WHERE host IN (?) OR code IN (?))
OR id IN (SELECT visit_id FROM appointments WHERE visit_id <> '' AND (host IN (?) OR code IN (?)))
OR (party <> '' AND party IN (SELECT p.party FROM visits p JOIN appointments a ON a.visit_id = p.id
WHERE p.party <> '' AND (a.host IN (?) OR a.code IN (?)))))`
		args = append(args, hosts, codes, hosts, codes, hosts, codes)
	}
	if len(r.Index) > 0 {
		// The index case's visits, their companions, and every visit
		// that overlapped one of them (widened by the tolerance) in the
		// same area, or anywhere at the site with a reason, for at least
		// the minimum contact: min(ends) - max(starts) >= m, written as
		// its four differences, which both databases compute alike. An
		// open visit lasts until its automatic check-out.
		tol, m, ms := int64(r.Tolerance)*60e6, int64(r.MinContact)*60e6, maxStay.Microseconds()
		ends := `coalesce(visits.check_out, visits.check_in + ?)`
		iEnds := `coalesce(i.check_out, i.check_in + ?)`
		contact := ``
		ids := orNone(r.IndexVisits)
		args = append(args, ids, ids, ids, r.WholeSite != "", ms, tol, ms, tol)
		if m > 0 {
			contact = `
AND ` + iEnds + ` - visits.check_in >= ? AND ` + ends + ` - i.check_in >= ?
AND ` + iEnds + ` - i.check_in >= ? AND ` + ends + ` - visits.check_in >= ?`
			args = append(args, ms, m, ms, m, ms, m, ms, m)
		}
		query += ` AND (visits.id IN (?) OR (visits.party <> '' AND visits.party IN (SELECT party FROM visits WHERE id IN (?) AND party <> ''))
OR EXISTS (SELECT 1 FROM visits i WHERE i.id IN (?) AND i.site = visits.site AND (? OR i.area = visits.area)
AND visits.check_in < ` + iEnds + ` + ? AND ` + ends + ` > i.check_in - ?` + contact + `))`
	}
	if ordered {
		query += ` ORDER BY check_in, id`
	}
	query, args, err := sqlx.In(query, args...)
	if err != nil {
		return "", nil, fmt.Errorf("build scope query: %w", err)
	}
	return query, args, nil
}

// scopeRow is a visit of a scope with its appointment's sealed note.
type scopeRow struct {
	visitRow
	NoteAppointment sql.NullString `db:"note_appointment"`
	NoteCode        sql.NullString `db:"note_code"`
	NoteEpoch       sql.NullString `db:"note_epoch"`
	NoteSealed      []byte         `db:"note_sealed"`
}

// orNone returns list, or a list of the empty string (which no host or
// appointment code is) when list is empty.
func orNone(list []string) []string {
	if len(list) == 0 {
		return []string{""}
	}
	return list
}

// scope yields the visits in the request's scope, ordered by check-in and
// id, from tx.
func (s *Store) scope(ctx context.Context, tx *sqlx.Tx, r *registry.TraceRequest, maxStay time.Duration) iter.Seq2[*registry.Visit, error] {
	return func(yield func(*registry.Visit, error) bool) {
		query, args, err := scopeQuery(visitColumns, r, maxStay, true)
		if err != nil {
			yield(nil, err)
			return
		}
		rows, err := tx.QueryxContext(ctx, s.rebind(query), args...)
		if err != nil {
			yield(nil, s.errorf(err, "select scope"))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var row scopeRow
			if err := rows.StructScan(&row); err != nil {
				yield(nil, s.errorf(err, "read scope"))
				return
			}
			v := row.visit()
			if row.NoteAppointment.Valid {
				v.Note = &registry.SealedNote{AppointmentID: row.NoteAppointment.String, Code: row.NoteCode.String,
					Epoch: registry.Day(row.NoteEpoch.String), Sealed: row.NoteSealed}
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, s.errorf(err, "read scope"))
		}
	}
}
