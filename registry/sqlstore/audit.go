package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type auditRow struct {
	Seq      int64  `db:"seq"`
	At       int64  `db:"at"`
	Actor    string `db:"actor"`
	Action   string `db:"action"`
	Subject  string `db:"subject"`
	Details  string `db:"details"`
	PrevHash []byte `db:"prev_hash"`
	Hash     []byte `db:"hash"`
}

func (r *auditRow) event() *registry.AuditEvent {
	return &registry.AuditEvent{
		Seq: r.Seq, Time: fromMicros(r.At), Actor: registry.Actor(r.Actor), Action: r.Action,
		Subject: r.Subject, Details: r.Details, PrevHash: r.PrevHash, Hash: r.Hash,
	}
}

const auditColumns = `seq, at, actor, action, subject, details, prev_hash, hash`

// AppendAudit appends e in its own transaction and sets its Seq, Time,
// PrevHash and Hash. EINVALID without an action or with details that are
// not a JSON object.
func (s *Store) AppendAudit(ctx context.Context, e *registry.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.appendAudit(ctx, tx, e) })
}

// AuditEvents returns up to limit events with Seq > after, in order.
func (s *Store) AuditEvents(ctx context.Context, after int64, limit int) ([]*registry.AuditEvent, error) {
	if limit <= 0 {
		return nil, registry.Errorf(registry.EINVALID, "limit must be positive.")
	}
	var rows []auditRow
	q := s.rebind(`SELECT ` + auditColumns + ` FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`)
	if err := s.read.SelectContext(ctx, &rows, q, after, limit); err != nil {
		return nil, s.errorf(err, "list audit events")
	}
	events := make([]*registry.AuditEvent, len(rows))
	for i := range rows {
		events[i] = rows[i].event()
	}
	return events, nil
}

// LastAudit returns the newest event with the action ("" for any), or
// ENOTFOUND.
func (s *Store) LastAudit(ctx context.Context, action string) (*registry.AuditEvent, error) {
	return s.lastAudit(ctx, s.read, action)
}

func (s *Store) lastAudit(ctx context.Context, q sqlx.QueryerContext, action string) (*registry.AuditEvent, error) {
	var row auditRow
	var err error
	if action == "" {
		err = sqlx.GetContext(ctx, q, &row, `SELECT `+auditColumns+` FROM audit_events ORDER BY seq DESC LIMIT 1`)
	} else {
		err = sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT `+auditColumns+` FROM audit_events WHERE action = ? ORDER BY seq DESC LIMIT 1`), action)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "No audit event found.")
	} else if err != nil {
		return nil, s.errorf(err, "read last audit event")
	}
	return row.event(), nil
}

// appendAudit links e to the chain head and inserts it, inside tx. Every
// mutating method calls it in its own transaction.
func (s *Store) appendAudit(ctx context.Context, tx *sqlx.Tx, e *registry.AuditEvent) error {
	if e.Action == "" {
		return registry.Errorf(registry.EINVALID, "An audit event needs an action.")
	}
	if e.Details == "" {
		e.Details = "{}"
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(e.Details), &obj); err != nil || obj == nil {
		return registry.Errorf(registry.EINVALID, "Audit details must be a JSON object.")
	}
	if err := s.dialect.LockAudit(ctx, tx); err != nil {
		return s.errorf(err, "lock audit log")
	}
	prev, err := s.lastAudit(ctx, tx, "")
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		prev, err = nil, nil
	}
	if err != nil {
		return err
	}
	e.Link(prev)
	_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO audit_events (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Seq, micros(e.Time), string(e.Actor), e.Action, e.Subject, e.Details, e.PrevHash, e.Hash)
	return s.errorf(err, "append audit event")
}

// entry is an audit event before it is linked; details is marshalled to
// JSON, and a zero time means now.
type entry struct {
	actor   registry.Actor
	action  string
	subject string
	at      time.Time
	details any
}

// audit appends the entry inside tx.
func (s *Store) audit(ctx context.Context, tx *sqlx.Tx, en entry) error {
	details, err := json.Marshal(en.details)
	if err != nil {
		return fmt.Errorf("marshal audit details: %w", err)
	}
	if en.at.IsZero() {
		en.at = s.now()
	}
	e := &registry.AuditEvent{Time: en.at, Actor: en.actor, Action: en.action, Subject: en.subject, Details: string(details)}
	return s.appendAudit(ctx, tx, e)
}
