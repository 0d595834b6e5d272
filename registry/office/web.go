package office

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/registry/httpapi"
)

//go:embed templates
var templates embed.FS

// Identities opens the health office's identity with the passphrase (or
// a hardware token's PIN) the clerk typed.
type Identities func(passphrase []byte) ([]age.Identity, error)

// WebConfig configures the workspace's web interface.
type WebConfig struct {
	Store  *Store
	Syncer *Syncer
	// Identities opens the office's identity for a result.
	Identities Identities
	// SignIn requires clerks to sign in (the workspace listens beyond the
	// local machine); without it Actor names whoever uses it.
	SignIn bool
	Actor  string
	// Hosts are the Host headers the workspace answers (DNS rebinding
	// cannot reach a workspace on 127.0.0.1 through a foreign name).
	Hosts     []string
	Retention time.Duration
	Logger    *slog.Logger
}

// Web is the workspace's web interface.
type Web struct {
	cfg   WebConfig
	pages map[string]*template.Template
}

var webPages = []string{"cases", "case", "new", "registries", "log", "login", "message"}

// NewWeb parses the templates.
func NewWeb(cfg WebConfig) (*Web, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Web{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range webPages {
		t, err := template.New("layout.html").Option("missingkey=error").ParseFS(templates, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		w.pages[name] = t
	}
	return w, nil
}

// Handler returns the interface's routes.
func (w *Web) Handler() http.Handler {
	mux := http.NewServeMux()
	page := func(pattern string, h func(http.ResponseWriter, *http.Request, *page)) {
		mux.Handle(pattern, w.signedIn(h))
	}
	page("GET /{$}", w.handleCases)
	page("GET /cases/new", w.handleNewCase)
	page("POST /cases", w.handleCreateCase)
	page("GET /cases/{id}", w.handleCase)
	page("POST /cases/{id}/sync", w.handleSync)
	page("POST /cases/{id}/withdraw", w.handleWithdraw)
	page("POST /cases/{id}/refile", w.handleRefile)
	page("POST /cases/{id}/result", w.handleResult)
	page("POST /cases/{id}/delete", w.handleDelete)
	page("GET /registries", w.handleRegistries)
	page("POST /registries", w.handleAddRegistry)
	page("POST /registries/{id}/confirm", w.handleConfirm)
	page("POST /registries/{id}/refresh", w.handleRefresh)
	page("POST /registries/{id}/trust", w.handleReplaceTrust)
	page("POST /registries/{id}/token", w.handleToken)
	page("GET /log", w.handleLog)
	mux.HandleFunc("GET /login", w.handleLoginPage)
	mux.HandleFunc("POST /login", w.handleLogin)
	mux.HandleFunc("POST /logout", w.handleLogout)
	mux.HandleFunc("GET /static/registry.css", func(rw http.ResponseWriter, r *http.Request) {
		httpapi.PageHeaders(rw.Header())
		rw.Header().Set("Content-Type", "text/css; charset=utf-8")
		rw.Write(httpapi.Stylesheet())
	})
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "ok\n") })
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.message(rw, r, http.StatusForbidden, "title_error", "This form came from another site and was refused.")
	}))
	return w.checkHost(cop.Handler(mux))
}

// checkHost answers only the configured Host names: a page on the web
// that names a foreign host resolving to 127.0.0.1 reaches nothing.
func (w *Web) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if len(w.cfg.Hosts) > 0 && !slices.Contains(w.cfg.Hosts, strings.ToLower(r.Host)) {
			http.Error(rw, "unknown host", http.StatusMisdirectedRequest)
			return
		}
		httpapi.PageHeaders(rw.Header())
		rw.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(rw, r)
	})
}

// page is what every template gets.
type page struct {
	Lang, Title, Nav string
	T                map[string]string
	User             *User
	SignIn           bool
	Message          string
	Alert            bool
	Errors           []fieldError
	Form             map[string]string

	Notices    []noticeView
	Cases      []caseView
	Case       *caseView
	Registries []registryView
	Formats    [][2]string
	Log        []logView
	LogStatus  string
	LogOK      bool

	actor string
}

type fieldError struct{ ID, Text string }

type noticeView struct{ At, Text, CaseID string }

