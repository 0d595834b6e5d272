package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

type alertRow struct {
	ID        string        `db:"id"`
	Key       string        `db:"key"`
	Kind      string        `db:"kind"`
	Audience  string        `db:"audience"`
	Subject   string        `db:"subject"`
	Body      string        `db:"body"`
	Link      string        `db:"link"`
	CreatedAt int64         `db:"created_at"`
	Delivered string        `db:"delivered"`
	Attempts  int           `db:"attempts"`
	NextAt    int64         `db:"next_at"`
	ClosedAt  sql.NullInt64 `db:"closed_at"`
	LastError string        `db:"last_error"`
}

const alertColumns = `id, key, kind, audience, subject, body, link, created_at, delivered, attempts, next_at, closed_at, last_error`

func (r *alertRow) alert() *registry.Alert {
	a := &registry.Alert{ID: r.ID, Key: r.Key, Kind: r.Kind, Audience: r.Audience, Subject: r.Subject, Text: r.Body, Link: r.Link,
		CreatedAt: fromMicros(r.CreatedAt), Attempts: r.Attempts, NextAt: fromMicros(r.NextAt), ClosedAt: fromNullMicros(r.ClosedAt), LastError: r.LastError}
	if r.Delivered != "" {
		a.Delivered = strings.Split(r.Delivered, " ")
	}
	return a
}

// RaiseAlert stores a unless its key exists; see registry.AlertStore.
func (s *Store) RaiseAlert(ctx context.Context, a *registry.Alert) (bool, error) {
	if a.ID == "" {
		a.ID = registry.NewID()
	}
	if a.Kind == "" {
		a.Kind, _, _ = strings.Cut(a.Key, ":")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	if a.NextAt.IsZero() {
		a.NextAt = a.CreatedAt
	}
	res, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO alerts (`+alertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO NOTHING`), a.ID, a.Key, a.Kind, a.Audience, a.Subject, a.Text, a.Link, micros(a.CreatedAt),
		strings.Join(a.Delivered, " "), a.Attempts, micros(a.NextAt), nullMicros(a.ClosedAt), a.LastError)
	if err != nil {
		return false, s.errorf(err, "raise an alert")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.errorf(err, "raise an alert")
	}
	return n == 1, nil
}

// PendingAlerts returns the open alerts due at now; see registry.AlertStore.
func (s *Store) PendingAlerts(ctx context.Context, now time.Time, limit int) ([]*registry.Alert, error) {
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE closed_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?`, micros(now), limit)
}

// Alerts lists the newest alerts; see registry.AlertStore.
func (s *Store) Alerts(ctx context.Context, limit int) ([]*registry.Alert, error) {
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts ORDER BY created_at DESC, id LIMIT ?`, limit)
}

func (s *Store) alerts(ctx context.Context, query string, args ...any) ([]*registry.Alert, error) {
	var rows []alertRow
	if err := s.read.SelectContext(ctx, &rows, s.rebind(query), args...); err != nil {
		return nil, s.errorf(err, "read the alerts")
	}
	out := make([]*registry.Alert, len(rows))
	for i := range rows {
		out[i] = rows[i].alert()
	}
	return out, nil
}

// UpdateAlert stores a delivery's outcome; see registry.AlertStore.
func (s *Store) UpdateAlert(ctx context.Context, a *registry.Alert) error {
	res, err := s.db.ExecContext(ctx, s.rebind(`UPDATE alerts SET delivered = ?, attempts = ?, next_at = ?, closed_at = ?, last_error = ? WHERE id = ?`),
		strings.Join(a.Delivered, " "), a.Attempts, micros(a.NextAt), nullMicros(a.ClosedAt), a.LastError, a.ID)
	if err != nil {
		return s.errorf(err, "update an alert")
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return registry.Errorf(registry.ENOTFOUND, "No alert %s.", a.ID)
	}
	return nil
}
