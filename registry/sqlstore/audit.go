package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type auditRow struct {
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

func (r *auditRow) event() *registry.AuditEvent {
	return &registry.AuditEvent{
		Seq: r.Seq, Version: r.Version, Time: fromMicros(r.At), Actor: registry.Actor(r.Actor),
		ActorSalt: r.ActorSalt, ActorCommit: r.ActorCommit, Action: r.Action,
		Subject: r.Subject, Details: r.Details, PrevHash: r.PrevHash, Hash: r.Hash,
	}
}

// auditSelect reads events with their actors: a version 1 event holds the
// name itself, a version 2 event its commitment, whose name and salt (if
// not erased) are in audit_actors.
const auditSelect = `SELECT e.seq, e.v, e.at, CASE WHEN e.v >= 2 THEN coalesce(a.actor, '') ELSE e.actor END AS actor,
a.salt AS actor_salt, e.actor_commit, e.action, e.subject, e.details, e.prev_hash, e.hash
FROM audit_events e LEFT JOIN audit_actors a ON a.commit_hash = e.actor_commit`

const insertAudit = `INSERT INTO audit_events (seq, v, at, actor, actor_commit, action, subject, details, prev_hash, hash)
VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?)`

const lastAuditQuery = auditSelect + ` ORDER BY e.seq DESC LIMIT 1`

// actorSaltQuery and insertActor keep one salt per actor and month.
const (
	actorSaltQuery = `SELECT salt FROM audit_actors WHERE actor = ? AND month = ?`
	insertActor    = `INSERT INTO audit_actors (commit_hash, actor, salt, month) VALUES (?, ?, ?, ?)`
)

// AppendAudit appends e in its own transaction and sets its Seq, Version,
// Time, actor commitment, PrevHash and Hash. EINVALID without an action or
// with details that are not a JSON object.
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
	return s.auditEvents(ctx, s.read, after, limit)
}

// FindAudit returns events by action and time; see registry.AuditStore.
func (s *Store) FindAudit(ctx context.Context, f registry.AuditFilter) ([]*registry.AuditEvent, error) {
	if f.Limit <= 0 || len(f.Actions) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "FindAudit needs actions and a positive limit.")
	}
	q := auditSelect + ` WHERE e.action IN (?` + strings.Repeat(", ?", len(f.Actions)-1) + `)`
	var args []any
	for _, a := range f.Actions {
		args = append(args, a)
	}
	if f.AfterSeq > 0 {
		q += ` AND e.seq > ?`
		args = append(args, f.AfterSeq)
	}
	if !f.From.IsZero() {
		q += ` AND e.at >= ?`
		args = append(args, micros(f.From))
	}
	if !f.To.IsZero() {
		q += ` AND e.at < ?`
		args = append(args, micros(f.To))
	}
	if f.Newest {
		q += ` ORDER BY e.seq DESC`
	} else {
		q += ` ORDER BY e.seq`
	}
	q += ` LIMIT ?`
	args = append(args, f.Limit)
	var rows []auditRow
	if err := s.read.SelectContext(ctx, &rows, s.rebind(q), args...); err != nil {
		return nil, s.errorf(err, "find audit events")
	}
	events := make([]*registry.AuditEvent, len(rows))
	for i := range rows {
		events[i] = rows[i].event()
	}
	return events, nil
}

func (s *Store) auditEvents(ctx context.Context, q sqlx.QueryerContext, after int64, limit int) ([]*registry.AuditEvent, error) {
	var rows []auditRow
	if err := sqlx.SelectContext(ctx, q, &rows, s.rebind(auditSelect+` WHERE e.seq > ? ORDER BY e.seq LIMIT ?`), after, limit); err != nil {
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
	var row auditRow
	var err error
	if action == "" {
		err = s.read.GetContext(ctx, &row, lastAuditQuery)
	} else {
		err = s.read.GetContext(ctx, &row, s.rebind(auditSelect+` WHERE e.action = ? ORDER BY e.seq DESC LIMIT 1`), action)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "No audit event found.")
	} else if err != nil {
		return nil, s.errorf(err, "read last audit event")
	}
	return row.event(), nil
}

// SubjectActor returns the actor an event's subject "actor:<hex>" commits
// to (the account of a user.changed or signin.failed entry), "" once
// erased or for any other subject.
func (s *Store) SubjectActor(ctx context.Context, subject string) (registry.Actor, error) {
	h, ok := strings.CutPrefix(subject, "actor:")
	if !ok {
		return "", nil
	}
	commit, err := hex.DecodeString(h)
	if err != nil || len(commit) != sha256.Size {
		return "", nil
	}
	var actor string
	err = s.read.GetContext(ctx, &actor, s.rebind(`SELECT actor FROM audit_actors WHERE commit_hash = ?`), commit)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return registry.Actor(actor), s.errorf(err, "resolve audit subject")
}

// head returns the chain head inside tx, or nil for an empty log.
func (s *Store) head(ctx context.Context, tx *sqlx.Tx) (*registry.AuditEvent, error) {
	st, err := s.stmt(ctx, tx, lastAuditQuery)
	if err != nil {
		return nil, err
	}
	var row auditRow
	err = st.GetContext(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, s.errorf(err, "read audit chain head")
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
	prev, err := s.head(ctx, tx)
	if err != nil {
		return err
	}
	if e.ActorSalt, err = s.actorSalt(ctx, tx, e.Actor, e.Time); err != nil {
		return err
	}
	e.Link(prev)
	st, err := s.stmt(ctx, tx, insertAudit)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, e.Seq, e.Version, micros(e.Time), e.ActorCommit,
		e.Action, e.Subject, e.Details, e.PrevHash, e.Hash)
	return s.errorf(err, "append audit event")
}

// actorSalt returns the salt of actor for the month of at, creating it on
// first use, from a cache of the process (salts never change; an erased
// one belongs to a month no event is written in any more). It runs under
// the audit lock, so concurrent appends agree.
func (s *Store) actorSalt(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, at time.Time) ([]byte, error) {
	month := at.UTC().Format("2006-01")
	key := string(actor) + "\x00" + month
	if salt, ok := s.salts.Load(key); ok {
		return salt.([]byte), nil
	}
	salt, err := s.loadActorSalt(ctx, tx, actor, month)
	if err == nil {
		s.salts.Store(key, salt)
	}
	return salt, err
}

// loadActorSalt reads or creates the salt of actor and month.
func (s *Store) loadActorSalt(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, month string) ([]byte, error) {
	st, err := s.stmt(ctx, tx, actorSaltQuery)
	if err != nil {
		return nil, err
	}
	var salt []byte
	err = st.GetContext(ctx, &salt, string(actor), month)
	if err == nil {
		return salt, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, s.errorf(err, "read actor salt")
	}
	salt = registry.NewSalt()
	ins, err := s.stmt(ctx, tx, insertActor)
	if err != nil {
		return nil, err
	}
	if _, err := ins.ExecContext(ctx, registry.ActorCommitment(salt, actor), string(actor), salt, month); err != nil {
		return nil, s.errorf(err, "store actor salt")
	}
	return salt, nil
}

// audit appends the payload's event inside tx; a zero time means now.
func (s *Store) audit(ctx context.Context, tx *sqlx.Tx, at time.Time, actor registry.Actor, subject string, p registry.AuditPayload) error {
	if at.IsZero() {
		at = s.now()
	}
	e, err := registry.NewAuditEvent(at, actor, subject, p)
	if err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, e)
}
