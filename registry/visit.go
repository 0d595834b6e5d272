package registry

import (
	"log/slog"
	"time"
)

// Visit is one person's stay at a site. Only what scoping and retention need
// is plaintext; everything that identifies the person is in Sealed.
type Visit struct {
	ID           string     // NewVisitID: the check-in second and 92 random bits
	Site         string     // building code, see ValidSite
	Area         string     // room or department, optional
	CheckIn      time.Time  // UTC, microsecond precision
	CheckOut     *time.Time // nil while the visitor is inside
	CheckoutAuto bool       // true when the server checked the visit out (closing time or maximum stay)
	// CheckoutReason says who or what recorded the check-out.
	CheckoutReason CheckoutReason
	// Party is the id of the first visit of the registration the visit
	// belongs to (the registrant's), so that the desk can check out a
	// household together; the registrant's own Party is its ID.
	Party string
	// Appointment is the id of the appointment the visit's party was
	// registered for ("" without one): every visit of the party, and of
	// every party registered with the same code, carries it, so that a
	// trace request by host or code finds them all.
	Appointment string
	Epoch       Day    // DayOf(CheckIn): the day whose key seals the outer layer
	Sealed      []byte // two age layers around the Contact JSON, see package crypto
	CreatedAt   time.Time
	// Note is the sealed note for the health office of the appointment
	// the visit was registered for; only an export's scope reads it (nil
	// otherwise, and for visits without one).
	Note *SealedNote
}

// SealedNote is an appointment's note as stored: two age layers around
// an AppointmentNote, the outer one by the epoch key of Epoch.
type SealedNote struct {
	AppointmentID string
	Code          string
	Epoch         Day
	Sealed        []byte
}

// CheckoutReason says who or what ended a visit.
type CheckoutReason string

// The check-out reasons.
const (
	CheckoutVisitor CheckoutReason = ""         // the visitor, with the checkout token (phone, slip, API)
	CheckoutDesk    CheckoutReason = "desk"     // desk staff, from the list of those present
	CheckoutClosing CheckoutReason = "closing"  // the site closed (automatic)
	CheckoutMaxStay CheckoutReason = "max-stay" // the maximum stay passed (automatic, by the purge)
)

// Auto reports whether the server, not a person, ended the visit.
func (r CheckoutReason) Auto() bool { return r == CheckoutClosing || r == CheckoutMaxStay }

// Departure is one check-out for VisitStore.CheckOutVisits.
type Departure struct {
	ID     string
	At     time.Time
	Reason CheckoutReason
	// Site, when set, must be the visit's site (EFORBIDDEN otherwise): the
	// desk checks out only its own sites' visits.
	Site string
	// Err is set by the store: nil when the check-out was recorded,
	// ENOTFOUND for no such visit, ECONFLICT when it was checked out
	// already, EINVALID (field check_out) for a time before the check-in or
	// more than MaxStayLimit after it, EFORBIDDEN for another site.
	Err error
}

// Registrar is who registers visits: an intake token, a staff member at
// the desk, or a site's public form.
type Registrar struct {
	// Actor is the audit log's name for it.
	Actor Actor
	// Scope separates the idempotency keys of registrars: the same key
	// sent by two registrars names two registrations.
	Scope string
	// Sites are the sites it may register for; nil for any.
	Sites []string
	// MayWalkIn lets it admit a visitor without an appointment at a site
	// that requires one, with a reason (the desk and intake tokens; not
	// the public form).
	MayWalkIn bool
}

// Registrant is anything that may register visits: an intake token, a
// desk account, or a Registrar itself.
type Registrant interface {
	// Registrar returns the registrar, or EUNAUTHORIZED or EFORBIDDEN.
	Registrar() (*Registrar, error)
}

// Registrar makes a Registrar its own Registrant.
func (r *Registrar) Registrar() (*Registrar, error) {
	if r == nil {
		return nil, Errorf(EUNAUTHORIZED, "A registrar is required.")
	}
	return r, nil
}

