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

// fieldSpec describes one input of a registration form.
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
// "c<row>_<name>" with rows from 1.
var companionSpecs = []fieldSpec{
	{"given_name", "off", "text", false},
	{"family_name", "off", "text", false},
}

func companionInput(row int, name string) string { return "c" + strconv.Itoa(row) + "_" + name }

// checkinFields and checkoutFields are the fields each public form may
// post; checkoutMulti those that may repeat.
var (
	checkinFields  = formFieldSet([]fieldSpec{{name: "appointment"}}, maxFormCompanions, "nonce", "lang")
	checkoutFields = map[string]bool{"t": true, "lang": true}
	checkoutMulti  = map[string]bool{"t": true}
)

// formFieldSet is the set of a registration form's fields: mainSpecs,
// extra specs, rows companion rows and the named others.
func formFieldSet(extra []fieldSpec, rows int, others ...string) map[string]bool {
	m := map[string]bool{}
	for _, f := range append(append([]fieldSpec(nil), mainSpecs...), extra...) {
		m[f.name] = true
	}
	for row := 1; row <= rows; row++ {
		for _, f := range companionSpecs {
			m[companionInput(row, f.name)] = true
		}
	}
	for _, o := range others {
		m[o] = true
	}
	return m
}

// form is a posted form: each field's values.
type form url.Values

