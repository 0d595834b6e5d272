package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // check-in times are shown in German time on any host

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
)

// The visitors' own check-in form: GET /checkin/{site} shows it, POST
// /checkin/{site} registers the visitor and up to maxFormCompanions
// companions through intake.Service.RegisterGroup, and POST
// /checkin/{site}/checkout checks one of them out. Only the sites of
// Config.PublicSites answer; any other site gets a 404 page.
//
// Registrations use a synthetic intake token bound to the site
// (publicToken), so the audit log names "token:public-<site>" and the site
// binding is enforced by intake. Every rendered form carries a nonce the
// server issued and signed (nonce.go) that becomes the Idempotency-Key: a
// reload or double submit of the same form replays the first registration
// instead of storing a second one. Registrations are limited per client,
// per site and in total (Limits), every other page request per client.

// maxFormCompanions is the number of companion rows the form offers.
const maxFormCompanions = 3

// berlin is the time zone check-in times are shown in.
var berlin = loadBerlin()

func loadBerlin() *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return time.UTC // unreachable: time/tzdata is embedded
	}
	return loc
}

// publicToken is the in-memory intake token of a site's public form. It is
// never stored, so no secret exists that could present it.
func publicToken(site string) *registry.Token {
	return &registry.Token{ID: "public-" + site, Role: registry.RoleIntake, Site: site}
}

// publicSite returns the {site} of r when it takes public check-ins, and
// otherwise answers 404 and returns false.
func (s *Server) publicSite(w http.ResponseWriter, r *http.Request, lang string) (string, bool) {
	site := r.PathValue("site")
	if !s.publicSites[site] {
		s.renderMessage(w, r, http.StatusNotFound, lang, "title_notfound", "msg_notfound", "")
		return "", false
	}
	return site, true
}

// handleCheckinForm serves GET /checkin/{site}: the empty form, in German
// unless ?lang=en or Accept-Language prefers English. ?area= prefills the
// area (for posters in a particular room).
func (s *Server) handleCheckinForm(w http.ResponseWriter, r *http.Request) {
	lang := preferredLang(r)
	site, ok := s.publicSite(w, r, lang)
	if !ok || !s.allowPage(w, r, lang) {
		return
	}
	vals := map[string]string{"area": r.URL.Query().Get("area")}
	s.render(w, r, http.StatusOK, "form", s.formPage(site, lang, issueNonce(s.formKey, site, s.cfg.Now()), vals, ""))
}

// handleCheckin serves POST /checkin/{site}: 200 with the confirmation
// page once every person is committed (also for a replayed nonce), 400
// with the form and its input again for a field at fault (nothing is
// stored), 400 for a malformed form, 409 when the nonce was used for other
// input, 413, 415, 503 when intake is unavailable.
func (s *Server) handleCheckin(w http.ResponseWriter, r *http.Request) {
	site, ok := s.publicSite(w, r, preferredLang(r))
	if !ok {
		return
	}
	vals, err := s.readForm(w, r, checkinFields)
	if err != nil {
		s.renderError(w, r, preferredLang(r), err, nil)
		return
	}
	lang := formLang(vals["lang"])
	if !checkNonce(s.formKey, site, vals["nonce"], s.cfg.Now()) {
		s.metrics.countError("form_expired")
		s.renderMessage(w, r, http.StatusBadRequest, lang, "title_error", "msg_form_expired", site)
		return
	}
	if limit, wait := s.limits.registration(r, site, s.cfg.Now()); limit != "" {
		s.tooMany(w, r, lang, limit, wait)
		return
	}
	f := newCheckinForm(site, vals)
	body, err := json.Marshal(registerRequest{Registration: *f.reg, Companions: f.companions})
	if err != nil {
		s.renderError(w, r, lang, err, nil)
		return
	}
	res, err := s.cfg.Intake.RegisterGroup(r.Context(), publicToken(site), f.reg, f.companions, "form-"+vals["nonce"], body)
	if field := registry.ErrorField(err); registry.ErrorCode(err) == registry.EINVALID && field != "" {
		s.metrics.countError(registry.EINVALID)
		s.render(w, r, http.StatusBadRequest, "form", s.formPage(site, lang, vals["nonce"], vals, f.formField(field)))
		return
	} else if err != nil {
		s.renderError(w, r, lang, err, map[string]string{registry.ECONFLICT: "msg_nonce_reused"})
		return
	}
	s.render(w, r, http.StatusOK, "done", s.donePage(site, lang, f, res))
}