type caseView struct {
	ID, Ref, Window, Created, Answered, LegalBasis, Contact, DeleteOn string
	Requests                                                          []requestView
	Downloaded                                                        int
}

type requestView struct {
	ID, Registry, Places, Status, StatusText, Note, Checked string
	CanWithdraw, CanRefile                                  bool
}

type registryView struct {
	ID, Name, URL, Digest, SitesAt string
	Confirmed                      bool
	Sites                          []siteView
}

type siteView struct {
	Code, Name, Key string
	Areas           []areaView
}

type areaView struct{ Name, Key string }

type logView struct{ Seq, Time, Actor, Action, Subject, Details string }

// language is the page's language: ?lang= (remembered in a cookie), the
// cookie, else German.
func language(rw http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "de" || l == "en" {
		http.SetCookie(rw, &http.Cookie{Name: "rg_office_lang", Value: l, Path: "/", SameSite: http.SameSiteStrictMode, HttpOnly: true})
		return l
	}
	if c, err := r.Cookie("rg_office_lang"); err == nil && (c.Value == "de" || c.Value == "en") {
		return c.Value
	}
	return "de"
}

const sessionCookie = "rg_office"

// signedIn runs h with the page's base, signing in first when required.
func (w *Web) signedIn(h func(http.ResponseWriter, *http.Request, *page)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		lang := language(rw, r)
		p := &page{Lang: lang, T: texts[lang], SignIn: w.cfg.SignIn, actor: w.cfg.Actor}
		if w.cfg.SignIn {
			c, err := r.Cookie(sessionCookie)
			var u *User
			if err == nil {
				if u, err = w.cfg.Store.Session(r.Context(), c.Value); err != nil {
					w.fail(rw, r, p, err)
					return
				}
			}
			if u == nil {
				http.Redirect(rw, r, "/login", http.StatusSeeOther)
				return
			}
			p.User, p.actor = u, u.Login
		}
		if d := r.URL.Query().Get("done"); d != "" {
			if msg, ok := p.T[d]; ok && doneKeys[d] {
				p.Message = msg
			}
		}
		h(rw, r, p)
	})
}

// doneKeys are the texts a redirect after a form may show (?done=).
var doneKeys = map[string]bool{"case_created": true, "synced": true, "withdrawn": true, "refiled": true, "case_deleted": true,
	"registry_added": true, "trust_confirmed": true, "sites_refreshed": true, "trust_replaced": true, "token_replaced": true}

