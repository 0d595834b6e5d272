package registry

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Site is a building whose visitors are registered: configured by IT
// (`registry sites`), shown everywhere by its display name.
type Site struct {
	Code    string `json:"code"`    // as on the poster and in URLs, see ValidSite
	Name    string `json:"name"`    // display name, for example "Rathaus Musterstadt"
	Address string `json:"address"` // postal address, for posters and exports
	// Areas are the rooms or departments visitors can be registered for;
	// none: areas are free text at the desk, and the public form asks for
	// none.
	Areas []Area `json:"areas"`
	// Capacity is the most people the site admits at once; 0 for no limit.
	Capacity int `json:"capacity"`
	// Opens and Closes are the opening hours in German local time,
	// "08:00" and "18:00"; "" for none. Visits still open at closing time
	// are checked out automatically then.
	Opens  string `json:"opens"`
	Closes string `json:"closes"`
	// SelfCheckin lets visitors register on their own phones at
	// /checkin/{code}.
	SelfCheckin bool `json:"self_checkin"`
	// FullNotice shows "please wait at the desk" on the public form while
	// the site is at capacity.
	FullNotice bool `json:"full_notice"`
	// RequiresAppointment admits visitors only with an appointment of the
	// day; a walk-in at the desk needs an override with a reason.
	RequiresAppointment bool `json:"requires_appointment"`
	// Hosts are the staff members or departments appointments are made
	// with; none: any host.
	Hosts []string `json:"hosts,omitempty"`
	// Controller and DPOContact are the privacy notice's controller (the
	// authority, with its address) and its data-protection officer's
	// contact (Art. 13 GDPR), in the words the visitor reads.
	Controller string `json:"controller"`
	DPOContact string `json:"dpo_contact"`
	// LegalBasis is the legal basis the privacy notice names (for example
	// "Art. 6 Abs. 1 lit. c DSGVO i.V.m. § … der Hausordnung"); "": none
	// named. Notices, by language ("de", "tr", …), replace the default
	// privacy notice with the city hall's own words.
	LegalBasis string            `json:"legal_basis,omitempty"`
	Notices    map[string]string `json:"notices,omitempty"`
	CreatedAt  time.Time         `json:"-"`
}

// VisitorLanguages are the languages of the visitors' pages (the
// check-in form and what follows it).
var VisitorLanguages = []string{"de", "en", "tr", "ar", "uk", "ru", "pl"}

// Area is a room or department of a site.
type Area struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity"` // 0: no limit of its own
}

// String names the site by its code.
func (s *Site) String() string { return "site " + s.Code }

// HasArea reports whether the site lists an area of that name.
func (s *Site) HasArea(name string) bool {
	for _, a := range s.Areas {
		if a.Name == name {
			return true
		}
	}
	return false
}

// HasHost reports whether the site lists the host.
func (s *Site) HasHost(name string) bool {
	for _, h := range s.Hosts {
		if h == name {
			return true
		}
	}
	return false
}

// AreaNames lists the names of the site's areas.
func (s *Site) AreaNames() []string {
	names := make([]string, len(s.Areas))
	for i, a := range s.Areas {
		names[i] = a.Name
	}
	return names
}

