package intake

import (
	"context"
	"time"

	"github.com/cityhall/registry/registry"
)

// CheckOut records the departure of visit id at *at, or now when at is nil.
// The checkout token must be the one Register returned for the visit.
//
// Errors: EUNAUTHORIZED for a wrong token or an unknown or malformed id (one
// answer for both: no oracle for visit ids), EINVALID (field "check_out")
// when at lies more than registry.MaxCheckInSkew in the future or before the
// check-in, ECONFLICT when the visit is already checked out, ENOTFOUND when
// the visit the token belongs to no longer exists (purged).
func (s *Service) CheckOut(ctx context.Context, id, checkoutToken string, at *time.Time) error {
	if !registry.ValidID(id) || !s.Secret.VerifyCheckoutToken(id, checkoutToken) {
		return registry.Errorf(registry.EUNAUTHORIZED, "The checkout token is not valid for this visit.")
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
	err := s.Store.CheckOutVisit(ctx, id, t)
	if registry.ErrorCode(err) == registry.EINVALID && registry.ErrorField(err) == "" {
		return registry.FieldError("check_out", "%s", registry.ErrorMessage(err))
	}
	return err
}
