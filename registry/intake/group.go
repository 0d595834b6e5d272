package intake

import (
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// MaxCompanions is the most companions one registration may bring: a group
// is at most ten people.
const MaxCompanions = 9

// Companion is a person registering together with the main registrant (a
// family arriving together). Companions share the registrant's site, area,
// host, appointment, check-in and check-out. A missing street, house number, postcode,
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
		Site: reg.Site, Area: reg.Area, Host: reg.Host, Appointment: reg.Appointment, WalkIn: reg.WalkIn, CheckIn: &checkIn, CheckOut: reg.CheckOut,
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