// Validate cleans the site's texts and checks every field, returning one
// EINVALID *Error naming every field at fault.
func (s *Site) Validate() error {
	var errs []error
	if !ValidSite(s.Code) {
		errs = append(errs, FieldError("code", "code must be lowercase letters, digits and '-', at most 64, as on the poster."))
	}
	for _, f := range []fieldRule{
		{"name", &s.Name, true, 120, nil, ""},
		{"address", &s.Address, false, 200, nil, ""},
		{"controller", &s.Controller, false, 300, nil, ""},
		{"dpo_contact", &s.DPOContact, false, 300, nil, ""},
		{"legal_basis", &s.LegalBasis, false, 300, nil, ""},
	} {
		errs = append(errs, f.apply())
	}
	for lang, text := range s.Notices {
		if !slices.Contains(VisitorLanguages, lang) {
			errs = append(errs, FieldError("notices", "%q is not a language of the visitors' pages (%s).", lang, strings.Join(VisitorLanguages, ", ")))
			continue
		}
		errs = append(errs, fieldRule{"notices", &text, true, 2000, nil, ""}.apply())
		s.Notices[lang] = text
	}
	seen := map[string]bool{}
	for i := range s.Areas {
		a := &s.Areas[i]
		errs = append(errs, fieldRule{"areas", &a.Name, true, 64, nil, ""}.apply())
		switch {
		case seen[a.Name]:
			errs = append(errs, FieldError("areas", "The area %d repeats a name.", i+1))
		case a.Capacity < 0:
			errs = append(errs, FieldError("areas", "An area's capacity cannot be negative."))
		}
		seen[a.Name] = true
	}
	if len(s.Areas) > 100 {
		errs = append(errs, FieldError("areas", "A site has at most 100 areas."))
	}
	hosts := map[string]bool{}
	for i := range s.Hosts {
		errs = append(errs, fieldRule{"hosts", &s.Hosts[i], true, 100, nil, ""}.apply())
		if hosts[s.Hosts[i]] {
			errs = append(errs, FieldError("hosts", "The host %d repeats a name.", i+1))
		}
		hosts[s.Hosts[i]] = true
	}
	if len(s.Hosts) > 500 {
		errs = append(errs, FieldError("hosts", "A site has at most 500 hosts."))
	}
	if s.Capacity < 0 {
		errs = append(errs, FieldError("capacity", "The capacity cannot be negative."))
	}
	for _, f := range []struct{ name, v string }{{"opens", s.Opens}, {"closes", s.Closes}} {
		if _, err := ParseClock(f.v); f.v != "" && err != nil {
			errs = append(errs, FieldError(f.name, "%s must be a time of day like 18:00.", f.name))
		}
	}
	if o, c := s.Opens, s.Closes; o != "" && c != "" && o >= c {
		errs = append(errs, FieldError("closes", "The site must close after it opens."))
	}
	return Invalid(errs...)
}

// ParseClock parses a time of day "HH:MM" into minutes after midnight.
func ParseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time of day like 18:00", s)
	}
	return hh*60 + mm, nil
}

// ClosingOn returns the site's closing time on the local day (LocalZone)
// of t, and false when the site has no closing time.
func (s *Site) ClosingOn(t time.Time) (time.Time, bool) {
	min, err := ParseClock(s.Closes)
	if s.Closes == "" || err != nil {
		return time.Time{}, false
	}
	l := t.In(LocalZone)
	return time.Date(l.Year(), l.Month(), l.Day(), min/60, min%60, 0, 0, LocalZone), true
}

// LocalMidnight returns the start of the local day (LocalZone) of t.
func LocalMidnight(t time.Time) time.Time {
	l := t.In(LocalZone)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, LocalZone)
}

// SiteStore keeps the sites. Changes are audited (AuditSiteChanged).
type SiteStore interface {
	// PutSite stores a new site (create) or replaces one (not create).
	// ECONFLICT when creating an existing code, ENOTFOUND when replacing a
	// missing one.
	PutSite(ctx context.Context, actor Actor, s *Site, create bool) error
	// Site returns a site, or ENOTFOUND.
	Site(ctx context.Context, code string) (*Site, error)
	// Sites lists every site by code.
	Sites(ctx context.Context) ([]*Site, error)
	// RemoveSite removes a site; its visits stay until retention removes
	// them. ENOTFOUND for an unknown code.
	RemoveSite(ctx context.Context, actor Actor, code string) error
}

// Occupancy is the number of open visits of one site and area, from the
// plaintext times alone.
type Occupancy struct {
	Site string
	Area string
	Open int
}

// SiteNames maps the sites' codes to their display names.
func SiteNames(sites []*Site) map[string]string {
	names := make(map[string]string, len(sites))
	for _, s := range sites {
		names[s.Code] = s.Name
	}
	return names
}
