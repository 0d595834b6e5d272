package export

import (
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
)

// Format is the value of Header.Format for bundles this package writes and
// the only one Read accepts. Version 2 carries the request's signed
// approvals and ends in the instance's signature (version 1 bundles were
// unsigned and are refused).
const Format = "registry-export/2"

// Limits Read enforces on a bundle, so that a hostile file cannot exhaust
// memory.
const (
	MaxLine    = 64 << 10  // bytes per JSON line, newline included
	MaxRecords = 1_000_000 // records per bundle
)

// Keys gives the private epoch key of a day; *crypto.KeyStore satisfies it.
// It returns an ENOTFOUND *registry.Error when the key does not exist
// (never created, or destroyed by a purge).
type Keys interface {
	Identity(day registry.Day) (age.Identity, error)
}

// Header is line 1 of a bundle: which request it answers and its scope.
type Header struct {
	Format     string    `json:"format"`
	RequestID  string    `json:"request_id"`
	CaseRef    string    `json:"case_ref"`
	Office     string    `json:"office"`
	LegalBasis string    `json:"legal_basis"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Sites      []string  `json:"sites"`
	Areas      []string  `json:"areas"`
	Hosts      []string  `json:"hosts,omitempty"`
	// Appointments are the appointment codes the request named.
	Appointments []string `json:"appointments,omitempty"`
	// Index, IndexVisits, Tolerance, MinContact and WholeSite are the
	// request's index scope (absent for a request by window), as its
	// approvals signed it.
	Index       []string  `json:"index,omitempty"`
	IndexVisits []string  `json:"index_visits,omitempty"`
	Tolerance   int       `json:"tolerance_minutes,omitempty"`
	MinContact  int       `json:"min_contact_minutes,omitempty"`
	WholeSite   string    `json:"whole_site_reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Count       int       `json:"count"`
	// Nonce and Origin are the request's, as its approvals signed them.
	Nonce  string `json:"nonce"`
	Origin string `json:"origin"`
	// Approvals are the signed approvals the export consumed.
	Approvals []HeaderApproval `json:"approvals"`
	// Instance is the public key of the registry instance that signed the
	// bundle (its last line).
	Instance string `json:"instance"`
	// SiteNames are the display names of the sites (code → name), and
	// MaxStayMinutes the maximum stay after which an open visit is checked
	// out automatically: for the health office's outputs.
	SiteNames      []SiteLabel `json:"site_names,omitempty"`
	MaxStayMinutes int         `json:"max_stay_minutes,omitempty"`
	// Parts are the bundles of a case's registries (Merge), Duplicates
	// the records of people found in more than one of them; a bundle
	// itself has neither.
	Parts       []PartSummary `json:"parts,omitempty"`
	Duplicates  int           `json:"duplicates,omitempty"`
	Outstanding []string      `json:"outstanding,omitempty"`
}

// SiteLabel is a site's code and display name.
type SiteLabel struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// SiteName returns the display name of a site code, or the code.
func (h *Header) SiteName(code string) string {
	for _, l := range h.SiteNames {
		if l.Code == code && l.Name != "" {
			return l.Name
		}
	}
	return code
}

// HeaderApproval is one signed approval in a bundle. Name is the name
// the bundle gives; after Open it is the name the health office pinned
// for the key.
type HeaderApproval struct {
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key"`
	ExpiresAt time.Time `json:"expires_at"`
	SignedAt  time.Time `json:"signed_at"`
	Signature []byte    `json:"signature"`
}

// trailer is the last line of a bundle: the instance's signature
// (registry.PurposeBundle) over the SHA-256 of every line before it.
type trailer struct {
	Signature []byte `json:"signature"`
}

// request returns the trace request the header answers, as far as the
// approvals' statements cover it.
func (h *Header) request() *registry.TraceRequest {
	r := &registry.TraceRequest{ID: h.RequestID, CaseRef: h.CaseRef, Office: h.Office, LegalBasis: h.LegalBasis,
		From: h.From, To: h.To, Sites: h.Sites, Areas: h.Areas, Hosts: h.Hosts, Appointments: h.Appointments, Nonce: h.Nonce,
		Index: h.Index, IndexVisits: h.IndexVisits, Tolerance: h.Tolerance, MinContact: h.MinContact, WholeSite: h.WholeSite}
	if h.Origin == registry.OriginOffice {
		r.OwnerToken = "office" // Origin() reads it; its value is not signed
	}
	return r
}

// Record is one decrypted visit of a bundle: its plaintext metadata and
// the contact that was sealed to the health office.
type Record struct {
	VisitID        string     `json:"visit_id"`
	Site           string     `json:"site"`
	Area           string     `json:"area"`
	CheckIn        time.Time  `json:"check_in"`
	CheckOut       *time.Time `json:"check_out"`
	CheckoutAuto   bool       `json:"checkout_auto"`
	ContactMinutes int        `json:"contact_minutes"`
	// Role says why the record is in an index scope: RoleIndex,
	// RoleCompanion or RoleContact ("" for a request by window); its
	// ContactMinutes are then the time spent with the index case.
	Role    string            `json:"role,omitempty"`
	Contact *registry.Contact `json:"contact"`
	// Note is the note for the health office of the appointment the
	// visit was registered for, sealed when it was booked ("" for none).
	Note string `json:"note,omitempty"`
	// Registry, SiteLabel and AlsoIn are set by Merge: the registry the
	// record came from, its site's display name, and the other
	// registries of the case that hold the same person.
	Registry  string   `json:"registry,omitempty"`
	SiteLabel string   `json:"site_name,omitempty"`
	AlsoIn    []string `json:"also_in,omitempty"`
}

