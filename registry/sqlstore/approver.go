package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/names"
)

type approverRow struct {
	ID        string        `db:"id"`
	Person    string        `db:"person"`
	Name      string        `db:"name"`
	NameSalt  []byte        `db:"name_salt"`
	PublicKey string        `db:"public_key"`
	AddedAt   int64         `db:"added_at"`
	RemovedAt sql.NullInt64 `db:"removed_at"`
}

const approverColumns = `id, person, name, name_salt, public_key, added_at, removed_at`

func (r *approverRow) approver() *registry.Approver {
	return &registry.Approver{ID: r.ID, Person: r.Person, Name: r.Name, NameSalt: r.NameSalt, PublicKey: r.PublicKey,
		AddedAt: fromMicros(r.AddedAt), RemovedAt: fromNullMicros(r.RemovedAt)}
}

// Approvers returns the approver set the audit log proves; see
// registry.ApproverStore.
func (s *Store) Approvers(ctx context.Context) (*registry.ApproverSet, error) {
	return s.approverSet(ctx, s.read)
}

// approverRows reads the approvers table.
func (s *Store) approverRows(ctx context.Context, q sqlx.QueryerContext) ([]*registry.Approver, error) {
	var rows []approverRow
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT `+approverColumns+` FROM approvers ORDER BY added_at, id`); err != nil {
		return nil, s.errorf(err, "list approvers")
	}
	list := make([]*registry.Approver, len(rows))
	for i := range rows {
		list[i] = rows[i].approver()
	}
	return list, nil
}

// approverSet replays the log's approver entries with the table's names.
func (s *Store) approverSet(ctx context.Context, q sqlx.QueryerContext) (*registry.ApproverSet, error) {
	list, err := s.approverRows(ctx, q)
	if err != nil {
		return nil, err
	}
	var evs []auditRow
	err = sqlx.SelectContext(ctx, q, &evs, s.rebind(auditSelect+` WHERE e.action = ? ORDER BY e.seq`), registry.AuditApproverChanged)
	if err != nil {
		return nil, s.errorf(err, "read the approver changes")
	}
	events := make([]*registry.AuditEvent, len(evs))
	for i := range evs {
		events[i] = evs[i].event()
	}
	return registry.ReplayApprovers(events, list), nil
}

// CloseApproverRule ends rule 1 once; see registry.ApproverStore.
func (s *Store) CloseApproverRule(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.dialect.LockAudit(ctx, tx); err != nil {
			return s.errorf(err, "lock audit log")
		}
		set, err := s.approverSet(ctx, tx)
		if err != nil {
			return err
		}
		if p := set.RuleEntry(); p != nil {
			return s.audit(ctx, tx, time.Time{}, registry.ActorSystem, "", *p)
		}
		return nil
	})
}

// ProposeApproverChange stores a change of the approver set; see
// registry.ApproverStore.
func (s *Store) ProposeApproverChange(ctx context.Context, actor registry.Actor, c *registry.ApproverChange) (bool, error) {
	applied := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		set, err := s.lockApprovers(ctx, tx)
		if err != nil {
			return err
		}
		if c.Op == registry.ChangeAddPerson {
			if err := names.CheckUnlike("name", c.Name, set.Names()); err != nil {
				return err
			}
		}
		applied, err = s.settleChange(ctx, tx, actor, set, c, true)
		return err
	})
	return applied, err
}

// EndorseApproverChange adds an endorsement; see registry.ApproverStore.
func (s *Store) EndorseApproverChange(ctx context.Context, actor registry.Actor, id string, e registry.Endorsement, now time.Time) (*registry.ApproverChange, bool, error) {
	var c *registry.ApproverChange
	applied := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		set, err := s.lockApprovers(ctx, tx)
		if err != nil {
			return err
		}
		if c, err = s.pendingChange(ctx, tx, id, now); err != nil {
			return err
		}
		kept := c.Endorsements[:0]
		for _, o := range c.Endorsements {
			if o.Key != e.Key {
				kept = append(kept, o)
			}
		}
		c.Endorsements = append(kept, e)
		applied, err = s.settleChange(ctx, tx, actor, set, c, false)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return c, applied, nil
}

// lockApprovers takes the audit lock (changes of the set are serialised
// with every other audited change) and returns the set.
func (s *Store) lockApprovers(ctx context.Context, tx *sqlx.Tx) (*registry.ApproverSet, error) {
	if err := s.dialect.LockAudit(ctx, tx); err != nil {
		return nil, s.errorf(err, "lock audit log")
	}
	return s.approverSet(ctx, tx)
}

// settleChange applies c when its endorsements suffice, or keeps it as
// pending (fresh: a new proposal, stored; else an endorsed one, updated).
func (s *Store) settleChange(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, set *registry.ApproverSet, c *registry.ApproverChange, fresh bool) (bool, error) {
	if c.Serial != set.Serial {
		return false, registry.Errorf(registry.ECONFLICT, "The approvers changed since this change was proposed: propose it again.")
	}
	got, err := set.Endorsers(c)
	if err != nil {
		return false, err
	}
	if need, _ := set.EndorsementRule(c); len(got) < need {
		return false, s.keepChange(ctx, tx, actor, c, fresh)
	}
	if err := set.Check(c); err != nil {
		return false, err
	}
	if err := s.checkLastKey(ctx, tx, set, c); err != nil {
		return false, err
	}
	if err := s.applyChange(ctx, tx, actor, c); err != nil {
		return false, err
	}
	// Every pending change was signed over the set as it was: none can
	// apply any more (its serial is past), so they all go.
	_, err = s.exec(ctx, tx, `DELETE FROM approver_changes`)
	return true, err
}

// checkLastKey refuses to remove the last key of the last person while
// requests are pending or approved: nobody could decide them.
func (s *Store) checkLastKey(ctx context.Context, tx *sqlx.Tx, set *registry.ApproverSet, c *registry.ApproverChange) error {
	if c.Op != registry.ChangeRemoveKey || len(set.Active()) != 1 {
		return nil
	}
	var open int
	err := sqlx.GetContext(ctx, tx, &open, s.rebind(`SELECT count(*) FROM trace_requests WHERE status IN (?, ?)`),
		string(registry.TracePending), string(registry.TraceApproved))
	if err != nil {
		return s.errorf(err, "count open requests")
	}
	if open > 0 {
		return registry.Errorf(registry.ECONFLICT, "%s is the last approver and %d trace requests are open: add another approver first, or decide them.",
			set.Active()[0].Label(), open)
	}
	return nil
}

// applyChange writes an applied change into the table and the log.
func (s *Store) applyChange(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, c *registry.ApproverChange) error {
	now := s.now()
	switch c.Op {
	case registry.ChangeAddPerson, registry.ChangeAddKey:
		name, salt := c.Name, c.NameSalt
		if c.Op == registry.ChangeAddKey {
			if err := sqlx.GetContext(ctx, tx, &struct {
				Name *string `db:"name"`
				Salt *[]byte `db:"name_salt"`
			}{&name, &salt}, s.rebind(`SELECT name, name_salt FROM approvers WHERE person = ? ORDER BY added_at LIMIT 1`), c.Person); err != nil {
				return s.errorf(err, "read the person's name")
			}
		}
		// A row the log never proved (written by hand) may hold the key:
		// the log's change replaces it.
		if _, err := s.exec(ctx, tx, `DELETE FROM approvers WHERE id = ? OR public_key = ?`, c.KeyID, c.PublicKey); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO approvers (id, person, name, name_salt, public_key, added_at, added_by)
VALUES (?, ?, ?, ?, ?, ?, ?)`), c.KeyID, c.Person, name, nullBytes(salt), c.PublicKey, micros(now), endorserList(c))
		if err != nil {
			return s.errorf(err, "insert approver")
		}
	case registry.ChangeRemoveKey:
		if _, err := s.exec(ctx, tx, `UPDATE approvers SET removed_at = ?, removed_by = ? WHERE id = ?`, micros(now), endorserList(c), c.KeyID); err != nil {
			return err
		}
	}
	return s.audit(ctx, tx, now, actor, c.KeyID, c.Payload())
}

