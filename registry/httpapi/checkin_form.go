package httpapi

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
)

var (
	errFormMediaType = &statusError{http.StatusUnsupportedMediaType, "unsupported_media_type",
		"The body must be a form: Content-Type: application/x-www-form-urlencoded."}
	errFormMalformed = &statusError{http.StatusBadRequest, "invalid",
		"The form is malformed, has unknown or repeated fields, or is not valid UTF-8."}
)

// fieldSpec describes one input of the check-in form.
type fieldSpec struct {
	name, autocomplete, inputType string
	required                      bool
}

// mainSpecs are the registrant's inputs, in form order; their names are
// the json names of registry.Registration.
var mainSpecs = []fieldSpec{
	{"given_name", "given-name", "text", true},
	{"family_name", "family-name", "text", true},
	{"street", "address-line1", "text", true},
	{"house_number", "off", "text", true},
	{"postcode", "postal-code", "text", true},
	{"city", "address-level2", "text", true},
	{"phone", "tel", "tel", true},
	{"email", "email", "email", false},
	{"host", "off", "text", false},
	{"area", "off", "text", false},
}

// companionSpecs are the inputs of each companion row, named
// "c<row>_<name>" with row 1 to maxFormCompanions.
var companionSpecs = []fieldSpec{
	{"given_name", "off", "text", false},
	{"family_name", "off", "text", false},
}

func companionInput(row int, name string) string { return "c" + strconv.Itoa(row) + "_" + name }

// checkinFields and checkoutFields are the fields each form may post.
var (
	checkinFields  = formFieldSet()
	checkoutFields = map[string]bool{"visit": true, "token": true, "lang": true}
)

func formFieldSet() map[string]bool {
	m := map[string]bool{"nonce": true, "lang": true}
	for _, f := range mainSpecs {
		m[f.name] = true
	}
	for row := 1; row <= maxFormCompanions; row++ {
		for _, f := range companionSpecs {
			m[companionInput(row, f.name)] = true
		}
	}
	return m
}

// readForm reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes. It refuses other media types (415), larger bodies (413),
// and (400) malformed encoding, fields not in allowed, a field given more
// than once, and invalid UTF-8.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, allowed map[string]bool) (map[string]string, error) {
	if !isForm(r.Header.Get("Content-Type")) {
		return nil, errFormMediaType
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, s.errTooLarge()
	}
	body, err := s.readAll(w, r)
	if err != nil {
		return nil, err
	}
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errFormMalformed
	}
	vals := make(map[string]string, len(q))
	for k, vs := range q {
		if !allowed[k] || len(vs) != 1 || !utf8.ValidString(vs[0]) {
			return nil, errFormMalformed
		}
		vals[k] = vs[0]
	}
	return vals, nil
}

// isForm reports whether a Content-Type is a URL-encoded form, with no
// parameter but charset=utf-8.
func isForm(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// checkinForm is a posted check-in form as a registration.
type checkinForm struct {
	reg        *registry.Registration
	companions []intake.Companion
	rows       []int // the form row (1-based) of each companion
}

// newCheckinForm maps the posted values to a registration for site and
// one companion per row with a name; empty rows are skipped. Companions
// share the registrant's address and phone (see intake.Companion).
func newCheckinForm(site string, vals map[string]string) *checkinForm {
	f := &checkinForm{reg: &registry.Registration{
		Site: site, Area: vals["area"], Host: vals["host"],
		GivenName: vals["given_name"], FamilyName: vals["family_name"],
		Street: vals["street"], HouseNumber: vals["house_number"],
		Postcode: vals["postcode"], City: vals["city"],
		Phone: vals["phone"], Email: vals["email"],
	}}
	for row := 1; row <= maxFormCompanions; row++ {
		given, family := vals[companionInput(row, "given_name")], vals[companionInput(row, "family_name")]
		if strings.TrimSpace(given) == "" && strings.TrimSpace(family) == "" {
			continue
		}
		f.companions = append(f.companions, intake.Companion{GivenName: given, FamilyName: family})
		f.rows = append(f.rows, row)
	}
	return f
}

// formField returns the form input that an error field of RegisterGroup
// ("phone", "companions/1/given_name") names.
func (f *checkinForm) formField(field string) string {
	rest, ok := strings.CutPrefix(field, "companions/")
	if !ok {
		return field
	}
	index, name, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= len(f.rows) {
		return "companions"
	}
	return companionInput(f.rows[i], name)
}

// name is the full name of companion i, or of the registrant for i < 0.
func (f *checkinForm) name(i int) string {
	if i < 0 {
		return strings.TrimSpace(f.reg.GivenName + " " + f.reg.FamilyName)
	}
	c := f.companions[i]
	return strings.TrimSpace(strings.TrimSpace(c.GivenName) + " " + strings.TrimSpace(c.FamilyName))
}
