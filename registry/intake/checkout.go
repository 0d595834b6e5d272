package intake

import (
	"context"
	"time"

	"github.com/cityhall/registry/registry"
)

// Ticket is a visit's id with its checkout token: what the visitor's phone
// keeps and the slip's QR code holds.
type Ticket struct {
	ID    string
	Token string
}

// CheckOut records the departure of visit id at *at, or now when at is nil.
// The checkout token must be the one Register returned for the visit.
//
// Errors: EUNAUTHORIZED for a wrong token or an unknown or malformed id (one
// answer for both: no oracle for visit ids), EINVALID (field "check_out")
// when at lies more than registry.MaxCheckInSkew in the future or before the
// check-in, ECONFLICT when the visit is already checked out, ENOTFOUND when
// the visit the token belongs to no longer exists (purged).
func (s *Service) CheckOut(ctx context.Context, id, checkoutToken string, at *time.Time) error {
	if !s.validTicket(Ticket{id, checkoutToken}) {
		return errBadTicket
	}
	now := s.now()
	t := now
	if at != nil {
		t = *at
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.After(now.Add(registry.MaxCheckInSkew)) {
		return registry.FieldError("check_out", "check_out lies in the future.")
	}
	d := &registry.Departure{ID: id, At: t, Reason: registry.CheckoutVisitor}
	if err := s.Store.CheckOutVisits(ctx, registry.ActorVisitor, []*registry.Departure{d}); err != nil {
		return err
	}
	return d.Err
}

// CheckOutTickets checks the visits of the tickets out now, as their
// visitor (a household on one phone), in one transaction. It returns one
// error per ticket (nil when it was checked out; see CheckOut), or an
// error for all.
func (s *Service) CheckOutTickets(ctx context.Context, tickets []Ticket) ([]error, error) {
	errs := make([]error, len(tickets))
	var deps []*registry.Departure
	var index []int
	now := s.now()
	for i, t := range tickets {
		if !s.validTicket(t) {
			errs[i] = errBadTicket
			continue
		}
		deps = append(deps, &registry.Departure{ID: t.ID, At: now, Reason: registry.CheckoutVisitor})
		index = append(index, i)
	}
	if len(deps) > 0 {
		if err := s.Store.CheckOutVisits(ctx, registry.ActorVisitor, deps); err != nil {
			return nil, err
		}
	}
	for j, d := range deps {
		errs[index[j]] = d.Err
	}
	return errs, nil
}

// CheckOutAtDesk checks visits of site out now on behalf of a desk
// account that works for the site (EFORBIDDEN otherwise), in one
// transaction, and returns one error per id (see registry.Departure; a
// visit of another site is EFORBIDDEN), or an error for all.
func (s *Service) CheckOutAtDesk(ctx context.Context, who registry.Registrant, site string, ids []string) ([]error, error) {
	rr, err := who.Registrar()
	if err != nil {
		return nil, err
	}
	if !rr.MaySite(site) {
		return nil, registry.Errorf(registry.EFORBIDDEN, "You may not check out visitors of this site.")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	deps := make([]*registry.Departure, len(ids))
	for i, id := range ids {
		deps[i] = &registry.Departure{ID: id, At: now, Reason: registry.CheckoutDesk, Site: site}
	}
	if err := s.Store.CheckOutVisits(ctx, rr.Actor, deps); err != nil {
		return nil, err
	}
	errs := make([]error, len(deps))
	for i, d := range deps {
		errs[i] = d.Err
	}
	return errs, nil
}

// validTicket reports whether the ticket's token belongs to its id.
func (s *Service) validTicket(t Ticket) bool {
	return registry.ValidID(t.ID) && s.Secret.VerifyCheckoutToken(t.ID, t.Token)
}

var errBadTicket = registry.Errorf(registry.EUNAUTHORIZED, "The checkout token is not valid for this visit.")

// TicketVisit returns the visit of a ticket, without Sealed: EUNAUTHORIZED
// for a ticket whose token does not belong to its id, ENOTFOUND for a
// visit no longer stored.
func (s *Service) TicketVisit(ctx context.Context, t Ticket) (*registry.Visit, error) {
	if !s.validTicket(t) {
		return nil, errBadTicket
	}
	v, err := s.Store.FindVisit(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	v.Sealed = nil
	return v, nil
}
