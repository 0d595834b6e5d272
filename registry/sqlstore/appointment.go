package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type appointmentRow struct {
	ID        string        `db:"id"`
	Site      string        `db:"site"`
	Day       string        `db:"day"`
	Code      string        `db:"code"`
	Host      string        `db:"host"`
	Area      string        `db:"area"`
	Start     int64         `db:"start_at"`
	End       int64         `db:"end_at"`
	Status    string        `db:"status"`
	Source    string        `db:"source"`
	UID       string        `db:"uid"`
	VisitID   string        `db:"visit_id"`
	ArrivedAt sql.NullInt64 `db:"arrived_at"`
	CreatedAt int64         `db:"created_at"`
	VisitLeft sql.NullInt64 `db:"visit_left"`
	NoteEpoch string        `db:"note_epoch"`
}

const appointmentColumns = `a.id, a.site, a.day, a.code, a.host, a.area, a.start_at, a.end_at, a.status, a.source, a.uid,
a.visit_id, a.arrived_at, a.created_at, v.check_out AS visit_left, a.note_epoch`

// appointmentFrom joins the linked visit, for its check-out.
const appointmentFrom = ` FROM appointments a LEFT JOIN visits v ON v.id = a.visit_id AND a.visit_id <> ''`

func (r *appointmentRow) appointment() *registry.Appointment {
	return &registry.Appointment{ID: r.ID, Site: r.Site, Day: registry.Day(r.Day), Code: r.Code, Host: r.Host, Area: r.Area,
		Start: fromMicros(r.Start), End: fromMicros(r.End), Status: registry.AppointmentStatus(r.Status), Source: r.Source,
		UID: r.UID, VisitID: r.VisitID, ArrivedAt: fromNullMicros(r.ArrivedAt), CreatedAt: fromMicros(r.CreatedAt),
		VisitLeft: fromNullMicros(r.VisitLeft), HasNote: r.NoteEpoch != "", NoteEpoch: registry.Day(r.NoteEpoch)}
}