// Bundle is an opened and verified export bundle.
type Bundle struct {
	Header  Header   `json:"header"`
	Records []Record `json:"records"`
	// Digest is the hex SHA-256 of the sealed file as read. It equals the
	// trace request's ExportDigest when the file is the one the server
	// recorded; `registry decrypt` shows it so the office can compare.
	Digest string `json:"digest"`
}

// wireRecord is a record line inside the sealed bundle.
type wireRecord struct {
	VisitID        string     `json:"visit_id"`
	Site           string     `json:"site"`
	Area           string     `json:"area"`
	CheckIn        time.Time  `json:"check_in"`
	CheckOut       *time.Time `json:"check_out"`
	CheckoutAuto   bool       `json:"checkout_auto"`
	ContactMinutes int        `json:"contact_minutes"`
	Role           string     `json:"role,omitempty"`
	Inner          []byte     `json:"inner"` // base64 (standard) in JSON
	// Appointment carries the note of the visit's appointment, when it
	// has one.
	Appointment *wireNote `json:"appointment,omitempty"`
}

// wireNote is an appointment's note inside a record line: the
// appointment's id and code, and the note's inner ciphertext (sealed to
// the health office, bound to them).
type wireNote struct {
	ID    string `json:"id"`
	Code  string `json:"code"`
	Inner []byte `json:"inner"`
}

// The roles of a record in an index scope.
const (
	RoleIndex     = "index"
	RoleCompanion = "companion"
	RoleContact   = "contact"
)

// RoleText is a role in the health office's words.
func RoleText(role string) string {
	switch role {
	case RoleIndex:
		return "Indexfall"
	case RoleCompanion:
		return "Begleitperson des Indexfalls"
	case RoleContact:
		return "Kontakt"
	}
	return ""
}

// indexRole returns a visit's role in req's index scope and its minutes
// with the index case: for a contact the longest overlap with an index
// stay it shares the area with (the site with WholeSite), for a
// companion the overlap with its own index visit, for the index visit its
// stay in the window.
func indexRole(v *registry.Visit, req *registry.TraceRequest, maxStay time.Duration) (string, int) {
	best := 0
	for _, i := range req.IndexStays {
		end := i.CheckIn.Add(maxStay)
		if i.CheckOut != nil {
			end = *i.CheckOut
		}
		switch {
		case v.ID == i.ID:
			return RoleIndex, ContactMinutes(v.CheckIn, v.CheckOut, maxStay, req.From, req.To)
		case v.Party != "" && v.Party == i.Party:
			return RoleCompanion, ContactMinutes(v.CheckIn, v.CheckOut, maxStay, i.CheckIn, end)
		case v.Site == i.Site && (req.WholeSite != "" || v.Area == i.Area):
			best = max(best, ContactMinutes(v.CheckIn, v.CheckOut, maxStay, i.CheckIn, end))
		}
	}
	return RoleContact, best
}

// ContactMinutes returns the overlap of a stay with the window [from, to) in
// whole minutes, rounded UP: any started minute counts, so a 10-second
// overlap is 1 minute and an exact 45-minute overlap is 45. This is IRIS
// connect's "max. Kontaktdauer", min(end, to) − max(checkIn, from), where a
// visit without check-out is taken to end at checkIn + maxStay (the same
// assumption the export scope makes). Stays that do not overlap the window
// give 0.
func ContactMinutes(checkIn time.Time, checkOut *time.Time, maxStay time.Duration, from, to time.Time) int {
	end := checkIn.Add(maxStay)
	if checkOut != nil {
		end = *checkOut
	}
	start := checkIn
	if from.After(start) {
		start = from
	}
	if to.Before(end) {
		end = to
	}
	d := end.Sub(start)
	if d <= 0 {
		return 0
	}
	return int((d + time.Minute - 1) / time.Minute)
}

// inScope reports whether v belongs to the scope of a request exactly as
// registry.ScopeQuery defines it: check_in < to AND coalesce(check_out,
// check_in + maxStay) > from, and its site (and, when areas are named, its
// area) is one of the request's. A visit checked out at its check-in time is
// in scope with 0 contact minutes.
func inScope(v *registry.Visit, sites, areas []string, from, to time.Time, maxStay time.Duration) bool {
	if !contains(sites, v.Site) || len(areas) > 0 && !contains(areas, v.Area) {
		return false
	}
	end := v.CheckIn.Add(maxStay)
	if v.CheckOut != nil {
		end = *v.CheckOut
	}
	return v.CheckIn.Before(to) && end.After(from)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