// endorserList is the key ids of c's endorsements, for the table.
func endorserList(c *registry.ApproverChange) string {
	ids := make([]string, len(c.Endorsements))
	for i, e := range c.Endorsements {
		ids[i] = e.Key
	}
	return strings.Join(ids, ",")
}

// keepChange stores a change that waits for endorsements, with an
// AuditApproverProposed entry.
func (s *Store) keepChange(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, c *registry.ApproverChange, fresh bool) error {
	endorsements, _ := json.Marshal(c.Endorsements)
	var err error
	if fresh {
		_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO approver_changes (id, op, serial, person, key_id, public_key, name, name_salt,
endorsements, proposed_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), c.ID, c.Op, c.Serial, c.Person, c.KeyID,
			c.PublicKey, c.Name, nullBytes(c.NameSalt), string(endorsements), string(c.ProposedBy), micros(c.CreatedAt), micros(c.ExpiresAt))
	} else {
		_, err = tx.ExecContext(ctx, s.rebind(`UPDATE approver_changes SET endorsements = ? WHERE id = ?`), string(endorsements), c.ID)
	}
	if err != nil {
		return s.errorf(err, "store the approver change")
	}
	p := registry.ApproverProposed{Op: c.Op, ID: c.KeyID, Person: c.Person, Serial: c.Serial, Endorsers: []string{}}
	for _, e := range c.Endorsements {
		p.Endorsers = append(p.Endorsers, e.Key)
	}
	return s.audit(ctx, tx, time.Time{}, actor, c.ID, p)
}

