package httpapi

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"
)

//go:embed checkin_templates
var checkinFS embed.FS

// checkinCSP allows the pages nothing but their own stylesheet and posting
// forms to this server: no scripts, no images, no framing.
const checkinCSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// checkinPages are the check-in pages by name, each the layout with its
// own content template.
type checkinPages map[string]*template.Template

// parseCheckinPages parses the embedded templates.
func parseCheckinPages() (checkinPages, error) {
	pages := checkinPages{}
	for _, name := range []string{"form", "done", "message"} {
		t, err := template.New("layout.html").Option("missingkey=error").
			ParseFS(checkinFS, "checkin_templates/layout.html", "checkin_templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse check-in template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// pageData is what every check-in page template receives; each page uses
// its part.
type pageData struct {
	Lang, Title, Site string
	T                 map[string]string // the texts of Lang
	Privacy           string

	// form
	Nonce      string
	Fields     []inputField
	Companions [][]inputField
	Error      string // the summary above a form with a field at fault

	// done
	CheckIn string
	People  []person

	// message
	Message  string
	FormLink bool // offer a link back to the form of Site
}

// inputField is one input of the form as the template shows it.
type inputField struct {
	ID, Name, Label, Value, Error, Type, Autocomplete string
	Required                                          bool
}

func (s *Server) newPage(site, lang, titleKey string) *pageData {
	t := texts[lang]
	days := int(s.cfg.Retention / (24 * time.Hour))
	return &pageData{Lang: lang, T: t, Title: t[titleKey], Site: site, Privacy: fmt.Sprintf(t["privacy"], days)}
}

// formPage is the form for site with the values vals; bad names the input
// at fault ("" for none).
func (s *Server) formPage(site, lang, nonce string, vals map[string]string, bad string) *pageData {
	d := s.newPage(site, lang, "title_form")
	d.Nonce = nonce
	for _, f := range mainSpecs {
		d.Fields = append(d.Fields, d.input(f, f.name, "", vals, bad))
	}
	for row := 1; row <= maxFormCompanions; row++ {
		var inputs []inputField
		for _, f := range companionSpecs {
			inputs = append(inputs, d.input(f, companionInput(row, f.name), "c_", vals, bad))
		}
		d.Companions = append(d.Companions, inputs)
	}
	if bad != "" {
		d.Error = d.T["err_summary"]
	}
	return d
}

// input builds the input named name of spec f; textPrefix selects the
// label and error texts ("" for the registrant, "c_" for companions).
func (d *pageData) input(f fieldSpec, name, textPrefix string, vals map[string]string, bad string) inputField {
	in := inputField{ID: "f-" + name, Name: name, Label: d.T["label_"+textPrefix+f.name], Value: vals[name],
		Type: f.inputType, Autocomplete: f.autocomplete, Required: f.required}
	if name == bad {
		in.Error = d.T["err_"+textPrefix+f.name]
	}
	return in
}

// render executes page with d and writes it with status and the pages'
// security headers.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, d *pageData) {
	var buf bytes.Buffer
	pageHeaders(w.Header())
	if err := s.pages[page].Execute(&buf, d); err != nil {
		s.cfg.Logger.Error("render check-in page", "route", routeOf(r), "page", page, "error", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderMessage renders a page with a title and a message (text keys);
// with site set, it links back to site's form.
func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, lang, titleKey, msgKey, site string) {
	d := s.newPage(site, lang, titleKey)
	d.Message = d.T[msgKey]
	d.FormLink = site != "" && s.publicSites[site]
	s.render(w, r, status, "message", d)
}

// pageHeaders sets the security headers of the check-in pages (Cache-Control
// and X-Content-Type-Options come from securityHeaders).
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", checkinCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}
