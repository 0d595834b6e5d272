package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"

	"github.com/cityhall/registry/registry"
)

// ExportCheck is what an export checks against the log before it is
// recorded, so that data changed in the database never consumes the
// one-time export and never leaves: the stretch of the log from the first
// entry that may register a visit of the request's window (or the
// request's creation, if earlier) to the head must verify as a chain and,
// when the instance's anchor lies in it, hold the anchored entry; the
// request must be in the log with the scope it has now and no export; the
// approvals that count must be ones the log holds as standing (made, and
// neither withdrawn nor voided by a narrowing since); and every visit
// exported must be one the log registered, with a check-out the log
// recorded (Filter).
type ExportCheck struct {
	request    string
	created    bool
	exported   int64 // seq of a logged export of the request, 0 for none
	scope      registry.RequestNarrowed
	standing   map[string][]byte // approver key id → signature of a standing approval
	rejected   map[string]bool   // approver key ids of standing rejections
	leaves     map[string]bool
	departures map[string]bool
}

// NewExportCheck walks the log from seq from (at least 1) to its head,
// verifying the chain from the entry before from, and collects what the
// request id and its visits need. anchor, when not nil, is the instance's
// signed note of an earlier head (crypto.KeyStore.Anchor): the log must
// still reach it and, if it lies in the stretch walked, hold it
// unchanged. A *VerifyError (EINVALID) says what is wrong with the log.
func NewExportCheck(ctx context.Context, s registry.AuditStore, id string, from int64, anchor *registry.LogAnchor) (*ExportCheck, error) {
	c := &ExportCheck{request: id, standing: map[string][]byte{}, rejected: map[string]bool{}, leaves: map[string]bool{}, departures: map[string]bool{}}
	from = max(from, 1)
	var prev *registry.AuditEvent
	if from > 1 {
		page, err := s.AuditEvents(ctx, from-2, 1)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 || page[0].Seq != from-1 {
			return nil, &VerifyError{Seq: from - 1, Problem: Removed, Detail: "the entry before the stretch an export checks is missing"}
		}
		prev = page[0]
	}
	head := prev
	for after := from - 1; ; {
		page, err := s.AuditEvents(ctx, after, pageSize)
		if err != nil {
			return nil, err
		}
		for _, ev := range page {
			if err := checkEvent(head, ev); err != nil {
				return nil, err
			}
			if anchor != nil && ev.Seq == anchor.Size && !bytes.Equal(ev.Hash, anchor.Hash) {
				return nil, &VerifyError{Seq: ev.Seq, Problem: Rewritten, Detail: "its hash differs from the one the registry instance noted after an earlier export: the log was rewritten"}
			}
			if err := c.add(ev); err != nil {
				return nil, err
			}
			head, after = ev, ev.Seq
		}
		if len(page) < pageSize {
			break
		}
	}
	if anchor != nil && (head == nil || head.Seq < anchor.Size) {
		size := int64(0)
		if head != nil {
			size = head.Seq
		}
		return nil, &VerifyError{Seq: size + 1, Problem: Truncated, Detail: fmt.Sprintf("the log ends at seq %d, but the registry instance noted %d entries after an earlier export", size, anchor.Size)}
	}
	return c, nil
}

// add takes in one entry of the stretch.
func (c *ExportCheck) add(e *registry.AuditEvent) error {
	bad := func(err error) error {
		return &VerifyError{Seq: e.Seq, Problem: Changed, Detail: fmt.Sprintf("its details do not parse (%v)", err)}
	}
	switch e.Action {
	case registry.AuditVisitsRegistered:
		var p registry.VisitsRegistered
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		if err := addLeaves(c.leaves, p.Leaves); err != nil {
			return bad(err)
		}
		return addLeaves(c.departures, p.Departures)
	case registry.AuditVisitsCheckedOut:
		var p registry.VisitsCheckedOut
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		return addLeaves(c.departures, p.Leaves)
	}
	if e.Subject != c.request {
		return nil
	}
	switch e.Action {
	case registry.AuditRequestCreated:
		var p registry.RequestCreated
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		c.created, c.scope = true, registry.RequestNarrowed{From: p.From, To: p.To, Sites: p.Sites, Areas: p.Areas}
	case registry.AuditRequestNarrowed:
		if err := json.Unmarshal([]byte(e.Details), &c.scope); err != nil {
			return bad(err)
		}
		clear(c.standing) // the narrowing withdrew every decision
		clear(c.rejected)
	case registry.AuditRequestApproved:
		var p registry.RequestApproved
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		c.standing[p.Approver] = p.Signature
	case registry.AuditRequestRejected:
		var p registry.RequestRejected
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		c.rejected[p.Approver] = true
	case registry.AuditApprovalWithdrawn:
		var p registry.ApprovalWithdrawn
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		delete(c.standing, p.Approver)
		delete(c.rejected, p.Approver)
	case registry.AuditRequestExported:
		c.exported = e.Seq
	}
	return nil
}