type changeRow struct {
	ID           string `db:"id"`
	Op           string `db:"op"`
	Serial       int    `db:"serial"`
	Person       string `db:"person"`
	KeyID        string `db:"key_id"`
	PublicKey    string `db:"public_key"`
	Name         string `db:"name"`
	NameSalt     []byte `db:"name_salt"`
	Endorsements string `db:"endorsements"`
	ProposedBy   string `db:"proposed_by"`
	CreatedAt    int64  `db:"created_at"`
	ExpiresAt    int64  `db:"expires_at"`
}

const changeColumns = `id, op, serial, person, key_id, public_key, name, name_salt, endorsements, proposed_by, created_at, expires_at`

func (r *changeRow) change() (*registry.ApproverChange, error) {
	c := &registry.ApproverChange{ID: r.ID, Op: r.Op, Serial: r.Serial, Person: r.Person, KeyID: r.KeyID, PublicKey: r.PublicKey,
		Name: r.Name, NameSalt: r.NameSalt, ProposedBy: registry.Actor(r.ProposedBy), CreatedAt: fromMicros(r.CreatedAt), ExpiresAt: fromMicros(r.ExpiresAt)}
	if err := json.Unmarshal([]byte(r.Endorsements), &c.Endorsements); err != nil {
		return nil, registry.Errorf(registry.EINTERNAL, "The endorsements of approver change %s do not parse.", r.ID)
	}
	return c, nil
}

// pendingChange returns the unexpired pending change id.
func (s *Store) pendingChange(ctx context.Context, q sqlx.QueryerContext, id string, now time.Time) (*registry.ApproverChange, error) {
	var row changeRow
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT `+changeColumns+` FROM approver_changes WHERE id = ? AND expires_at > ?`), id, micros(now))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "There is no pending approver change %s (applied, superseded by another change, expired after %d days, or never proposed).",
			registry.SafeKeyID(id[:min(len(id), 16)]), int(registry.ProposalValidity.Hours()/24))
	} else if err != nil {
		return nil, s.errorf(err, "find approver change")
	}
	return row.change()
}

// ApproverChanges lists the pending changes; see registry.ApproverStore.
func (s *Store) ApproverChanges(ctx context.Context, now time.Time) ([]*registry.ApproverChange, error) {
	var rows []changeRow
	if err := s.read.SelectContext(ctx, &rows, s.rebind(`SELECT `+changeColumns+` FROM approver_changes WHERE expires_at > ? ORDER BY created_at, id`), micros(now)); err != nil {
		return nil, s.errorf(err, "list approver changes")
	}
	out := make([]*registry.ApproverChange, 0, len(rows))
	for i := range rows {
		c, err := rows[i].change()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
