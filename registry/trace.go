package registry

import (
	"slices"
	"strings"
	"time"
)

// TraceStatus is the state of a trace request:
//
//	pending → approved → exported
//	pending → rejected | withdrawn
//	pending | approved → expired
type TraceStatus string

// The trace request states.
const (
	TracePending   TraceStatus = "pending"
	TraceApproved  TraceStatus = "approved"
	TraceRejected  TraceStatus = "rejected"
	TraceExported  TraceStatus = "exported"
	TraceExpired   TraceStatus = "expired"
	TraceWithdrawn TraceStatus = "withdrawn"
)

// TraceRequest is a health office's request for the contact data of everyone
// whose stay overlapped a time window at some sites (and areas).
type TraceRequest struct {
	ID         string    `json:"id"`
	CaseRef    string    `json:"case_ref"`    // the health office's case reference (Aktenzeichen)
	Office     string    `json:"office"`      // requesting health office
	LegalBasis string    `json:"legal_basis"` // for example "§ 25 IfSG i.V.m. § 28a Abs. 4 IfSG"
	Contact    string    `json:"contact"`     // contact person at the office (office staff, not a visitor)
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Sites      []string  `json:"sites"`
	Areas      []string  `json:"areas,omitempty"` // empty: every area of the sites
	// Hosts and Appointments (codes such as T-4711), when either is not
	// empty, limit the scope to the visitors who had an appointment with
	// one of these hosts or with one of these codes (and their
	// companions).
	Hosts        []string `json:"hosts,omitempty"`
	Appointments []string `json:"appointments,omitempty"`
	// Index scopes the request to an index case instead of everyone in
	// the window: the codes the health office gave (a visitor slip's or
	// check-out page's code, or an appointment's code), resolved when the
	// request is filed to the visits they name (IndexVisits). The scope is
	// those visits, their companions, and every visit at the sites that
	// overlapped one of them in the same area (anywhere at the site when
	// WholeSite gives a reason) within Tolerance minutes before or after,
	// for at least MinContact minutes. All of it is part of what the
	// approvers sign.
	Index       []string `json:"index,omitempty"`
	IndexVisits []string `json:"index_visits,omitempty"`
	Tolerance   int      `json:"tolerance_minutes,omitempty"`
	MinContact  int      `json:"min_contact_minutes,omitempty"`
	WholeSite   string   `json:"whole_site_reason,omitempty"`
	// IndexStays are the index visits' stays, read by the export from
	// its snapshot, for each row's role and contact minutes.
	IndexStays []IndexStay `json:"-"`
	Status     TraceStatus `json:"status"`
	OwnerToken string      `json:"owner_token,omitempty"` // id of the health-office token that filed it; "" when the DPO recorded it
	// OwnerOffice is the office of the token that filed it (Token.Office);
	// the request belongs to the office. "" for a letter, or a token
	// without an office.
	OwnerOffice string    `json:"owner_office,omitempty"`
	CreatedBy   Actor     `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`

	DecidedBy    Actor      `json:"decided_by,omitempty"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
	DecisionNote string     `json:"decision_note,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"` // an approval lapses at this time

	ExportedAt   *time.Time `json:"exported_at,omitempty"`
	ExportCount  int        `json:"export_count"`            // records in the export
	ExportDigest string     `json:"export_digest,omitempty"` // hex SHA-256 of the export bundle

	// Nonce is the request's one-time value that every signed decision
	// on it covers (DecisionStatement), so that a signature cannot be
	// replayed onto another request.
	Nonce string `json:"nonce"`
	// Approvals are the signed decisions on the request, withdrawn ones
	// included; FindTraceRequest fills them in, TraceRequests does not.
	Approvals []*Approval `json:"approvals,omitempty"`
}

// TraceFilter selects trace requests for listing. Zero fields match all.
type TraceFilter struct {
	Status      TraceStatus
	OwnerToken  string
	OwnerOffice string
}

// TraceInput is a trace request as a health office files it.
type TraceInput struct {
	CaseRef    string    `json:"case_ref"`
	Office     string    `json:"office"`
	LegalBasis string    `json:"legal_basis"`
	Contact    string    `json:"contact"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Sites      []string  `json:"sites"`
	Areas      []string  `json:"areas,omitempty"`
	Hosts      []string  `json:"hosts,omitempty"`
	// Appointments are appointment codes (T-4711; typed loosely, stored
	// as NormalizeCode returns them).
	Appointments []string `json:"appointments,omitempty"`
	// Index are the index case's codes (see TraceRequest.Index);
	// Tolerance (default DefaultTolerance) and MinContact in minutes;
	// WholeSiteReason widens the contacts to the whole site.
	Index           []string `json:"index,omitempty"`
	Tolerance       *int     `json:"tolerance_minutes,omitempty"`
	MinContact      int      `json:"min_contact_minutes,omitempty"`
	WholeSiteReason string   `json:"whole_site_reason,omitempty"`
}

// IndexStay is an index visit's stay: where and when, and its party.
type IndexStay struct {
	ID, Site, Area, Party string
	CheckIn               time.Time
	CheckOut              *time.Time
}

