package httpapi

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// The HTML pages: the visitors' check-in form, status and check-out pages
// under /checkin/{site}, and the reception desk's pages under /desk. They
// are German first and English second (?lang=en, or Accept-Language),
// work without scripts (two small same-origin scripts add a print button
// and read the check-out link's fragment), are usable by keyboard alone,
// and never put personal data or tokens into a URL.

//go:embed templates static locales
var assets embed.FS

// pageCSP allows the pages nothing but their own stylesheet and scripts,
// fetching from and posting forms to this server (the host's page
// updates itself): no inline script or style, no images from anywhere
// (QR codes are inline SVG), no framing.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageNames are the templates, each the layout with its own content.
var pageNames = []string{
	"form", "status", "out", "message",
	"desk_login", "desk_password", "desk_register", "desk_slips", "desk_present", "desk_close", "desk_sites", "desk_day", "desk_host", "desk_book",
	"dpo_home", "dpo_request", "home",
}

// pages are the parsed page templates by name.
type pages map[string]*template.Template

func parsePages() (pages, error) {
	ps := pages{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Option("missingkey=error").
			ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page template %s: %w", name, err)
		}
		ps[name] = t
	}
	return ps, nil
}

// pageData is what every page template receives; each page uses its part.
type pageData struct {
	Lang, Title string
	T           map[string]string // the texts of Lang
	Page        string            // the page's name, for the desk's navigation
	Site        *registry.Site    // the page's site, or nil
	LangLink    string            // this page in the other language
	Scripts     []string          // same-origin scripts under /static
	Privacy     string
	Notice      string // a notice above the form (site full)
	Message     string
	Alert       bool // Message is an error
	Link        *pageLink

	// forms
	Nonce      string
	Fields     []inputField
	Times      []inputField // the paper form's date and times
	Companions [][]inputField
	MoreRows   bool
	Errors     []fieldError // the summary above a form with fields at fault

	// the visitor's status
	Tickets []ticketView
	OutLink string

	// the desk
	Desk         bool
	User         *registry.User
	OtherSites   []*registry.Site
	Paper        bool
	Slips        []slip
	Present      []presentRow
	Occupancy    []occupancyRow
	Appointments []dayRow
	Day          *dayNav // the day a day list shows
	Refresh      int     // seconds after which the page reloads itself without scripts; 0: never
	// LiveSeconds is how often live.js updates the page's #live part.
	LiveSeconds int
	// Updated says when the page's data was read ("Stand 10:31:05 Uhr").
	Updated string
	Count   int
	Login   string

	// Overlap asks the scheduler to confirm a double booking.
	Overlap bool

	// Dir is the writing direction of Lang ("rtl" for Arabic); Langs the
	// visitors' language picker.
	Dir   string
	Langs []langChoice

	// Flash is a confirmation above the page's content (after a
	// redirect: the password changed).
	Flash string

	// the DPO's pages
	DPO *dpoPage
}

type pageLink struct{ Href, Text string }

// inputField is one input of a form as the template shows it.
type inputField struct {
	ID, Name, Label, Value, Error, Type, Autocomplete string
	Hint                                              string // shown below the label (texts "hint_…")
	Required, Autofocus                               bool
	Options                                           []option // a select instead of an input
}

type option struct {
	Value, Label string
	Selected     bool
}

// fieldError is one line of the error summary, linking to its input.
type fieldError struct{ ID, Text string }

// newPage returns the page data of lang with the title of titleKey.
func (s *Server) newPage(r *http.Request, site *registry.Site, lang, titleKey string) *pageData {
	t := pageTexts[lang]
	d := &pageData{Lang: lang, T: t, Title: t[titleKey], Site: site, Privacy: s.privacyNotice(site, lang), Dir: "ltr"}
	if other := t["other_lang"]; other != "" { // the staff's pages: German or English
		d.LangLink = langLink(r, other)
	}
	for _, l := range visitorLangs {
		if l.Tag == lang {
			d.Dir = l.Dir
		}
	}
	return d
}

// visitorPage is a page visitors see: newPage with the language picker.
func (s *Server) visitorPage(r *http.Request, site *registry.Site, lang, titleKey string) *pageData {
	d := s.newPage(r, site, lang, titleKey)
	for _, l := range visitorLangs {
		d.Langs = append(d.Langs, langChoice{Tag: l.Tag, Name: l.Name, Href: langLink(r, l.Tag), Current: l.Tag == lang})
	}
	return d
}