func (w *Web) render(rw http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := w.pages[name].Execute(&buf, p); err != nil {
		w.cfg.Logger.Error("render page", "page", name, "error", err)
		http.Error(rw, "Internal error.", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	rw.Write(buf.Bytes())
}

func (w *Web) message(rw http.ResponseWriter, r *http.Request, status int, title, text string) {
	lang := language(rw, r)
	p := &page{Lang: lang, T: texts[lang], Title: texts[lang][title], Message: text, Alert: status >= 400, SignIn: w.cfg.SignIn}
	w.render(rw, r, status, "message", p)
}

// fail answers an error: a field error re-shows nothing here (forms
// handle their own), others show a message page; internal errors are
// logged and answered in general words.
func (w *Web) fail(rw http.ResponseWriter, r *http.Request, p *page, err error) {
	status := http.StatusInternalServerError
	msg := "Internal error."
	switch registry.ErrorCode(err) {
	case registry.EINVALID:
		status, msg = http.StatusBadRequest, registry.ErrorMessage(err)
	case registry.ENOTFOUND:
		status, msg = http.StatusNotFound, registry.ErrorMessage(err)
	case registry.ECONFLICT:
		status, msg = http.StatusConflict, registry.ErrorMessage(err)
	case registry.EFORBIDDEN:
		status, msg = http.StatusForbidden, registry.ErrorMessage(err)
	default:
		w.cfg.Logger.Error("workspace request failed", "route", r.Pattern, "error", err)
	}
	w.message(rw, r, status, "title_error", msg)
}

func (w *Web) redirect(rw http.ResponseWriter, r *http.Request, path, done string) {
	http.Redirect(rw, r, path+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// readForm parses a form of at most 64 KiB (256 KiB with a file).
func readForm(rw http.ResponseWriter, r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.Body = http.MaxBytesReader(rw, r.Body, 256<<10)
		if err := r.ParseMultipartForm(256 << 10); err != nil {
			return registry.Errorf(registry.EINVALID, "The form could not be read (at most 256 KiB).")
		}
		return nil
	}
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return registry.Errorf(registry.EINVALID, "The form could not be read.")
	}
	return nil
}

func germanTime(t time.Time) string { return t.In(registry.LocalZone).Format("02.01.2006 15:04") }

func (w *Web) statusText(p *page, s Status) string {
	if t, ok := p.T["status_"+string(s)]; ok {
		return t
	}
	return string(s)
}

func (w *Web) caseView(ctx context.Context, p *page, c *Case, regs map[string]*Registry) caseView {
	v := caseView{ID: c.ID, Ref: c.Ref, Window: germanTime(c.From) + " – " + germanTime(c.To), Created: germanTime(c.CreatedAt),
		LegalBasis: c.LegalBasis, Contact: c.Contact}
	if w.cfg.Retention > 0 {
		v.DeleteOn = c.CreatedAt.Add(w.cfg.Retention).In(registry.LocalZone).Format("02.01.2006")
	}
	answered := 0
	for _, r := range c.Requests {
		name := r.RegistryID
		if reg := regs[r.RegistryID]; reg != nil {
			name = reg.Name
		}
		places := p.T["all_sites"]
		if len(r.Sites) > 0 {
			places = strings.Join(r.Sites, ", ")
		}
		if len(r.Areas) > 0 {
			places += " · " + strings.Join(r.Areas, ", ")
		} else {
			places += " · " + p.T["all_areas"]
		}
		if len(r.Hosts) > 0 {
			places += " · " + strings.Join(r.Hosts, ", ")
		}
		if len(r.Index) > 0 {
			places += " · " + p.T["index_case"] + " " + strings.Join(r.Index, ", ")
		}
		if len(r.Appointments) > 0 {
			places += " · " + strings.Join(r.Appointments, ", ")
		}
		rv := requestView{ID: r.ID, Registry: name, Places: places, Status: string(r.Status), StatusText: w.statusText(p, r.Status), Note: r.Note,
			CanWithdraw: r.Status == StatusPending || r.Status == StatusApproved || r.Status == StatusFiling,
			CanRefile:   r.Status == StatusLost || r.Status == StatusRefused || r.Status == StatusExpired || r.Status == StatusRejected}
		if r.CheckedAt != nil {
			rv.Checked = germanTime(*r.CheckedAt)
		}
		if r.Status.Final() {
			answered++
		}
		if r.Status == StatusDownloaded {
			v.Downloaded++
		}
		v.Requests = append(v.Requests, rv)
	}
	v.Answered = fmt.Sprintf(p.T["answered"], answered, len(c.Requests))
	return v
}

func (w *Web) registryMap(ctx context.Context) (map[string]*Registry, []*Registry, error) {
	list, err := w.cfg.Store.Registries(ctx)
	if err != nil {
		return nil, nil, err
	}
	m := map[string]*Registry{}
	for _, r := range list {
		m[r.ID] = r
	}
	return m, list, nil
}

func (w *Web) handleCases(rw http.ResponseWriter, r *http.Request, p *page) {
	ctx := r.Context()
	regs, _, err := w.registryMap(ctx)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	cases, err := w.cfg.Store.Cases(ctx)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	for _, c := range cases {
		p.Cases = append(p.Cases, w.caseView(ctx, p, c, regs))
	}
	notices, err := w.cfg.Store.Notices(ctx, 10)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	for _, n := range notices {
		p.Notices = append(p.Notices, noticeView{At: germanTime(n.At), Text: n.Text, CaseID: n.CaseID})
	}
	p.Title, p.Nav = p.T["title_cases"], "cases"
	w.render(rw, r, http.StatusOK, "cases", p)
}

func (w *Web) handleCase(rw http.ResponseWriter, r *http.Request, p *page) {
	ctx := r.Context()
	c, err := w.cfg.Store.Case(ctx, r.PathValue("id"))
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	regs, _, err := w.registryMap(ctx)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	v := w.caseView(ctx, p, c, regs)
	p.Case, p.Title, p.Nav = &v, fmt.Sprintf(p.T["title_case"], c.Ref), "cases"
	for _, f := range export.Formats {
		p.Formats = append(p.Formats, [2]string{f, p.T["fmt_"+f]})
	}
	w.render(rw, r, http.StatusOK, "case", p)
}

func (w *Web) handleNewCase(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := w.newCasePage(r.Context(), p); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.render(rw, r, http.StatusOK, "new", p)
}

func (w *Web) newCasePage(ctx context.Context, p *page) error {
	_, list, err := w.registryMap(ctx)
	if err != nil {
		return err
	}
	p.Title, p.Nav = p.T["title_new"], "new"
	if p.Form == nil {
		p.Form = map[string]string{}
	}
	for i, reg := range list {
		rv := registryView{ID: reg.ID, Name: reg.Name, Confirmed: reg.Confirmed()}
		for j, s := range reg.Sites {
			sv := siteView{Code: s.Code, Name: s.Name, Key: fmt.Sprintf("r%d-s%d", i, j)}
			for k, a := range s.Areas {
				sv.Areas = append(sv.Areas, areaView{Name: a, Key: fmt.Sprintf("r%d-s%d-a%d", i, j, k)})
			}
			rv.Sites = append(rv.Sites, sv)
		}
		p.Registries = append(p.Registries, rv)
	}
	return nil
}

// localTime parses a datetime-local value in German time.
func localTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, registry.LocalZone); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// IndexCodes reads the index case's codes as typed or scanned: codes
// separated by commas or spaces, and check-out links from a visitor
// slip's QR code (…/out#ID.TOKEN~ID.TOKEN), of which only the visits' ids
// are kept: the tokens, which would check a visitor out, are dropped
// here and never stored or sent.
func IndexCodes(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if _, frag, ok := strings.Cut(f, "/out#"); ok {
			for _, ticket := range strings.Split(frag, "~") {
				if id, _, _ := strings.Cut(ticket, "."); registry.ValidID(id) {
					out = append(out, id)
				}
			}
			continue
		}
		out = append(out, f)
	}
	return out
}