// CreateAppointment stores an appointment; see registry.AppointmentStore.
func (s *Store) CreateAppointment(ctx context.Context, actor registry.Actor, a *registry.Appointment, note registry.NoteSealer) (*registry.Appointment, bool, error) {
	var stored *registry.Appointment
	created := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		stored, created, err = s.createAppointment(ctx, tx, actor, a, note)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// createAppointment stores a inside tx, drawing a new code while the day
// has it; an appointment with a's UID at its site is returned as stored.
func (s *Store) createAppointment(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, a *registry.Appointment, note registry.NoteSealer) (*registry.Appointment, bool, error) {
	for range 20 {
		if note != nil {
			if err := note(a); err != nil {
				return nil, false, err
			}
		}
		var sealed any // NULL without a note
		if a.HasNote {
			sealed = a.NoteSealed
		}
		n, err := s.exec(ctx, tx, `INSERT INTO appointments (id, site, day, code, host, area, start_at, end_at, status, source, uid, created_at,
note_epoch, note_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, a.ID, a.Site, string(a.Day), a.Code, a.Host, a.Area,
			micros(a.Start), micros(a.End), string(a.Status), a.Source, a.UID, micros(a.CreatedAt), string(a.NoteEpoch), sealed)
		if err != nil {
			return nil, false, err
		}
		if n == 1 {
			return a, true, s.audit(ctx, tx, a.CreatedAt, actor, a.ID, registry.AppointmentChanged{Change: "created", Site: a.Site,
				Day: a.Day, Code: a.Code, Area: a.Area, Source: a.Source, Note: a.HasNote})
		}
		if a.UID != "" {
			var row appointmentRow
			err := sqlx.GetContext(ctx, tx, &row, s.rebind(`SELECT `+appointmentColumns+appointmentFrom+` WHERE a.site = ? AND a.uid = ?`), a.Site, a.UID)
			if err == nil {
				return row.appointment(), false, nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return nil, false, s.errorf(err, "find appointment")
			}
		}
		a.Code = registry.NewAppointmentCode() // the day has this code already
	}
	return nil, false, registry.Errorf(registry.EUNAVAILABLE, "No free appointment code for %s at %s; try again.", a.Day, a.Site)
}

// ImportAppointments stores a calendar's appointments all or nothing; see
// registry.AppointmentStore.
func (s *Store) ImportAppointments(ctx context.Context, actor registry.Actor, items []registry.ImportedAppointment, now time.Time) ([]registry.ImportOutcome, error) {
	out := make([]registry.ImportOutcome, len(items))
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		for i, it := range items {
			stored, created, err := s.createAppointment(ctx, tx, actor, it.Appointment, nil)
			if err != nil {
				return err
			}
			out[i] = registry.ImportOutcome{Appointment: stored, Created: created}
			if !it.Cancelled {
				continue
			}
			// Cancel what an earlier import made of it; one already
			// cancelled, or arrived, stays as it is.
			c, err := s.cancelAppointment(ctx, tx, actor, stored.ID, now)
			switch {
			case err == nil:
				out[i].Appointment, out[i].Cancelled = c, true
			case created || registry.ErrorCode(err) != registry.ECONFLICT:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Appointments lists a site's appointments of a day; see
// registry.AppointmentStore.
func (s *Store) Appointments(ctx context.Context, site string, day registry.Day) ([]*registry.Appointment, error) {
	return s.selectAppointments(ctx, `a.site = ? AND a.day = ? ORDER BY a.start_at, a.code`, site, string(day))
}

// selectAppointments lists the appointments of a condition (and order).
func (s *Store) selectAppointments(ctx context.Context, where string, args ...any) ([]*registry.Appointment, error) {
	var rows []appointmentRow
	if err := s.read.SelectContext(ctx, &rows, s.rebind(`SELECT `+appointmentColumns+appointmentFrom+` WHERE `+where), args...); err != nil {
		return nil, s.errorf(err, "list appointments")
	}
	out := make([]*registry.Appointment, len(rows))
	for i := range rows {
		out[i] = rows[i].appointment()
	}
	return out, nil
}

// FindAppointment finds an appointment by code; see
// registry.AppointmentStore.
func (s *Store) FindAppointment(ctx context.Context, site string, day registry.Day, code string) (*registry.Appointment, error) {
	var row appointmentRow
	err := s.read.GetContext(ctx, &row, s.rebind(`SELECT `+appointmentColumns+appointmentFrom+
		` WHERE a.site = ? AND a.day = ? AND a.code = ?`), site, string(day), code)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "There is no appointment %s at this site today.", code)
	} else if err != nil {
		return nil, s.errorf(err, "find appointment")
	}
	return row.appointment(), nil
}

// CancelAppointment cancels an appointment; see registry.AppointmentStore.
func (s *Store) CancelAppointment(ctx context.Context, actor registry.Actor, id string, now time.Time) (*registry.Appointment, error) {
	var a *registry.Appointment
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		a, err = s.cancelAppointment(ctx, tx, actor, id, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// cancelAppointment cancels an expected appointment inside tx.
func (s *Store) cancelAppointment(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, id string, now time.Time) (*registry.Appointment, error) {
	var row appointmentRow
	err := sqlx.GetContext(ctx, tx, &row, s.rebind(`SELECT `+appointmentColumns+appointmentFrom+` WHERE a.id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Appointment not found.")
	} else if err != nil {
		return nil, s.errorf(err, "find appointment")
	}
	a := row.appointment()
	if a.Status != registry.AppointmentExpected {
		return nil, registry.Errorf(registry.ECONFLICT, "The appointment is %s; only an expected one can be cancelled.", a.Status)
	}
	err = s.update(ctx, tx, "The appointment changed concurrently.", `UPDATE appointments SET status = ? WHERE id = ? AND status = ?`,
		string(registry.AppointmentCancelled), id, string(registry.AppointmentExpected))
	if err != nil {
		return nil, err
	}
	a.Status = registry.AppointmentCancelled
	return a, s.audit(ctx, tx, utcMicro(now), actor, id, registry.AppointmentChanged{Change: "cancelled", Site: a.Site, Day: a.Day, Code: a.Code})
}

// markArrived links the stored parties that came for an appointment to
// it: an expected appointment becomes arrived with the registrant's visit
// (AppointmentChanged "arrived"). One already arrived (a second party for
// the same code) keeps its first visit; that does not fail the batch.
func (s *Store) markArrived(ctx context.Context, tx *sqlx.Tx, parties []*registry.Party, now time.Time) error {
	for _, p := range parties {
		if p.Appointment == "" || len(p.Visits) == 0 {
			continue
		}
		v := p.Visits[0]
		n, err := s.exec(ctx, tx, `UPDATE appointments SET status = ?, visit_id = ?, arrived_at = ? WHERE id = ? AND status = ?`,
			string(registry.AppointmentArrived), v.ID, micros(v.CheckIn), p.Appointment, string(registry.AppointmentExpected))
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		var row struct {
			Site string `db:"site"`
			Day  string `db:"day"`
			Code string `db:"code"`
		}
		if err := sqlx.GetContext(ctx, tx, &row, s.rebind(`SELECT site, day, code FROM appointments WHERE id = ?`), p.Appointment); err != nil {
			return s.errorf(err, "read appointment")
		}
		if err := s.audit(ctx, tx, now, p.Actor, p.Appointment, registry.AppointmentChanged{Change: "arrived", Site: row.Site,
			Day: registry.Day(row.Day), Code: row.Code, Visit: v.ID}); err != nil {
			return err
		}
	}
	return nil
}

// PendingArrivals lists the arrivals not yet told; see
// registry.AppointmentStore.
func (s *Store) PendingArrivals(ctx context.Context, since time.Time, limit int) ([]*registry.Appointment, error) {
	return s.selectAppointments(ctx, `a.status = ? AND a.notified_at IS NULL AND a.arrived_at >= ? ORDER BY a.arrived_at, a.id LIMIT ?`,
		string(registry.AppointmentArrived), micros(since), limit)
}

// MarkNotified records a told arrival; see registry.AppointmentStore.
func (s *Store) MarkNotified(ctx context.Context, id string, t time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.rebind(`UPDATE appointments SET notified_at = ? WHERE id = ? AND notified_at IS NULL`), micros(t), id)
		return s.errorf(err, "mark arrival notified")
	})
}