// WindowScope is r without its index scope: everyone at its sites and
// areas in its window, for comparing the disclosure.
func (r *TraceRequest) WindowScope() *TraceRequest {
	w := *r
	w.Index, w.IndexVisits, w.Tolerance, w.MinContact, w.WholeSite = nil, nil, 0, 0, ""
	return &w
}

// CountScope sums a scope summary's visits.
func CountScope(counts []ScopeCount) int {
	n := 0
	for _, c := range counts {
		n += c.Visits
	}
	return n
}

// DefaultTolerance is the minutes before and after an index stay that
// still count as together (people passing the desk at once).
const DefaultTolerance = 5

// checkIndex normalises an index scope's codes and checks its bounds.
func checkIndex(in *TraceInput) (tolerance int, err error) {
	tolerance = DefaultTolerance
	if in.Tolerance != nil {
		tolerance = *in.Tolerance
	}
	if len(in.Index) == 0 {
		if in.Tolerance != nil || in.MinContact != 0 || in.WholeSiteReason != "" {
			return 0, FieldError("index", "tolerance_minutes, min_contact_minutes and whole_site_reason belong to an index scope: name the index case's codes in index.")
		}
		return 0, nil
	}
	if len(in.Hosts) > 0 || len(in.Appointments) > 0 {
		return 0, FieldError("index", "An index scope names the index case's codes; hosts and appointments belong to a scope by host or code. Use one of them.")
	}
	if len(in.Index) > 20 {
		return 0, FieldError("index", "At most 20 codes of one index case.")
	}
	seen := map[string]bool{}
	for i, c := range in.Index {
		n := NormalizeIndexCode(c)
		if n == "" {
			return 0, FieldError("index", "%q is not a code from a visitor slip (6 letters and digits) or an appointment (T-4711).", c)
		}
		if seen[n] {
			return 0, FieldError("index", "The code %s repeats.", n)
		}
		seen[n], in.Index[i] = true, n
	}
	if tolerance < 0 || tolerance > 60 {
		return 0, FieldError("tolerance_minutes", "The tolerance is 0 to 60 minutes.")
	}
	if in.MinContact < 0 || in.MinContact > 240 {
		return 0, FieldError("min_contact_minutes", "The minimum contact is 0 to 240 minutes.")
	}
	return tolerance, fieldRule{"whole_site_reason", &in.WholeSiteReason, false, 300, nil, ""}.apply()
}

// NormalizeIndexCode returns an index case's code as stored: an
// appointment's code as NormalizeCode returns it, a visit's id (from the
// check-out link a slip's QR code holds) in lower case, a slip's code in
// upper case without spaces and dashes; "" when it is none of them.
func NormalizeIndexCode(s string) string {
	if c := NormalizeCode(s); c != "" {
		return c
	}
	if id := strings.ToLower(strings.TrimSpace(s)); ValidID(id) {
		return id // a visit's id, as the slip's QR code holds it
	}
	c := NormalizeShortCode(s)
	if len(c) != 6 {
		return ""
	}
	for _, r := range c {
		if !strings.ContainsRune(ShortCodeAlphabet, r) {
			return ""
		}
	}
	return c
}