// scopes turns the new-case form into requests: per chosen registry, the
// chosen sites (a site is chosen by its box or one of its areas') grouped
// by their chosen areas (a request's areas apply to all its sites), or
// every site.
func scopes(form url.Values, regs []*Registry) []Scope {
	var out []Scope
	for i, reg := range regs {
		if form.Get(fmt.Sprintf("r%d", i)) != "on" {
			continue
		}
		hosts, codes := splitList(form.Get(fmt.Sprintf("r%d-hosts", i))), splitList(form.Get(fmt.Sprintf("r%d-codes", i)))
		index := IndexCodes(form.Get(fmt.Sprintf("r%d-index", i)))
		groups := map[string]*Scope{}
		var order []string
		for j, s := range reg.Sites {
			// A site is chosen by its box or by one of its areas'.
			var areas []string
			for k, a := range s.Areas {
				if form.Get(fmt.Sprintf("r%d-s%d-a%d", i, j, k)) == "on" {
					areas = append(areas, a)
				}
			}
			if form.Get(fmt.Sprintf("r%d-s%d", i, j)) != "on" && len(areas) == 0 {
				continue
			}
			key := strings.Join(areas, "\x00")
			if groups[key] == nil {
				groups[key] = &Scope{RegistryID: reg.ID, Areas: areas, Hosts: hosts, Appointments: codes, Index: index}
				order = append(order, key)
			}
			groups[key].Sites = append(groups[key].Sites, s.Code)
		}
		if len(order) == 0 {
			out = append(out, Scope{RegistryID: reg.ID, Hosts: hosts, Appointments: codes, Index: index})
			continue
		}
		for _, k := range order {
			out = append(out, *groups[k])
		}
	}
	return out
}

