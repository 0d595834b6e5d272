package registry

import (
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on intake times. A check-in more than MaxCheckInSkew in the future
// or more than MaxCheckInAge in the past is refused: the first is a wrong
// clock, the second a paper form typed in too late to be of use (and its
// day's epoch key may be gone).
const (
	MaxCheckInSkew = 5 * time.Minute
	MaxCheckInAge  = 7 * 24 * time.Hour
	// MaxStayLimit is the longest any stay can last: no check-out is
	// recorded later than this after its check-in, and the retention
	// policy's maximum stay (the automatic check-out) is at most this. A
	// trace request's scope so never needs visits checked in more than
	// this before its window.
	MaxStayLimit = 72 * time.Hour
)

// Registration is one visitor as the intake API receives it.
type Registration struct {
	Site        string `json:"site"`
	Area        string `json:"area,omitempty"`
	GivenName   string `json:"given_name"`
	FamilyName  string `json:"family_name"`
	Street      string `json:"street"`
	HouseNumber string `json:"house_number"`
	Postcode    string `json:"postcode"`
	City        string `json:"city"`
	Phone       string `json:"phone"`
	Email       string `json:"email,omitempty"`
	Host        string `json:"host,omitempty"`
	// Appointment is the code of the visitor's appointment of the day
	// (T-4711), checked against the site's appointments.
	Appointment string `json:"appointment,omitempty"`
	// WalkIn is the reason (registry.WalkInReasons) the desk admits a
	// visitor without an appointment at a site that requires one.
	WalkIn  string     `json:"walk_in,omitempty"`
	CheckIn *time.Time `json:"check_in,omitempty"`
	// CheckOut is the departure of a visit registered afterwards (a paper
	// form typed in at the desk); nil while the visitor is inside.
	CheckOut *time.Time `json:"check_out,omitempty"`
}

// LogValue never logs contact data.
func (r *Registration) LogValue() slog.Value { return slog.StringValue("[registration redacted]") }

type fieldRule struct {
	name     string
	value    *string
	required bool
	max      int
	check    func(string) bool
	hint     string
}

// Normalize cleans every field by the text rules (CleanText: NFC, trimmed,
// no control, format or other invisible characters), fills in the check-in
// time (now when absent) and validates the result. It returns one EINVALID
// *Error naming every field at fault (Fields; the first also in Field and
// Message); messages never echo the value.
func (r *Registration) Normalize(now time.Time) error {
	rules := []fieldRule{
		{"site", &r.Site, true, 64, ValidSite, "lowercase letters, digits and '-', as printed on the entrance poster"},
		{"area", &r.Area, false, 64, nil, ""},
		{"given_name", &r.GivenName, true, 100, nil, ""},
		{"family_name", &r.FamilyName, true, 100, nil, ""},
		{"street", &r.Street, true, 120, nil, ""},
		{"house_number", &r.HouseNumber, true, 20, nil, ""},
		{"postcode", &r.Postcode, true, 12, validPostcode, "letters, digits, spaces and '-'"},
		{"city", &r.City, true, 100, nil, ""},
		{"phone", &r.Phone, true, 40, ValidPhone, "digits with an optional leading '+', spaces, '/', '-' and parentheses"},
		{"email", &r.Email, false, 254, validEmail, "an address of the form name@example.org"},
		{"host", &r.Host, false, 120, nil, ""},
		{"appointment", &r.Appointment, false, 100, nil, ""},
	}
	errs := make([]error, 0, len(rules)+1)
	for _, f := range rules {
		errs = append(errs, f.apply())
	}
	if r.CheckIn == nil {
		t := now
		r.CheckIn = &t
	}
	t := r.CheckIn.UTC().Truncate(time.Microsecond)
	r.CheckIn = &t
	if t.After(now.Add(MaxCheckInSkew)) {
		errs = append(errs, FieldError("check_in", "check_in lies in the future."))
	}
	if t.Before(now.Add(-MaxCheckInAge)) {
		errs = append(errs, FieldError("check_in", "check_in lies more than %d days in the past.", int(MaxCheckInAge/(24*time.Hour))))
	}
	if r.CheckOut != nil {
		out := r.CheckOut.UTC().Truncate(time.Microsecond)
		r.CheckOut = &out
		switch {
		case out.After(now.Add(MaxCheckInSkew)):
			errs = append(errs, FieldError("check_out", "check_out lies in the future."))
		case !out.After(t):
			errs = append(errs, FieldError("check_out", "check_out must lie after check_in."))
		case out.After(t.Add(MaxStayLimit)):
			errs = append(errs, FieldError("check_out", "check_out lies more than %d hours after check_in; no visit lasts that long.", int(MaxStayLimit.Hours())))
		}
	}
	return Invalid(errs...)
}

func (f fieldRule) apply() error {
	v, err := CleanText(f.name, *f.value)
	if err != nil {
		return err
	}
	*f.value = v
	switch {
	case v == "" && f.required:
		return FieldError(f.name, "%s is required.", f.name)
	case v == "":
		return nil
	case utf8.RuneCountInString(v) > f.max:
		return FieldError(f.name, "%s is longer than %d characters.", f.name, f.max)
	case f.check != nil && !f.check(v):
		return FieldError(f.name, "%s is malformed: expected %s.", f.name, f.hint)
	}
	return nil
}

// Contact returns the sealed part of the registration, bound to the visit.
func (r *Registration) Contact(visitID string) *Contact {
	return &Contact{
		Version: ContactVersion, GivenName: r.GivenName, FamilyName: r.FamilyName,
		Street: r.Street, HouseNumber: r.HouseNumber, Postcode: r.Postcode, City: r.City,
		Phone: r.Phone, Email: r.Email, Host: r.Host, Appointment: r.Appointment, WalkIn: r.WalkIn,
		VisitID: visitID, Site: r.Site, CheckIn: *r.CheckIn,
	}
}

// ValidSite reports whether s is a site code: 1 to 64 lowercase ASCII
// letters, digits and '-', starting with a letter or digit.
func ValidSite(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidPhone reports whether s looks like a phone number: an optional
// leading '+', then digits and the separators " /-()", with 5 to 20 digits.
func ValidPhone(s string) bool {
	digits := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0:
		case strings.ContainsRune(" /-()", c):
		default:
			return false
		}
	}
	return digits >= 5 && digits <= 20
}

func validPostcode(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>,;\"") && strings.Contains(s[at:], ".")
}