// ShortCodeAlphabet is Crockford base32 (no I, L, O, U), the alphabet
// of the visits' short codes (crypto.Secret.ShortCode).
const ShortCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NormalizeShortCode turns a short code as typed into the form the desk's
// slips print: upper case, without spaces or dashes, with the letters
// Crockford base32 reads as digits (O as 0, I and L as 1).
func NormalizeShortCode(s string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch c {
		case ' ', '-', '\t':
		case 'O':
			b.WriteByte('0')
		case 'I', 'L':
			b.WriteByte('1')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// NewTraceRequest validates in and returns a pending request. The window
// must start after the retention cutoff (now - retention: older records are
// deleted, a request for them cannot be answered and must say so), end after
// it starts and not lie in the future. It returns EINVALID naming the field.
func NewTraceRequest(in *TraceInput, actor Actor, ownerToken string, now time.Time, retention time.Duration) (*TraceRequest, error) {
	texts := []fieldRule{
		{"case_ref", &in.CaseRef, true, 100, nil, ""},
		{"office", &in.Office, true, 200, nil, ""},
		{"legal_basis", &in.LegalBasis, true, 200, nil, ""},
		{"contact", &in.Contact, true, 200, nil, ""},
	}
	for _, f := range texts {
		if err := f.apply(); err != nil {
			return nil, err
		}
	}
	if err := checkWindow(in.From, in.To, now, retention); err != nil {
		return nil, err
	}
	if err := checkPlaces(in.Sites, in.Areas); err != nil {
		return nil, err
	}
	if err := checkHosts(in.Hosts); err != nil {
		return nil, err
	}
	if err := checkCodes(in.Appointments); err != nil {
		return nil, err
	}
	tolerance, err := checkIndex(in)
	if err != nil {
		return nil, err
	}
	return &TraceRequest{
		Index: in.Index, Tolerance: tolerance, MinContact: in.MinContact, WholeSite: in.WholeSiteReason,
		ID: NewID(), CaseRef: in.CaseRef, Office: in.Office, LegalBasis: in.LegalBasis, Contact: in.Contact,
		From: in.From.UTC().Truncate(time.Microsecond), To: in.To.UTC().Truncate(time.Microsecond),
		Sites: in.Sites, Areas: in.Areas, Hosts: in.Hosts, Appointments: in.Appointments, Status: TracePending,
		OwnerToken: ownerToken, CreatedBy: actor, CreatedAt: now.UTC().Truncate(time.Microsecond),
		Nonce: NewNonce(),
	}, nil
}

func checkWindow(from, to, now time.Time, retention time.Duration) error {
	cutoff := now.Add(-retention)
	switch {
	case from.IsZero():
		return FieldError("from", "from is required (RFC 3339, for example 2026-11-20T08:00:00+01:00).")
	case to.IsZero():
		return FieldError("to", "to is required (RFC 3339, for example 2026-11-20T18:00:00+01:00).")
	case !from.Before(to):
		return FieldError("to", "to must lie after from.")
	case from.Before(cutoff):
		return FieldError("from", "the window starts before %s: records older than the retention period of %d days have been deleted and cannot be exported.",
			cutoff.UTC().Format(time.RFC3339), int(retention/(24*time.Hour)))
	case to.After(now.Add(MaxCheckInSkew)):
		return FieldError("to", "the window ends in the future.")
	}
	return nil
}

func checkHosts(hosts []string) error {
	if len(hosts) > 50 {
		return FieldError("hosts", "name at most 50 hosts.")
	}
	for i := range hosts {
		if err := (fieldRule{"hosts", &hosts[i], true, 100, nil, ""}).apply(); err != nil {
			return err
		}
	}
	return nil
}

// checkCodes normalises appointment codes in place (NormalizeCode).
func checkCodes(codes []string) error {
	if len(codes) > 50 {
		return FieldError("appointments", "name at most 50 appointment codes.")
	}
	for i, c := range codes {
		n := NormalizeCode(c)
		if n == "" {
			return FieldError("appointments", "appointments holds a malformed code: expected T- and four digits, for example T-4711.")
		}
		codes[i] = n
	}
	return nil
}

func checkPlaces(sites, areas []string) error {
	if len(sites) == 0 || len(sites) > 50 {
		return FieldError("sites", "name between 1 and 50 sites.")
	}
	for _, s := range sites {
		if !ValidSite(s) {
			return FieldError("sites", "sites holds a malformed site code: expected lowercase letters, digits and '-'.")
		}
	}
	if len(areas) > 50 {
		return FieldError("areas", "name at most 50 areas.")
	}
	for i := range areas {
		if err := (fieldRule{"areas", &areas[i], true, 64, nil, ""}).apply(); err != nil {
			return err
		}
	}
	return nil
}

// Narrowing is a smaller scope for a trace request: a window within its
// window, some of its sites, some of its areas (zero fields keep the
// request's).
type Narrowing struct {
	From, To time.Time
	Sites    []string
	Areas    []string
}

// Narrow applies n to r: only ever a subset of what the office asked for.
// It returns EINVALID naming the field that would widen the scope.
func (r *TraceRequest) Narrow(n Narrowing) error {
	from, to, sites, areas := r.From, r.To, r.Sites, r.Areas
	if !n.From.IsZero() {
		from = n.From.UTC().Truncate(time.Microsecond)
	}
	if !n.To.IsZero() {
		to = n.To.UTC().Truncate(time.Microsecond)
	}
	if n.Sites != nil {
		sites = n.Sites
	}
	if n.Areas != nil {
		areas = n.Areas
	}
	switch {
	case from.Before(r.From):
		return FieldError("from", "from may only move later than the request's %s.", r.From.Format(time.RFC3339))
	case to.After(r.To):
		return FieldError("to", "to may only move earlier than the request's %s.", r.To.Format(time.RFC3339))
	case !from.Before(to):
		return FieldError("to", "to must lie after from.")
	}
	if err := checkPlaces(sites, areas); err != nil {
		return err
	}
	for _, s := range sites {
		if !slices.Contains(r.Sites, s) {
			return FieldError("sites", "site %s is not one the request names.", s)
		}
	}
	for _, a := range areas {
		if len(r.Areas) > 0 && !slices.Contains(r.Areas, a) {
			return FieldError("areas", "area %q is not one the request names.", a)
		}
	}
	if len(r.Areas) > 0 && len(areas) == 0 {
		return FieldError("areas", "the request names areas; keep at least one.")
	}
	r.From, r.To, r.Sites, r.Areas = from, to, sites, areas
	return nil
}

// ScopeCount is the number of visits in a scope at one site and area that
// checked in during one hour.
type ScopeCount struct {
	Site   string    `json:"site"`
	Area   string    `json:"area"`
	Hour   time.Time `json:"hour"`
	Visits int       `json:"visits"`
}
