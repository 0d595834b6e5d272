package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

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
func (s *Store) approvals(ctx context.Context, q sqlx.QueryerContext, requestID string, set *registry.ApproverSet) ([]*registry.Approval, error) {
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
		if ap, ok := set.Find(a.ApproverID); ok {
			a.Name, a.PublicKey, a.Person = ap.Name, ap.PublicKey, ap.Person
		}
		out = append(out, a)
	}
	return out, nil
}

// withApprovals fills in r.Approvals and returns the approver set.
func (s *Store) withApprovals(ctx context.Context, q sqlx.QueryerContext, r *registry.TraceRequest) (*registry.ApproverSet, error) {
	set, err := s.approverSet(ctx, q)
	if err != nil {
		return nil, err
	}
	r.Approvals, err = s.approvals(ctx, q, r.ID, set)
	return set, err
}

// signerKey returns the active approver key id of set, or EFORBIDDEN.
func signerKey(set *registry.ApproverSet, id string) (*registry.Approver, error) {
	if a, ok := set.Key(id); ok {
		return a, nil
	}
	return nil, registry.Errorf(registry.EFORBIDDEN, "The key %s is not an active approver's.", registry.SafeKeyID(id))
}

// DecideTraceRequest records a signed decision; see registry.TraceStore.
func (s *Store) DecideTraceRequest(ctx context.Context, a *registry.Approval, now time.Time) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	a.SignedAt, a.ExpiresAt = now, utcMicro(a.ExpiresAt)
	var r *registry.TraceRequest
	refused := "" // why a decision was refused to its key, for the audit log
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.findTraceRequest(ctx, tx, a.RequestID); err != nil {
			return err
		}
		set, err := s.approverSet(ctx, tx)
		if err != nil {
			return err
		}
		signer, err := signerKey(set, a.ApproverID)
		if err != nil {
			refused = "not an active approver's key"
			return err
		}
		signed := signer.Key().Verify(registry.PurposeDecision, registry.DecisionStatement(r, a.Decision, a.ExpiresAt), a.Signature)
		switch {
		case r.Status != registry.TracePending && r.Status != registry.TraceApproved:
			return registry.Errorf(registry.ECONFLICT, "The request is %s; it can no longer be decided.", r.Status)
		case a.Decision != registry.DecisionApprove && a.Decision != registry.DecisionReject:
			return registry.Errorf(registry.EINVALID, "A decision is approve or reject.")
		case a.Decision == registry.DecisionApprove && !a.ExpiresAt.After(now):
			return registry.FieldError("expires_at", "An approval must expire after it is given.")
		case !signed:
			refused = "signature does not verify"
			return registry.Errorf(registry.EFORBIDDEN, "The signature does not cover this decision on the request as stored.")
		}
		for _, o := range r.Approvals {
			if o.WithdrawnAt == nil && (o.ApproverID == a.ApproverID || o.Person != "" && o.Person == signer.Person) {
				return registry.Errorf(registry.ECONFLICT, "%s has already decided this request (key %s); withdraw that decision first: one person decides once, whatever keys they hold.",
					registry.ShowScripts(signer.Name), o.ApproverID)
			}
		}
		a.ID = registry.NewID()
		_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO trace_approvals (id, request_id, approver_id, decision, expires_at,
signed_at, note, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), a.ID, r.ID, a.ApproverID, a.Decision, micros(a.ExpiresAt),
			micros(now), a.Note, a.Signature)
		if err != nil {
			return s.errorf(err, "insert approval")
		}
		a.Name, a.PublicKey, a.Person = signer.Name, signer.PublicKey, signer.Person
		r.Approvals = append(r.Approvals, a)
		old := r.Status
		var payload registry.AuditPayload
		if a.Decision == registry.DecisionReject {
			r.Status, r.ExpiresAt = registry.TraceRejected, nil
			payload = registry.RequestRejected{Approver: a.ApproverID, Signature: a.Signature}
		} else {
			complete := settle(r, set, now)
			payload = registry.RequestApproved{Approver: a.ApproverID, ExpiresAt: a.ExpiresAt, Signature: a.Signature,
				Complete: complete && old != registry.TraceApproved}
		}
		r.DecidedBy, r.DecidedAt, r.DecisionNote = signer.Actor(), &now, a.Note
		if err := s.saveDecision(ctx, tx, r, old, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, signer.Actor(), r.ID, payload)
	})
	if refused != "" {
		if aerr := s.auditRefused(ctx, now, a.RequestID, a.ApproverID, refused); aerr != nil {
			return nil, errors.Join(err, aerr)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// auditRefused records a decision refused to its key, in a transaction
// of its own (the decision's was rolled back): an AuditApprovalRefused
// entry with the key's id, never the signature.
func (s *Store) auditRefused(ctx context.Context, now time.Time, requestID, keyID, why string) error {
	ev, err := registry.NewAuditEvent(now, registry.ActorAnonymous, requestID, registry.ApprovalRefused{Key: registry.SafeKeyID(keyID), Reason: why})
	if err == nil {
		err = s.AppendAudit(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("record the refused decision: %w", err)
	}
	return nil
}

// settle sets r's status from its approvals: approved, with the earliest
// expiry of the approvals that count, when CheckApprovals passes; pending
// otherwise. It reports whether r is approved.
func settle(r *registry.TraceRequest, set *registry.ApproverSet, now time.Time) bool {
	valid, err := registry.CheckApprovals(r, r.Approvals, set, now)
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
	refused := ""
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.findTraceRequest(ctx, tx, requestID); err != nil {
			return err
		}
		set, err := s.approverSet(ctx, tx)
		if err != nil {
			return err
		}
		signer, err := signerKey(set, approverID)
		if err != nil {
			refused = "not an active approver's key"
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
			return registry.Errorf(registry.ENOTFOUND, "%s has no decision on this request to withdraw.", registry.ShowScripts(signer.Name))
		case r.Status != registry.TracePending && r.Status != registry.TraceApproved && r.Status != registry.TraceRejected:
			return registry.Errorf(registry.ECONFLICT, "The request is %s; its decisions can no longer be withdrawn.", r.Status)
		case !signer.Key().Verify(registry.PurposeDecision, registry.DecisionStatement(r, registry.DecisionWithdraw, time.Time{}), sig):
			refused = "signature does not verify"
			return registry.Errorf(registry.EFORBIDDEN, "The signature does not cover withdrawing this decision.")
		}
		err = s.update(ctx, tx, "The decision was withdrawn concurrently.", `UPDATE trace_approvals SET withdrawn_at = ?
WHERE id = ? AND withdrawn_at IS NULL`, micros(now), mine.ID)
		if err != nil {
			return err
		}
		mine.WithdrawnAt = &now
		old := r.Status
		settle(r, set, now)
		r.DecidedBy, r.DecidedAt = signer.Actor(), &now
		if err := s.saveDecision(ctx, tx, r, old, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, signer.Actor(), r.ID, registry.ApprovalWithdrawn{Approver: approverID, Signature: sig})
	})
	if refused != "" {
		if aerr := s.auditRefused(ctx, now, requestID, approverID, refused); aerr != nil {
			return nil, errors.Join(err, aerr)
		}
		return nil, err
	}
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
	set, err := s.approverSet(ctx, q)
	if err != nil {
		return nil, err
	}
	valid, err := registry.CheckApprovals(r, r.Approvals, set, now)
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
