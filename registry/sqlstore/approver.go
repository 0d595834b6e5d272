package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type approverRow struct {
	ID        string        `db:"id"`
	Name      string        `db:"name"`
	PublicKey string        `db:"public_key"`
	AddedAt   int64         `db:"added_at"`
	AddedBy   string        `db:"added_by"`
	Signature []byte        `db:"signature"`
	RemovedAt sql.NullInt64 `db:"removed_at"`
	RemovedBy string        `db:"removed_by"`
}

const approverColumns = `id, name, public_key, added_at, added_by, signature, removed_at, removed_by`

func (r *approverRow) approver() *registry.Approver {
	return &registry.Approver{ID: r.ID, Name: r.Name, PublicKey: r.PublicKey, AddedAt: fromMicros(r.AddedAt),
		AddedBy: r.AddedBy, Signature: r.Signature, RemovedAt: fromNullMicros(r.RemovedAt), RemovedBy: r.RemovedBy}
}

// Approvers lists every approver, oldest first.
func (s *Store) Approvers(ctx context.Context) ([]*registry.Approver, error) {
	return s.approvers(ctx, s.read)
}

func (s *Store) approvers(ctx context.Context, q sqlx.QueryerContext) ([]*registry.Approver, error) {
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

// signerKey returns the active approver id's lookup entry, or EFORBIDDEN.
func signerKey(list []*registry.Approver, id string) (*registry.Approver, error) {
	for _, a := range list {
		if a.ID == id && a.RemovedAt == nil {
			return a, nil
		}
	}
	return nil, registry.Errorf(registry.EFORBIDDEN, "The key %s is not an active approver.", safeKeyID(id))
}

// safeKeyID returns id when it looks like a key id, so that no message
// echoes arbitrary input.
func safeKeyID(id string) string {
	if len(id) == 16 && strings.Trim(id, "0123456789abcdef") == "" {
		return id
	}
	return "(malformed key id)"
}

// AddApprover registers an approver; see registry.ApproverStore.
func (s *Store) AddApprover(ctx context.Context, a *registry.Approver) error {
	a.AddedAt = utcMicro(a.AddedAt)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.dialect.LockAudit(ctx, tx); err != nil {
			return s.errorf(err, "lock audit log")
		}
		list, err := s.approvers(ctx, tx)
		if err != nil {
			return err
		}
		active := 0
		for _, o := range list {
			if o.RemovedAt == nil {
				active++
			}
			if o.ID == a.ID {
				return registry.Errorf(registry.ECONFLICT, "The key %s is already registered (as %q).", a.ID, o.Name)
			}
			if o.RemovedAt == nil && strings.EqualFold(o.Name, a.Name) {
				return registry.FieldError("name", "An approver named %q is already registered.", o.Name)
			}
		}
		actor := a.Actor() // the first approver adds itself
		switch {
		case active == 0 && a.AddedBy != "":
			return registry.Errorf(registry.EINVALID, "There is no approver yet: the first one is added without a signature.")
		case active > 0:
			by, err := signerKey(list, a.AddedBy)
			if err != nil {
				return registry.Errorf(registry.EFORBIDDEN, "Adding an approver needs the signature of an active approver.")
			}
			if !registry.VerifySignature(by.Key(), registry.PurposeApprover, registry.ApproverStatement("add", a), a.Signature) {
				return registry.Errorf(registry.EFORBIDDEN, "The signature of %s does not cover adding this approver.", by.ID)
			}
			actor = by.Actor()
		}
		_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO approvers (id, name, public_key, added_at, added_by, signature)
VALUES (?, ?, ?, ?, ?, ?)`), a.ID, a.Name, a.PublicKey, micros(a.AddedAt), a.AddedBy, nullBytes(a.Signature))
		if err != nil {
			return s.errorf(err, "insert approver")
		}
		return s.audit(ctx, tx, a.AddedAt, actor, a.ID, registry.ApproverChanged{
			Op: "add", ID: a.ID, Name: a.Name, PublicKey: a.PublicKey, By: a.AddedBy, Signature: a.Signature})
	})
}

// RemoveApprover removes an approver; see registry.ApproverStore.
func (s *Store) RemoveApprover(ctx context.Context, id, by string, sig []byte, now time.Time) error {
	now = utcMicro(now)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.dialect.LockAudit(ctx, tx); err != nil {
			return s.errorf(err, "lock audit log")
		}
		list, err := s.approvers(ctx, tx)
		if err != nil {
			return err
		}
		target, err := signerKey(list, id)
		if err != nil {
			return registry.Errorf(registry.ENOTFOUND, "No active approver has the key id %s.", safeKeyID(id))
		}
		signer, err := signerKey(list, by)
		if err != nil {
			return err
		}
		if !registry.VerifySignature(signer.Key(), registry.PurposeApprover, registry.ApproverStatement("remove", target), sig) {
			return registry.Errorf(registry.EFORBIDDEN, "The signature of %s does not cover removing this approver.", signer.ID)
		}
		active := 0
		for _, o := range list {
			if o.RemovedAt == nil {
				active++
			}
		}
		if active == 1 {
			return registry.Errorf(registry.ECONFLICT, "%s is the last approver; add another one first.", target.ID)
		}
		err = s.update(ctx, tx, "The approver was removed concurrently.", `UPDATE approvers SET removed_at = ?, removed_by = ?,
removal_signature = ? WHERE id = ? AND removed_at IS NULL`, micros(now), by, sig, id)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, now, signer.Actor(), id, registry.ApproverChanged{
			Op: "remove", ID: id, Name: target.Name, PublicKey: target.PublicKey, By: by, Signature: sig})
	})
}

type approvalRow struct {
	ID          string        `db:"id"`
	RequestID   string        `db:"request_id"`
	ApproverID  string        `db:"approver_id"`
	Decision    string        `db:"decision"`
	ExpiresAt   int64         `db:"expires_at"`
	SignedAt    int64         `db:"signed_at"`
	Note        string        `db:"note"`
	Signature   []byte        `db:"signature"`
	WithdrawnAt sql.NullInt64 `db:"withdrawn_at"`
}

// approvals returns the decisions on a request, oldest first, with the
// approvers' names and keys (also of removed approvers: the check decides
// whether they still count).
func (s *Store) approvals(ctx context.Context, q sqlx.QueryerContext, requestID string, list []*registry.Approver) ([]*registry.Approval, error) {
	var rows []approvalRow
	err := sqlx.SelectContext(ctx, q, &rows, s.rebind(`SELECT id, request_id, approver_id, decision, expires_at, signed_at, note,
signature, withdrawn_at FROM trace_approvals WHERE request_id = ? ORDER BY signed_at, id`), requestID)
	if err != nil {
		return nil, s.errorf(err, "list approvals")
	}
	var out []*registry.Approval
	for _, r := range rows {
		a := &registry.Approval{ID: r.ID, RequestID: r.RequestID, ApproverID: r.ApproverID, Decision: r.Decision,
			ExpiresAt: fromMicros(r.ExpiresAt), SignedAt: fromMicros(r.SignedAt), Note: r.Note, Signature: r.Signature,
			WithdrawnAt: fromNullMicros(r.WithdrawnAt)}
		for _, ap := range list {
			if ap.ID == a.ApproverID {
				a.Name, a.PublicKey = ap.Name, ap.PublicKey
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// withApprovals fills in r.Approvals.
func (s *Store) withApprovals(ctx context.Context, q sqlx.QueryerContext, r *registry.TraceRequest) ([]*registry.Approver, error) {
	list, err := s.approvers(ctx, q)
	if err != nil {
		return nil, err
	}
	r.Approvals, err = s.approvals(ctx, q, r.ID, list)
	return list, err
}

// DecideTraceRequest records a signed decision; see registry.TraceStore.
func (s *Store) DecideTraceRequest(ctx context.Context, a *registry.Approval, now time.Time) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	a.SignedAt, a.ExpiresAt = now, utcMicro(a.ExpiresAt)
	var r *registry.TraceRequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.findTraceRequest(ctx, tx, a.RequestID); err != nil {
			return err
		}
		list, err := s.approvers(ctx, tx)
		if err != nil {
			return err
		}
		signer, err := signerKey(list, a.ApproverID)
		if err != nil {
			return err
		}
		switch {
		case r.Status != registry.TracePending && r.Status != registry.TraceApproved:
			return registry.Errorf(registry.ECONFLICT, "The request is %s; it can no longer be decided.", r.Status)
		case a.Decision != registry.DecisionApprove && a.Decision != registry.DecisionReject:
			return registry.Errorf(registry.EINVALID, "A decision is approve or reject.")
		case a.Decision == registry.DecisionApprove && !a.ExpiresAt.After(now):
			return registry.FieldError("expires_at", "An approval must expire after it is given.")
		case !registry.VerifySignature(signer.Key(), registry.PurposeDecision, registry.DecisionStatement(r, a.Decision, a.ExpiresAt), a.Signature):
			return registry.Errorf(registry.EFORBIDDEN, "The signature does not cover this decision on the request as stored.")
		}
		for _, o := range r.Approvals {
			if o.ApproverID == a.ApproverID && o.WithdrawnAt == nil {
				return registry.Errorf(registry.ECONFLICT, "%s has already decided this request; withdraw that decision first.", signer.Name)
			}
		}
		a.ID = registry.NewID()
		_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO trace_approvals (id, request_id, approver_id, decision, expires_at,
signed_at, note, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), a.ID, r.ID, a.ApproverID, a.Decision, micros(a.ExpiresAt),
			micros(now), a.Note, a.Signature)
		if err != nil {
			return s.errorf(err, "insert approval")
		}
		a.Name, a.PublicKey = signer.Name, signer.PublicKey
		r.Approvals = append(r.Approvals, a)
		old := r.Status
		var payload registry.AuditPayload
		if a.Decision == registry.DecisionReject {
			r.Status, r.ExpiresAt = registry.TraceRejected, nil
			payload = registry.RequestRejected{Approver: a.ApproverID, Signature: a.Signature}
		} else {
			complete := settle(r, list, now)
			payload = registry.RequestApproved{Approver: a.ApproverID, ExpiresAt: a.ExpiresAt, Signature: a.Signature,
				Complete: complete && old != registry.TraceApproved}
		}
		r.DecidedBy, r.DecidedAt, r.DecisionNote = signer.Actor(), &now, a.Note
		if err := s.saveDecision(ctx, tx, r, old, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, signer.Actor(), r.ID, payload)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// settle sets r's status from its approvals: approved, with the earliest
// expiry of the approvals that count, when CheckApprovals passes; pending
// otherwise. It reports whether r is approved.
func settle(r *registry.TraceRequest, list []*registry.Approver, now time.Time) bool {
	valid, err := registry.CheckApprovals(r, r.Approvals, registry.ActiveApprovers(list), now)
	if err != nil {
		r.Status, r.ExpiresAt = registry.TracePending, nil
		return false
	}
	exp := valid[0].ExpiresAt
	for _, a := range valid[1:] {
		if a.ExpiresAt.Before(exp) {
			exp = a.ExpiresAt
		}
	}
	r.Status, r.ExpiresAt = registry.TraceApproved, &exp
	return true
}

// saveDecision writes r's status, decision and expiry, guarded by its old
// status.
func (s *Store) saveDecision(ctx context.Context, tx *sqlx.Tx, r *registry.TraceRequest, old registry.TraceStatus, now time.Time) error {
	var closed *time.Time
	if r.Status == registry.TraceRejected {
		closed = &now
	}
	return s.update(ctx, tx, "The request was decided concurrently.", `UPDATE trace_requests SET status = ?, decided_by = ?,
decided_at = ?, decision_note = ?, expires_at = ?, closed_at = ? WHERE id = ? AND status = ?`,
		string(r.Status), string(r.DecidedBy), nullMicros(r.DecidedAt), r.DecisionNote, nullMicros(r.ExpiresAt), nullMicros(closed), r.ID, string(old))
}

// WithdrawApproval withdraws a decision; see registry.TraceStore.
func (s *Store) WithdrawApproval(ctx context.Context, requestID, approverID string, sig []byte, now time.Time) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	var r *registry.TraceRequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.findTraceRequest(ctx, tx, requestID); err != nil {
			return err
		}
		list, err := s.approvers(ctx, tx)
		if err != nil {
			return err
		}
		signer, err := signerKey(list, approverID)
		if err != nil {
			return err
		}
		var mine *registry.Approval
		for _, o := range r.Approvals {
			if o.ApproverID == approverID && o.WithdrawnAt == nil {
				mine = o
			}
		}
		switch {
		case mine == nil:
			return registry.Errorf(registry.ENOTFOUND, "%s has no decision on this request to withdraw.", signer.Name)
		case r.Status != registry.TracePending && r.Status != registry.TraceApproved && r.Status != registry.TraceRejected:
			return registry.Errorf(registry.ECONFLICT, "The request is %s; its decisions can no longer be withdrawn.", r.Status)
		case !registry.VerifySignature(signer.Key(), registry.PurposeDecision, registry.DecisionStatement(r, registry.DecisionWithdraw, time.Time{}), sig):
			return registry.Errorf(registry.EFORBIDDEN, "The signature does not cover withdrawing this decision.")
		}
		err = s.update(ctx, tx, "The decision was withdrawn concurrently.", `UPDATE trace_approvals SET withdrawn_at = ?
WHERE id = ? AND withdrawn_at IS NULL`, micros(now), mine.ID)
		if err != nil {
			return err
		}
		mine.WithdrawnAt = &now
		old := r.Status
		settle(r, list, now)
		r.DecidedBy, r.DecidedAt = signer.Actor(), &now
		if err := s.saveDecision(ctx, tx, r, old, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, signer.Actor(), r.ID, registry.ApprovalWithdrawn{Approver: approverID, Signature: sig})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// checkApprovals verifies the approvals of r (registry.CheckApprovals)
// and that no export of r is in the audit log already, so that a request
// reset in the database after its export is not exported again. It
// returns the approvals that count.
func (s *Store) checkApprovals(ctx context.Context, q sqlx.QueryerContext, r *registry.TraceRequest, now time.Time) ([]*registry.Approval, error) {
	list, err := s.approvers(ctx, q)
	if err != nil {
		return nil, err
	}
	valid, err := registry.CheckApprovals(r, r.Approvals, registry.ActiveApprovers(list), now)
	if err != nil {
		return nil, err
	}
	var seq int64
	err = sqlx.GetContext(ctx, q, &seq, s.rebind(`SELECT seq FROM audit_events WHERE action = ? AND subject = ? LIMIT 1`),
		registry.AuditRequestExported, r.ID)
	switch {
	case err == nil:
		return nil, registry.Errorf(registry.ECONFLICT, "The audit log records an export of this request already (entry %d); its state in the database was reset.", seq)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, s.errorf(err, "look up earlier exports")
	}
	return valid, nil
}
