package office

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// The workspace's log has the registry's audit-log shape: every entry
// holds the hash of the one before (registry.AuditEvent), so that
// audit.Verify finds an entry changed, removed or reordered. It records
// who added and confirmed registries, filed, followed and deleted cases,
// and who opened which case's result; never visitor data.

type logRow struct {
	Seq         int64  `db:"seq"`
	Version     int    `db:"v"`
	At          int64  `db:"at"`
	Actor       string `db:"actor"`
	ActorSalt   []byte `db:"actor_salt"`
	ActorCommit []byte `db:"actor_commit"`
	Action      string `db:"action"`
	Subject     string `db:"subject"`
	Details     string `db:"details"`
	PrevHash    []byte `db:"prev_hash"`
	Hash        []byte `db:"hash"`
}

const logColumns = `seq, v, at, actor, actor_salt, actor_commit, action, subject, details, prev_hash, hash`

func (r *logRow) event() *registry.AuditEvent {
	return &registry.AuditEvent{Seq: r.Seq, Version: r.Version, Time: fromMicros(r.At), Actor: registry.Actor(r.Actor),
		ActorSalt: r.ActorSalt, ActorCommit: r.ActorCommit, Action: r.Action, Subject: r.Subject, Details: r.Details,
		PrevHash: r.PrevHash, Hash: r.Hash}
}

// logTx appends an entry inside tx.
func (s *Store) logTx(ctx context.Context, tx *sqlx.Tx, actor, action, subject string, details map[string]string) error {
	b, err := json.Marshal(details)
	if err != nil {
		return err
	}
	return s.appendTx(ctx, tx, &registry.AuditEvent{Time: s.now(), Actor: registry.Actor(actor), Action: action, Subject: subject, Details: string(b)})
}

func (s *Store) appendTx(ctx context.Context, tx *sqlx.Tx, e *registry.AuditEvent) error {
	var prev *registry.AuditEvent
	var row logRow
	switch err := tx.GetContext(ctx, &row, `SELECT `+logColumns+` FROM log ORDER BY seq DESC LIMIT 1`); {
	case err == nil:
		prev = row.event()
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	e.Link(prev)
	_, err := tx.ExecContext(ctx, `INSERT INTO log (`+logColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Version, micros(e.Time), string(e.Actor), e.ActorSalt, e.ActorCommit, e.Action, e.Subject, e.Details, e.PrevHash, e.Hash)
	return err
}

// Log appends an entry on its own (who opened which case's result).
func (s *Store) Log(ctx context.Context, actor, action, subject string, details map[string]string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.logTx(ctx, tx, actor, action, subject, details) })
}

// AppendAudit appends e; with AuditEvents and LastAudit the store is a
// registry.AuditStore, which audit.Verify checks.
func (s *Store) AppendAudit(ctx context.Context, e *registry.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.appendTx(ctx, tx, e) })
}

// AuditEvents returns up to limit entries after seq after.
func (s *Store) AuditEvents(ctx context.Context, after int64, limit int) ([]*registry.AuditEvent, error) {
	var rows []logRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+logColumns+` FROM log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit); err != nil {
		return nil, err
	}
	out := make([]*registry.AuditEvent, len(rows))
	for i := range rows {
		out[i] = rows[i].event()
	}
	return out, nil
}

// LastAudit returns the newest entry of the action ("" for any);
// ENOTFOUND when there is none.
func (s *Store) LastAudit(ctx context.Context, action string) (*registry.AuditEvent, error) {
	var row logRow
	var err error
	if action == "" {
		err = s.db.GetContext(ctx, &row, `SELECT `+logColumns+` FROM log ORDER BY seq DESC LIMIT 1`)
	} else {
		err = s.db.GetContext(ctx, &row, `SELECT `+logColumns+` FROM log WHERE action = ? ORDER BY seq DESC LIMIT 1`, action)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "No log entry found.")
	} else if err != nil {
		return nil, err
	}
	return row.event(), nil
}

var _ registry.AuditStore = (*Store)(nil)