func (w *Web) handleCreateCase(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	ctx := r.Context()
	_, regs, err := w.registryMap(ctx)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	in := &CaseInput{Ref: r.PostForm.Get("ref"), LegalBasis: r.PostForm.Get("legal_basis"), Contact: r.PostForm.Get("contact"), Scopes: scopes(r.PostForm, regs)}
	var errs []error
	var ok bool
	if in.From, ok = localTime(r.PostForm.Get("from")); !ok {
		errs = append(errs, registry.FieldError("from", "Give the start as date and time."))
	}
	if in.To, ok = localTime(r.PostForm.Get("to")); !ok {
		errs = append(errs, registry.FieldError("to", "Give the end as date and time."))
	}
	var c *Case
	if err = registry.Invalid(errs...); err == nil {
		c, err = w.cfg.Store.CreateCase(ctx, p.actor, in)
	}
	if registry.ErrorCode(err) == registry.EINVALID {
		p.Form = map[string]string{}
		for k := range r.PostForm {
			p.Form[k] = r.PostForm.Get(k)
		}
		for _, f := range registry.ErrorFields(err) {
			p.Errors = append(p.Errors, fieldError{ID: "f-" + strings.ReplaceAll(f.Field, "_", "-"), Text: f.Message})
		}
		if len(p.Errors) == 0 {
			p.Errors = append(p.Errors, fieldError{ID: "f-ref", Text: registry.ErrorMessage(err)})
		}
		if err := w.newCasePage(ctx, p); err != nil {
			w.fail(rw, r, p, err)
			return
		}
		w.render(rw, r, http.StatusBadRequest, "new", p)
		return
	} else if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	if w.cfg.Syncer != nil {
		go w.cfg.Syncer.Sync(context.WithoutCancel(ctx)) // file at once; the page follows
	}
	w.redirect(rw, r, "/cases/"+c.ID, "case_created")
}

func (w *Web) handleSync(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	id := r.PathValue("id")
	if w.cfg.Syncer != nil {
		if err := w.cfg.Syncer.SyncCase(r.Context(), id); err != nil {
			w.fail(rw, r, p, err)
			return
		}
	}
	w.redirect(rw, r, "/cases/"+id, "synced")
}

// caseRequest returns the request of the form's "request" field in the
// case of the path.
func (w *Web) caseRequest(r *http.Request) (*Case, *Request, error) {
	c, err := w.cfg.Store.Case(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, nil, err
	}
	for _, q := range c.Requests {
		if q.ID == r.PostForm.Get("request") {
			return c, q, nil
		}
	}
	return nil, nil, registry.Errorf(registry.ENOTFOUND, "The case has no such request.")
}

func (w *Web) handleWithdraw(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	c, q, err := w.caseRequest(r)
	if err == nil {
		err = w.withdraw(r.Context(), p.actor, c, q)
	}
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.redirect(rw, r, "/cases/"+c.ID, "withdrawn")
}

// withdraw withdraws a request at its registry (or before it was filed).
func (w *Web) withdraw(ctx context.Context, actor string, c *Case, q *Request) error {
	return Withdraw(ctx, w.cfg.Store, w.client(), actor, c, q)
}

func (w *Web) client() *Client {
	if w.cfg.Syncer != nil && w.cfg.Syncer.Client != nil {
		return w.cfg.Syncer.Client
	}
	return &Client{}
}

func (w *Web) handleRefile(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	c, q, err := w.caseRequest(r)
	if err == nil {
		err = w.cfg.Store.Refile(r.Context(), p.actor, q)
	}
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	if w.cfg.Syncer != nil {
		go w.cfg.Syncer.Sync(context.WithoutCancel(r.Context()))
	}
	w.redirect(rw, r, "/cases/"+c.ID, "refiled")
}

func (w *Web) handleResult(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	format := r.PostForm.Get("format")
	if !slices.Contains(export.Formats, format) {
		w.fail(rw, r, p, registry.FieldError("format", "Choose a format."))
		return
	}
	ids, err := w.cfg.Identities([]byte(r.PostForm.Get("passphrase")))
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	// Written into memory first: a result that fails half-way is never
	// half sent, and nothing of it touches the disk.
	var buf bytes.Buffer
	sep := ','
	if format == "csv" || format == "sormas" {
		sep = ';'
	}
	o, err := w.cfg.Store.WriteResult(r.Context(), &buf, p.actor, r.PathValue("id"), ids, format, sep)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	name := fileName(o.Case.Ref) + export.FormatExt[format]
	if format == "sormas" || format == "iris" {
		name = fileName(o.Case.Ref) + "-" + format + export.FormatExt[format]
	}
	rw.Header().Set("Content-Type", contentTypes[format])
	rw.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	rw.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	rw.Write(buf.Bytes())
}