// langChoice is a language of the visitors' picker.
type langChoice struct {
	Tag, Name, Href string
	Current         bool
}

// privacyNotice is the privacy notice of a site in lang: the site's own
// wording when the city hall configured one for the language ('registry
// sites set --notice'), else the default, which names the purpose, the
// sealing and the retention period.
func (s *Server) privacyNotice(site *registry.Site, lang string) string {
	if site != nil {
		if n := site.Notices[lang]; n != "" {
			return n
		}
	}
	return plural(lang, "privacy", int(s.cfg.Retention/(24*time.Hour)))
}

// langLink is the page in another language: for a GET its path with lang
// (never another query parameter but new and a day list's date), for an answer to a POST the
// page the form was on.
func langLink(r *http.Request, lang string) string {
	q := url.Values{"lang": {lang}}
	if r.URL.Query().Get("new") == "1" {
		q.Set("new", "1")
	}
	if d := r.URL.Query().Get("date"); d != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if _, ok := parseDate(d); ok {
			q.Set("date", d) // the day list of another day
		}
	}
	p, site := r.URL.Path, r.PathValue("site")
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
	case strings.HasPrefix(p, "/checkin/"):
		p = "/checkin/" + site
	case site != "":
		p = "/desk/" + site + "/"
	default:
		p = "/desk/"
	}
	return p + "?" + q.Encode()
}

// render executes page with d and writes it with status and the pages'
// security headers.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, d *pageData) {
	var buf bytes.Buffer
	pageHeaders(w.Header())
	if err := s.pages[page].Execute(&buf, d); err != nil {
		s.cfg.Logger.Error("render page", "route", routeOf(r), "page", page, "error", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderMessage renders a page with a title and a message (text keys);
// with site set, it links back to the site's form when the site takes
// check-ins.
func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, lang, titleKey, msgKey string, site *registry.Site) {
	d := s.visitorPage(r, site, lang, titleKey)
	d.Message, d.Alert = d.T[msgKey], status >= 400
	if site != nil && site.SelfCheckin {
		d.Link = &pageLink{Href: "/checkin/" + site.Code + "?lang=" + lang, Text: d.T["back_to_form"]}
	}
	s.render(w, r, status, "message", d)
}

// pageHeaders sets the security headers of the pages (Cache-Control and
// X-Content-Type-Options come from securityHeaders).
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

// staticTypes are the files under /static and their media types.
var staticTypes = map[string]string{
	"registry.css": "text/css; charset=utf-8",
	"out.js":       "text/javascript; charset=utf-8",
	"desk.js":      "text/javascript; charset=utf-8",
	"live.js":      "text/javascript; charset=utf-8",
	"checkin.js":   "text/javascript; charset=utf-8",
	"favicon.ico":  "image/x-icon",
}

// handleHome serves GET /: where a newcomer lands, with the visitors'
// check-in of every site that takes it, the desk and the DPO's pages.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	lang := s.visitorLang(w, r)
	d := s.visitorPage(r, nil, lang, "title_home")
	sites, err := s.cfg.Store.Sites(r.Context())
	if err != nil {
		s.renderError(w, r, lang, err, nil, nil)
		return
	}
	for _, site := range sites {
		if site.SelfCheckin {
			d.OtherSites = append(d.OtherSites, site)
		}
	}
	s.render(w, r, http.StatusOK, "home", d)
}

// handleFavicon serves GET /favicon.ico.
func (s *Server) handleFavicon(w http.ResponseWriter, r *http.Request) {
	r.SetPathValue("file", "favicon.ico")
	s.handleStatic(w, r)
}

// handleStatic serves GET /static/{file}: the stylesheet and the scripts
// (no-store like every answer: they are small, and a desk never runs an
// old script after an upgrade).
// Stylesheet is the pages' stylesheet, which the health office's
// workspace shares.
func Stylesheet() []byte {
	b, _ := assets.ReadFile("static/registry.css")
	return b
}

// PageHeaders sets the pages' security headers (CSP, no referrer, no
// framing), which the workspace shares.
func PageHeaders(h http.Header) { pageHeaders(h) }

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := staticTypes[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := assets.ReadFile("static/" + name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", ct)
	w.Write(b)
}