func addLeaves(set map[string]bool, byDay map[registry.Day]string) error {
	for _, b64 := range byDay {
		leaves, err := splitLeaves(b64)
		if err != nil {
			return err
		}
		for _, l := range leaves {
			set[l] = true
		}
	}
	return nil
}

// CheckRequest compares r and the approvals the export would consume
// (registry.CheckApprovals' result) with the log: ECONFLICT when the log
// records an export of r already, EFORBIDDEN when r is not in the log,
// its window or places differ from the log's, or an approval is not one
// the log holds as standing. Messages name the request and approver keys,
// never data.
func (c *ExportCheck) CheckRequest(r *registry.TraceRequest, approvals []*registry.Approval) error {
	switch {
	case c.exported > 0:
		return registry.Errorf(registry.ECONFLICT, "The audit log records an export of request %s already (entry %d); its state in the database was reset: nothing was exported.", r.ID, c.exported)
	case !c.created:
		return registry.Errorf(registry.EFORBIDDEN, "The audit log does not record the creation of request %s: it was written into the database; nothing was exported.", r.ID)
	case len(c.rejected) > 0:
		return registry.Errorf(registry.EFORBIDDEN, "The audit log records a rejection of request %s that stands: nothing was exported.", r.ID)
	case !c.scope.From.Equal(r.From) || !c.scope.To.Equal(r.To) || !slices.Equal(c.scope.Sites, nonNil(r.Sites)) || !slices.Equal(c.scope.Areas, nonNil(r.Areas)):
		return registry.Errorf(registry.EFORBIDDEN, "The window or places of request %s differ from what the audit log records for it: changed in the database; nothing was exported.", r.ID)
	}
	for _, a := range approvals {
		if sig, ok := c.standing[a.ApproverID]; !ok || !bytes.Equal(sig, a.Signature) {
			return registry.Errorf(registry.EFORBIDDEN, "The approval of request %s by key %s is not one the audit log holds as standing (withdrawn, voided by a narrowing, or never recorded): nothing was exported.",
				r.ID, registry.SafeKeyID(a.ApproverID))
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Filter yields visits as they come, and an EFORBIDDEN error (after
// which it stops) for a visit that is not one the log registered (its
// site, area, check-in, sealed data or appointment changed, or injected)
// or whose check-out the log did not record (but an automatic max-stay
// check-out, which the purge records by count only).
func (c *ExportCheck) Filter(visits iter.Seq2[*registry.Visit, error]) iter.Seq2[*registry.Visit, error] {
	return func(yield func(*registry.Visit, error) bool) {
		for v, err := range visits {
			if err == nil {
				err = c.checkVisit(v)
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

func (c *ExportCheck) checkVisit(v *registry.Visit) error {
	if !c.leaves[string(registry.VisitLeaf(v))] {
		return registry.Errorf(registry.EFORBIDDEN, "Visit %s (%s) is not the visit the audit log registered: changed or injected in the database; nothing was exported.", v.ID, v.Epoch)
	}
	if v.CheckOut != nil && !c.departures[string(registry.DepartureLeaf(v.ID, *v.CheckOut, v.CheckoutReason))] &&
		!(v.CheckoutAuto && v.CheckoutReason == registry.CheckoutMaxStay && !v.CheckOut.Before(v.CheckIn) && v.CheckOut.Sub(v.CheckIn) <= registry.MaxStayLimit) {
		return registry.Errorf(registry.EFORBIDDEN, "The check-out of visit %s (%s) is not one the audit log recorded: changed in the database; nothing was exported.", v.ID, v.Epoch)
	}
	return nil
}