var contentTypes = map[string]string{
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf",
	"csv": "text/csv; charset=utf-8", "sormas": "text/csv; charset=utf-8", "json": "application/json", "iris": "application/json",
}

// fileName reduces a case reference to a safe file name.
func fileName(ref string) string {
	var b strings.Builder
	for _, c := range ref {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if s := strings.Trim(b.String(), "._"); s != "" {
		return "Fall-" + s
	}
	return "Fall"
}

func (w *Web) handleDelete(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	if r.PostForm.Get("confirm") != "on" {
		w.fail(rw, r, p, registry.FieldError("confirm", "Tick the box to confirm the deletion."))
		return
	}
	if err := w.cfg.Store.DeleteCase(r.Context(), p.actor, r.PathValue("id"), "deleted by "+p.actor); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.redirect(rw, r, "/", "case_deleted")
}

func (w *Web) registriesPage(ctx context.Context, p *page) error {
	_, list, err := w.registryMap(ctx)
	if err != nil {
		return err
	}
	for _, reg := range list {
		rv := registryView{ID: reg.ID, Name: reg.Name, URL: reg.URL, Digest: reg.TrustDigest, Confirmed: reg.Confirmed()}
		if reg.SitesAt != nil {
			rv.SitesAt = germanTime(*reg.SitesAt)
		}
		for _, s := range reg.Sites {
			rv.Sites = append(rv.Sites, siteView{Code: s.Code, Name: s.Name})
		}
		p.Registries = append(p.Registries, rv)
	}
	p.Title, p.Nav = p.T["title_registries"], "registries"
	if p.Form == nil {
		p.Form = map[string]string{}
	}
	return nil
}

func (w *Web) handleRegistries(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := w.registriesPage(r.Context(), p); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.render(rw, r, http.StatusOK, "registries", p)
}

// formFile returns an uploaded file's content (at most 128 KiB).
func formFile(r *http.Request, field string) ([]byte, error) {
	f, _, err := r.FormFile(field)
	if err != nil {
		return nil, registry.FieldError(field, "Choose the file.")
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 128<<10+1))
	if err != nil || len(b) > 128<<10 {
		return nil, registry.FieldError(field, "The file is larger than 128 KiB.")
	}
	return b, nil
}

func (w *Web) handleAddRegistry(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	ctx := r.Context()
	trust, err := formFile(r, "trust")
	var reg *Registry
	if err == nil {
		reg, err = w.cfg.Store.AddRegistry(ctx, p.actor, r.PostForm.Get("name"), r.PostForm.Get("url"), r.PostForm.Get("token"), trust)
	}
	if registry.ErrorCode(err) == registry.EINVALID {
		for _, f := range registry.ErrorFields(err) {
			p.Errors = append(p.Errors, fieldError{ID: "f-" + f.Field, Text: f.Message})
		}
		if len(p.Errors) == 0 {
			p.Errors = append(p.Errors, fieldError{ID: "f-name", Text: registry.ErrorMessage(err)})
		}
		if err := w.registriesPage(ctx, p); err != nil {
			w.fail(rw, r, p, err)
			return
		}
		p.Form["name"], p.Form["url"] = r.PostForm.Get("name"), r.PostForm.Get("url")
		w.render(rw, r, http.StatusBadRequest, "registries", p)
		return
	} else if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	// Its sites at once, when it answers; else later from its page.
	if sites, err := w.client().Sites(ctx, reg); err == nil {
		w.cfg.Store.SetSites(ctx, reg.ID, sites)
	} else {
		w.cfg.Logger.Warn("sites of a new registry not fetched", "registry", reg.ID, "error", err)
	}
	w.redirect(rw, r, "/registries", "registry_added")
}