// get returns the field's (first) value.
func (f form) get(name string) string {
	if vs := f[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// singles returns every field's first value.
func (f form) singles() map[string]string {
	m := make(map[string]string, len(f))
	for k, vs := range f {
		m[k] = vs[0]
	}
	return m
}

// maxMulti bounds the values of a repeatable field.
const maxMulti = 200

// readForm reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes. It refuses other media types (415), larger bodies (413),
// and (400) malformed encoding, fields not in allowed, a field given more
// than once unless it is in multi, and invalid UTF-8.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, allowed, multi map[string]bool) (form, error) {
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
	for k, vs := range q {
		if !allowed[k] || len(vs) != 1 && !multi[k] || len(vs) > maxMulti {
			return nil, errFormMalformed
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, errFormMalformed
			}
		}
	}
	return form(q), nil
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

// checkinForm is a posted registration form as a registration.
type checkinForm struct {
	reg        *registry.Registration
	companions []intake.Companion
	rows       []int // the form row (1-based) of each companion
}

// newCheckinForm maps the posted values to a registration for site and
// one companion per row (of rows) with a name; empty rows are skipped.
// Companions share the registrant's address and phone (see
// intake.Companion).
func newCheckinForm(site string, vals map[string]string, rows int) *checkinForm {
	f := &checkinForm{reg: &registry.Registration{
		Site: site, Area: vals["area"], Host: vals["host"], Appointment: vals["appointment"], WalkIn: vals["walk_in"],
		GivenName: vals["given_name"], FamilyName: vals["family_name"],
		Street: vals["street"], HouseNumber: vals["house_number"],
		Postcode: vals["postcode"], City: vals["city"],
		Phone: vals["phone"], Email: vals["email"],
	}}
	for row := 1; row <= rows; row++ {
		given, family := vals[companionInput(row, "given_name")], vals[companionInput(row, "family_name")]
		if strings.TrimSpace(given) == "" && strings.TrimSpace(family) == "" {
			continue
		}
		f.companions = append(f.companions, intake.Companion{GivenName: given, FamilyName: family})
		f.rows = append(f.rows, row)
	}
	return f
}

// formFields returns the form inputs the error fields of RegisterGroup
// ("phone", "companions/1/given_name") name, each once.
func (f *checkinForm) formFields(issues []registry.FieldIssue) map[string]bool {
	bad := map[string]bool{}
	for _, is := range issues {
		bad[f.formField(is.Field)] = true
	}
	return bad
}

// formField returns the form input that an error field names.
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

// formPage is the public form for site with the values vals; bad names
// the inputs at fault.
func (s *Server) formPage(r *http.Request, site *registry.Site, lang, nonce string, vals map[string]string, bad map[string]bool) *pageData {
	d := s.visitorPage(r, site, lang, "title_form")
	d.Nonce = nonce
	d.Notice = s.fullNotice(r.Context(), site, d.T)
	d.fillRegistration(site, publicSpecs(site), maxFormCompanions, vals, bad)
	for i := range d.Fields {
		if d.Fields[i].Name == "appointment" && d.Fields[i].Required {
			d.Fields[i].Label += " *" // as the other required inputs' labels
			d.Fields[i].Hint = d.T["appointment_hint"]
			d.Scripts = []string{"checkin.js"} // checks the code when the visitor leaves the input
		}
	}
	return d
}

// publicSpecs are the public form's inputs: at a site by appointment only
// the appointment's code first, required, so that a visitor without one
// learns it before typing an address.
func publicSpecs(site *registry.Site) []fieldSpec {
	if !site.RequiresAppointment {
		return mainSpecs
	}
	return append([]fieldSpec{{"appointment", "off", "text", true}}, mainSpecs...)
}

// fillRegistration fills the inputs of a registration form (specs, rows
// companion rows) with vals, marks the inputs bad names, lists them in
// the error summary in form order and focuses the first.
func (d *pageData) fillRegistration(site *registry.Site, specs []fieldSpec, rows int, vals map[string]string, bad map[string]bool) {
	for _, f := range specs {
		if f.name == "walk_in" && !site.RequiresAppointment {
			continue
		}
		in := d.input(f, f.name, "", vals, bad)
		switch {
		case f.name == "area" && len(site.Areas) > 0:
			in.Label, in.Options = d.T["label_area_select"], areaOptions(site, vals["area"], d.T["area_none"])
		case f.name == "walk_in":
			in.Options = walkInOptions(vals["walk_in"], d.T["walk_in_none"], d.Lang)
		}
		d.Fields = append(d.Fields, in)
	}
	for row := 1; row <= rows; row++ {
		var inputs []inputField
		for _, f := range companionSpecs {
			inputs = append(inputs, d.input(f, companionInput(row, f.name), "c_", vals, bad))
		}
		d.Companions = append(d.Companions, inputs)
	}
	d.summarize(bad)
}

// walkInOptions are the choices of the walk-in reason (German labels; the
// codes in English for the English page).
func walkInOptions(selected, none, lang string) []option {
	opts := []option{{Value: "", Label: none, Selected: selected == ""}}
	for _, r := range registry.WalkInReasons {
		label := r.Label
		if lang == "en" {
			label = r.Code
		}
		opts = append(opts, option{Value: r.Code, Label: label, Selected: selected == r.Code})
	}
	return opts
}

// summarize lists the bad inputs of the form in form order in the error
// summary, with errors that name no input ("site", "companions") first,
// and focuses the first bad input.
func (d *pageData) summarize(bad map[string]bool) {
	if len(bad) == 0 {
		return
	}
	inputs := map[string]bool{}
	var all []*inputField
	for i := range d.Times {
		all = append(all, &d.Times[i])
	}
	for i := range d.Fields {
		all = append(all, &d.Fields[i])
	}
	for _, row := range d.Companions {
		for i := range row {
			all = append(all, &row[i])
		}
	}
	for _, name := range []string{"site", "companions", "check_in", "check_out"} {
		if bad[name] && !slicesHasInput(all, name) {
			d.Errors = append(d.Errors, fieldError{ID: "errors", Text: d.T["err_"+name]})
		}
	}
	focused := false
	for _, in := range all {
		inputs[in.Name] = true
		if in.Error == "" {
			continue
		}
		d.Errors = append(d.Errors, fieldError{ID: in.ID, Text: strings.TrimSuffix(in.Label, " *") + ": " + in.Error})
		if !focused {
			in.Autofocus, focused = true, true
		}
	}
	if len(d.Errors) == 0 { // a field the form does not show
		d.Errors = append(d.Errors, fieldError{ID: "errors", Text: d.T["msg_form"]})
	}
}

func slicesHasInput(all []*inputField, name string) bool {
	for _, in := range all {
		if in.Name == name {
			return true
		}
	}
	return false
}

// areaOptions are the choices of the area select: none, then the site's
// areas.
func areaOptions(site *registry.Site, selected, none string) []option {
	opts := []option{{Value: "", Label: none, Selected: selected == ""}}
	for _, a := range site.Areas {
		opts = append(opts, option{Value: a.Name, Label: a.Name, Selected: a.Name == selected})
	}
	return opts
}

// input builds the input named name of spec f; textPrefix selects the
// label and error texts ("" for the registrant, "c_" for companions).
func (d *pageData) input(f fieldSpec, name, textPrefix string, vals map[string]string, bad map[string]bool) inputField {
	in := inputField{ID: "f-" + name, Name: name, Label: d.T["label_"+textPrefix+f.name], Value: vals[name],
		Type: f.inputType, Autocomplete: f.autocomplete, Required: f.required, Hint: d.T["hint_"+textPrefix+f.name]}
	if bad[name] {
		in.Error = d.T["err_"+textPrefix+f.name]
	}
	return in
}
