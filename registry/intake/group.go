package intake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// MaxCompanions is the most companions one registration may bring: a group
// is at most ten people.
const MaxCompanions = 9

// Companion is a person registering together with the main registrant (a
// family arriving together). Companions share the registrant's site, area,
// host, appointment and check-in. A missing street, house number, postcode,
// city or phone is taken from the registrant (a household shares them); a
// missing email stays empty.
type Companion struct {
	GivenName   string `json:"given_name"`
	FamilyName  string `json:"family_name"`
	Street      string `json:"street,omitempty"`
	HouseNumber string `json:"house_number,omitempty"`
	Postcode    string `json:"postcode,omitempty"`
	City        string `json:"city,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Email       string `json:"email,omitempty"`
}

// String never prints contact data, so a stray %v cannot leak it.
func (c Companion) String() string { return "[companion redacted]" }

// companionField is the field name, as a JSON Pointer into the request body
// without "#/", of a companion's field: "companions/1/phone".
func companionField(i int, field string) string {
	return "companions/" + strconv.Itoa(i) + "/" + field
}

// groupRegistrations normalises reg and returns it followed by one
// registration per companion, each normalised with the same rules. The
// error names every field at fault, a companion's as companionField does.
func groupRegistrations(reg *registry.Registration, companions []Companion, now time.Time) ([]*registry.Registration, error) {
	if len(companions) > MaxCompanions {
		return nil, registry.FieldError("companions", "At most %d companions may register with one visitor.", MaxCompanions)
	}
	errs := []error{reg.Normalize(now)}
	regs := []*registry.Registration{reg}
	for i, c := range companions {
		r := companionRegistration(reg, c)
		errs = append(errs, companionError(i, r.Normalize(now)))
		regs = append(regs, r)
	}
	if err := registry.Invalid(errs...); err != nil {
		return nil, err
	}
	return regs, nil
}

// companionRegistration is the registration of c, with what c leaves out
// taken from the normalised registration reg.
func companionRegistration(reg *registry.Registration, c Companion) *registry.Registration {
	checkIn := *reg.CheckIn
	return &registry.Registration{
		Site: reg.Site, Area: reg.Area, Host: reg.Host, Appointment: reg.Appointment, CheckIn: &checkIn,
		GivenName: c.GivenName, FamilyName: c.FamilyName, Email: c.Email,
		Street:      orShared(c.Street, reg.Street),
		HouseNumber: orShared(c.HouseNumber, reg.HouseNumber),
		Postcode:    orShared(c.Postcode, reg.Postcode),
		City:        orShared(c.City, reg.City),
		Phone:       orShared(c.Phone, reg.Phone),
	}
}

func orShared(own, shared string) string {
	if strings.TrimSpace(own) == "" {
		return shared
	}
	return own
}

// companionError renames the fields of a validation error to the
// companion's fields ("phone" becomes "companions/1/phone"); nil stays nil.
func companionError(i int, err error) error {
	issues := registry.ErrorFields(err)
	if len(issues) == 0 {
		return err
	}
	out := &registry.Error{Code: registry.EINVALID}
	for _, f := range issues {
		out.Fields = append(out.Fields, registry.FieldIssue{
			Field: companionField(i, f.Field), Message: "companions/" + strconv.Itoa(i) + ": " + f.Message,
		})
	}
	out.Field, out.Message = out.Fields[0].Field, out.Fields[0].Message
	return out
}

// companionKey is the idempotency key of companion i of a request with the
// key idemKey. The newline cannot occur in an Idempotency-Key header (1 to
// 255 printable ASCII characters), so it never equals a client's own key.
func companionKey(idemKey string, i int) string {
	return idemKey + "\ncompanion " + strconv.Itoa(i)
}

// keyedVisitID is the id of the main visit of a request with an
// idempotency key: an HMAC under the checkout key of the token id and the
// key, so it is as unguessable as a random id, and a second request with
// the same key can find the first one's visit (see checkGroupKey).
func keyedVisitID(checkoutKey []byte, tokenID, idemKey string) string {
	m := hmac.New(sha256.New, checkoutKey)
	m.Write([]byte("registry visit id\x00" + tokenID + "\x00" + idemKey))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// checkGroupKey refuses, with ECONFLICT, a group whose idempotency key was
// used before for another request body. The stores replay visit by visit;
// without this check a key first used for a smaller group would store the
// extra companions of the second request before the conflict shows.
func (s *Service) checkGroupKey(ctx context.Context, mainID string, mac []byte) error {
	stored, err := s.Store.FindVisit(ctx, mainID)
	switch {
	case registry.ErrorCode(err) == registry.ENOTFOUND:
		return nil
	case err != nil:
		return fmt.Errorf("look up keyed visit: %w", err)
	case !hmac.Equal(stored.RequestMAC, mac):
		return errKeyReused
	}
	return nil
}

var errKeyReused = registry.Errorf(registry.ECONFLICT, "Idempotency-Key was used for a different request.")

// replayed reports whether the group was stored before under its
// idempotency key: ECONFLICT when it was stored for another body, or when
// only some of its visits were (a concurrent request with the same key and
// another group size).
func (s *Service) replayed(stored []*registry.Visit, mac []byte) (bool, error) {
	n, mismatch := 0, false
	for _, v := range stored {
		if v.Replayed {
			n++
			mismatch = mismatch || !hmac.Equal(v.RequestMAC, mac)
		}
	}
	if n != 0 && n != len(stored) {
		s.Logger.Error("a request with a reused idempotency key stored part of a group", "visits", len(stored), "replayed", n)
	}
	if mismatch || n != 0 && n != len(stored) {
		return false, errKeyReused
	}
	return n > 0, nil
}

// keyVisits sets the idempotency hash and request MAC of each visit of a
// group: the main visit's hash covers the key, each companion's the key
// and its index; the MAC over the whole body is stored on each.
func keyVisits(visits []*registry.Visit, tokenID, idemKey string, body []byte) {
	mac := crypto.RequestMAC(idemKey, body)
	for i, v := range visits {
		key := idemKey
		if i > 0 {
			key = companionKey(idemKey, i-1)
		}
		v.IdempotencyHash = crypto.IdempotencyHash(tokenID, key)
		v.RequestMAC = mac
	}
}