// handleCheckinCheckout serves POST /checkin/{site}/checkout with the
// hidden fields visit and token of the confirmation page: 200 "goodbye",
// 401 for a wrong token or unknown visit, 409 when already checked out,
// 404 when the visit was purged.
func (s *Server) handleCheckinCheckout(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.publicSite(w, r, preferredLang(r)); !ok || !s.allowPage(w, r, preferredLang(r)) {
		return
	}
	vals, err := s.readForm(w, r, checkoutFields)
	if err != nil {
		s.renderError(w, r, preferredLang(r), err, nil)
		return
	}
	lang := formLang(vals["lang"])
	if err := s.cfg.Intake.CheckOut(r.Context(), vals["visit"], vals["token"], nil); err != nil {
		s.renderError(w, r, lang, err, map[string]string{
			registry.EUNAUTHORIZED: "msg_checkout_token", registry.ECONFLICT: "msg_checked_out", registry.ENOTFOUND: "msg_checkout_gone",
		})
		return
	}
	s.renderMessage(w, r, http.StatusOK, lang, "title_bye", "msg_bye", "")
}

// allowPage takes a token of the client's page limit, or answers 429 and
// returns false.
func (s *Server) allowPage(w http.ResponseWriter, r *http.Request, lang string) bool {
	if ok, wait := s.limits.pages.allow(s.limits.clientKey(r), s.cfg.Now()); !ok {
		s.tooMany(w, r, lang, "pages", wait)
		return false
	}
	return true
}

// tooMany answers 429 with Retry-After and a page asking the visitor to
// wait or to register at the desk.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, lang, limit string, wait time.Duration) {
	s.metrics.countLimited(limit)
	w.Header().Set("Retry-After", retrySeconds(wait))
	s.renderMessage(w, r, http.StatusTooManyRequests, lang, "title_busy", "msg_busy", r.PathValue("site"))
}

// retrySeconds is a Retry-After value: whole seconds, at least 1.
func retrySeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// renderError answers err as a message page: statusErrors with their
// status, registry errors with statusOf(code). msgs chooses the message
// text key per code; internal errors are logged and get a generic text.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, lang string, err error, msgs map[string]string) {
	var se *statusError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.metrics.countError("cancelled")
		s.renderMessage(w, r, http.StatusServiceUnavailable, lang, "title_error", "msg_unavailable", "")
		return
	case errors.As(err, &se):
		s.metrics.countError(se.code)
		s.renderMessage(w, r, se.status, lang, "title_error", statusMessages[se.status], "")
		return
	}
	code := registry.ErrorCode(err)
	s.metrics.countError(code)
	key, ok := msgs[code]
	switch {
	case ok:
	case code == registry.EUNAVAILABLE:
		key = "msg_unavailable"
	case code == registry.EINTERNAL:
		s.cfg.Logger.Error("internal error", "route", routeOf(r), "error", err)
		key = "msg_internal"
	default:
		key = "msg_form"
	}
	s.renderMessage(w, r, statusOf(code), lang, "title_error", key, r.PathValue("site"))
}

// statusMessages are the message keys of statusErrors.
var statusMessages = map[int]string{
	http.StatusBadRequest:            "msg_form",
	http.StatusRequestEntityTooLarge: "msg_too_large",
	http.StatusUnsupportedMediaType:  "msg_form",
	http.StatusRequestTimeout:        "msg_form",
	http.StatusTooManyRequests:       "msg_busy",
}

// person is one checked-in person on the confirmation page.
type person struct {
	Name, VisitID, Token string
}

// donePage is the confirmation page of a committed registration.
func (s *Server) donePage(site, lang string, f *checkinForm, res *intake.Result) *pageData {
	d := s.newPage(site, lang, "title_done")
	in := res.Visit.CheckIn.In(berlin)
	d.CheckIn = in.Format(d.T["time_layout"])
	d.People = []person{{Name: f.name(-1), VisitID: res.Visit.ID, Token: res.CheckoutToken}}
	for i, c := range res.Companions {
		d.People = append(d.People, person{Name: f.name(i), VisitID: c.Visit.ID, Token: c.CheckoutToken})
	}
	return d
}

// handleCheckinCSS serves the form's stylesheet.
func (s *Server) handleCheckinCSS(w http.ResponseWriter, r *http.Request) {
	css, err := checkinFS.ReadFile("checkin_templates/checkin.css")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(css)
}

// preferredLang is "en" for ?lang=en or an Accept-Language that prefers
// English to German, else "de".
func preferredLang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "de" || l == "en" {
		return l
	}
	best, bestQ := "de", 0.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q = parseQ(v)
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if (primary == "de" || primary == "en") && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}

// parseQ parses a quality value (RFC 9110: 0 to 1, three decimals); 0 for
// anything malformed.
func parseQ(v string) float64 {
	if len(v) == 0 || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0
	}
	q := float64(v[0] - '0')
	if len(v) > 1 && v[1] != '.' {
		return 0
	}
	scale := 0.1
	for _, c := range []byte(v[min(2, len(v)):]) {
		if c < '0' || c > '9' {
			return 0
		}
		q += float64(c-'0') * scale
		scale /= 10
	}
	return min(q, 1)
}

// formLang is the language of a posted form's hidden lang field.
func formLang(v string) string {
	if v == "en" {
		return "en"
	}
	return "de"
}