func (w *Web) handleConfirm(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	ctx := r.Context()
	reg, err := w.cfg.Store.Registry(ctx, r.PathValue("id"))
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	err = w.cfg.Store.ConfirmTrust(ctx, p.actor, reg.ID, r.PostForm.Get("digest"))
	if registry.ErrorCode(err) == registry.EINVALID {
		p.Errors = []fieldError{{ID: "f-digest-" + reg.ID, Text: p.T["digest_wrong"]}}
		if err := w.registriesPage(ctx, p); err != nil {
			w.fail(rw, r, p, err)
			return
		}
		w.render(rw, r, http.StatusBadRequest, "registries", p)
		return
	} else if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.redirect(rw, r, "/registries", "trust_confirmed")
}

func (w *Web) handleRefresh(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	if err := RefreshSites(r.Context(), w.cfg.Store, w.client(), r.PathValue("id")); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.redirect(rw, r, "/registries", "sites_refreshed")
}

func (w *Web) handleReplaceTrust(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	trust, err := formFile(r, "trust")
	if err == nil {
		_, err = w.cfg.Store.ReplaceTrust(r.Context(), p.actor, r.PathValue("id"), trust)
	}
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.redirect(rw, r, "/registries", "trust_replaced")
}

func (w *Web) handleToken(rw http.ResponseWriter, r *http.Request, p *page) {
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	if err := w.cfg.Store.SetToken(r.Context(), p.actor, r.PathValue("id"), r.PostForm.Get("token")); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	w.redirect(rw, r, "/registries", "token_replaced")
}

func (w *Web) handleLog(rw http.ResponseWriter, r *http.Request, p *page) {
	ctx := r.Context()
	res, err := audit.Verify(ctx, w.cfg.Store, nil)
	if err != nil {
		p.LogStatus = fmt.Sprintf(p.T["log_bad"], registry.ErrorMessage(err))
	} else {
		p.LogOK, p.LogStatus = true, fmt.Sprintf(p.T["log_ok"], res.Size)
	}
	last, err := w.cfg.Store.LastAudit(ctx, "")
	after := int64(0)
	if err == nil && last.Seq > 500 {
		after = last.Seq - 500
	}
	evs, err := w.cfg.Store.AuditEvents(ctx, after, 500)
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		p.Log = append(p.Log, logView{Seq: fmt.Sprint(e.Seq), Time: germanTime(e.Time), Actor: string(e.Actor), Action: e.Action, Subject: e.Subject, Details: e.Details})
	}
	p.Title, p.Nav = p.T["title_log"], "log"
	w.render(rw, r, http.StatusOK, "log", p)
}

func (w *Web) handleLoginPage(rw http.ResponseWriter, r *http.Request) {
	lang := language(rw, r)
	p := &page{Lang: lang, T: texts[lang], Title: texts[lang]["title_login"], SignIn: w.cfg.SignIn}
	w.render(rw, r, http.StatusOK, "login", p)
}

func (w *Web) handleLogin(rw http.ResponseWriter, r *http.Request) {
	lang := language(rw, r)
	p := &page{Lang: lang, T: texts[lang], Title: texts[lang]["title_login"], SignIn: w.cfg.SignIn}
	if err := readForm(rw, r); err != nil {
		w.fail(rw, r, p, err)
		return
	}
	login := strings.ToLower(strings.TrimSpace(r.PostForm.Get("login")))
	secret, err := w.cfg.Store.SignIn(r.Context(), login, r.PostForm.Get("password"))
	if err != nil {
		w.fail(rw, r, p, err)
		return
	}
	if secret == "" {
		p.Message, p.Alert = p.T["login_failed"], true
		w.render(rw, r, http.StatusUnauthorized, "login", p)
		return
	}
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(rw, r, "/", http.StatusSeeOther)
}

func (w *Web) handleLogout(rw http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		w.cfg.Store.EndSession(r.Context(), c.Value)
	}
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	lang := language(rw, r)
	p := &page{Lang: lang, T: texts[lang], Title: texts[lang]["title_login"], Message: texts[lang]["logged_out"], SignIn: w.cfg.SignIn}
	w.render(rw, r, http.StatusOK, "login", p)
}

// LoopbackHosts are the Host headers of a workspace listening on addr.
func LoopbackHosts(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	hosts := []string{strings.ToLower(net.JoinHostPort(host, port))}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		hosts = append(hosts, "localhost:"+port, "127.0.0.1:"+port, "[::1]:"+port)
	}
	return hosts
}