// MaySite reports whether r may register visits for site.
func (r *Registrar) MaySite(site string) bool {
	if r.Sites == nil {
		return true
	}
	for _, s := range r.Sites {
		if s == site {
			return true
		}
	}
	return false
}

// Party is one registration: a visitor and the companions who came with
// them, each a Visit, stored together or not at all.
type Party struct {
	// Actor registered the party (the token or staff member).
	Actor Actor
	// Visits are the party's visits, the registrant's first.
	Visits []*Visit
	// Key is the party's idempotency record, or nil when the client sent
	// no idempotency key.
	Key *IdempotencyKey
	// Replay is set by VisitStore.CreateParties when Key.Hash was stored
	// before: it is the record stored with the first registration, and
	// Visits were not stored again.
	Replay *IdempotencyKey
	// Appointment, when not "", is the id of the appointment the party
	// came for: the store marks it arrived with the registrant's visit, in
	// the same transaction (and AppointmentChanged "arrived").
	Appointment string
	// WalkIn is the reason (WalkInReasons) the desk admitted the party
	// without an appointment at a site that requires one.
	WalkIn string
}

// IdempotencyKey is what a store keeps of a client's Idempotency-Key: no
// key and no visit id, only values computed with the server secret, which
// the database never holds (see crypto.Secret), so that a reader of the
// database can neither test guessed keys nor guessed request bodies.
type IdempotencyKey struct {
	// Hash identifies the key of one token.
	Hash []byte
	// RequestMAC binds the key to the request body: a key reused for
	// another body has another MAC.
	RequestMAC []byte
	// CheckIn is the check-in of the registration that stored the key;
	// with the key it determines the ids of its visits.
	CheckIn time.Time
	// Visits is the number of visits of that registration.
	Visits int
}

// LogValue logs only non-personal metadata.
func (v *Visit) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", v.ID), slog.String("site", v.Site), slog.String("epoch", string(v.Epoch)))
}

// ContactVersion is the schema version of the sealed Contact JSON.
const ContactVersion = 1

// Contact is what the sealed layer of a visit holds: the visitor's contact
// data and the binding fields that tie the ciphertext to its row. It is
// plaintext only inside `registry decrypt` on the health office's machine
// and, for the length of one request, in the intake handler.
type Contact struct {
	Version     int    `json:"v"`
	GivenName   string `json:"given_name"`
	FamilyName  string `json:"family_name"`
	Street      string `json:"street"`
	HouseNumber string `json:"house_number"`
	Postcode    string `json:"postcode"`
	City        string `json:"city"`
	Phone       string `json:"phone"`
	Email       string `json:"email,omitempty"`
	Host        string `json:"host,omitempty"`
	Appointment string `json:"appointment,omitempty"`
	// WalkIn is the reason the desk admitted the visitor without an
	// appointment at a site by appointment only (a WalkInReasons code).
	WalkIn string `json:"walk_in,omitempty"`

	// Binding fields: a ciphertext copied into another row fails the check
	// in Contact.Bind.
	VisitID string    `json:"visit_id"`
	Site    string    `json:"site"`
	CheckIn time.Time `json:"check_in"`
}

// LogValue never logs contact data.
func (c *Contact) LogValue() slog.Value { return slog.StringValue("[contact redacted]") }

// String never prints contact data, so a stray %v cannot leak it.
func (c *Contact) String() string { return "[contact redacted]" }

// CheckBinding returns EINVALID unless the contact's binding fields match
// the visit it was read from.
func (c *Contact) CheckBinding(visitID, site string, checkIn time.Time) error {
	if c.Version != ContactVersion {
		return Errorf(EINVALID, "sealed contact has unknown version %d", c.Version)
	}
	if c.VisitID != visitID || c.Site != site || !c.CheckIn.Equal(checkIn) {
		return Errorf(EINVALID, "sealed contact of visit %s does not belong to this record", visitID)
	}
	return nil
}
