package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
)

// The visitors' own pages, for the sites that allow check-in on the
// visitor's phone (registry.Site.SelfCheckin):
//
//   - GET /checkin/{site} shows the form, or, when the phone's cookie
//     holds open visits of the site (the poster scanned again, even after
//     the tab was closed or the phone restarted), the status page with
//     check-out buttons for each person and for the whole household;
//     ?new=1 shows the form anyway.
//   - POST /checkin/{site} registers the visitor and up to
//     maxFormCompanions companions (intake.Service.RegisterGroup), keeps
//     their tickets in the cookie and shows the status page.
//   - POST /checkin/{site}/checkout checks out the visits of the posted
//     tickets (fields t).
//   - GET /checkin/{site}/out is the check-out link: the tickets are in
//     its fragment, which a small script posts (out.js). Visitor slips
//     printed at the desk carry it as QR code, so it answers for every
//     configured site, self check-in or not.
//
// Registrations use the site's public registrar (Actor
// "token:public-<site>"). Every rendered form carries a nonce the server
// issued and signed (nonce.go) that becomes the Idempotency-Key: a reload
// or double submit of the same form replays the first registration
// instead of storing a second one. Registrations are limited per client,
// per site and in total (Limits), every other page request per client.

// maxFormCompanions is the number of companion rows the form offers.
const maxFormCompanions = 3

// publicRegistrar registers the visits of a site's public form.
func publicRegistrar(site string) *registry.Registrar {
	id := "public-" + site
	return &registry.Registrar{Actor: registry.TokenActor(id), Scope: id, Sites: []string{site}}
}

// site returns the configured site of r's {site}, or answers 404 and
// returns nil. With public set, only a site that takes self check-ins
// counts.
func (s *Server) site(w http.ResponseWriter, r *http.Request, lang string, public bool) *registry.Site {
	code := r.PathValue("site")
	var site *registry.Site
	var err error
	if registry.ValidSite(code) {
		site, err = s.cfg.Intake.Site(r.Context(), code)
	}
	switch {
	case err != nil && registry.ErrorCode(err) != registry.ENOTFOUND:
		s.renderError(w, r, lang, err, nil, nil)
		return nil
	case site == nil || public && !site.SelfCheckin:
		s.renderMessage(w, r, http.StatusNotFound, lang, "title_notfound", "msg_notfound", nil)
		return nil
	}
	return site
}

// handleCheckinForm serves GET /checkin/{site}: the status page when the
// cookie holds open visits of the site (unless ?new=1), else the empty
// form. ?area= preselects the area (posters of one room).
func (s *Server) handleCheckinForm(w http.ResponseWriter, r *http.Request) {
	lang := s.visitorLang(w, r)
	site := s.site(w, r, lang, true)
	if site == nil || !s.allowPage(w, r, lang, site) {
		return
	}
	if r.URL.Query().Get("new") != "1" {
		open, err := s.openTickets(r.Context(), cookieTickets(r))
		if err != nil {
			s.renderError(w, r, lang, err, nil, site)
			return
		}
		s.setTickets(w, r, site.Code, open)
		if len(open) > 0 {
			s.renderStatus(w, r, lang, site, open, nil)
			return
		}
	}
	vals := map[string]string{"area": r.URL.Query().Get("area")}
	s.render(w, r, http.StatusOK, "form", s.formPage(r, site, lang, issueNonce(s.formKey, site.Code, s.cfg.Now()), vals, nil))
}

// handleCheckin serves POST /checkin/{site}: 200 with the status page
// once every person is committed (also for a replayed nonce), 400 with
// the form, its input and every field at fault (nothing is stored), 400
// for a malformed form, 409 when the nonce was used for other input, 413,
// 415, 503 when intake is unavailable.
func (s *Server) handleCheckin(w http.ResponseWriter, r *http.Request) {
	pageLang := s.visitorLang(w, r)
	site := s.site(w, r, pageLang, true)
	if site == nil {
		return
	}
	posted, err := s.readForm(w, r, checkinFields, nil)
	if err != nil {
		s.renderError(w, r, pageLang, err, nil, site)
		return
	}
	vals := posted.singles()
	lang := visitorFormLang(vals["lang"])
	if !checkNonce(s.formKey, site.Code, vals["nonce"], s.cfg.Now()) {
		s.metrics.countError("form_expired")
		s.renderMessage(w, r, http.StatusBadRequest, lang, "title_error", "msg_form_expired", site)
		return
	}
	if limit, wait := s.limits.registration(r, site.Code, s.cfg.Now()); limit != "" {
		s.tooMany(w, r, lang, limit, wait, site)
		return
	}
	f := newCheckinForm(site.Code, vals, maxFormCompanions)
	body, err := json.Marshal(registerRequest{Registration: *f.reg, Companions: f.companions})
	if err != nil {
		s.renderError(w, r, lang, err, nil, site)
		return
	}
	res, err := s.cfg.Intake.RegisterGroup(r.Context(), publicRegistrar(site.Code), f.reg, f.companions, "form-"+vals["nonce"], body)
	if issues := registry.ErrorFields(err); registry.ErrorCode(err) == registry.EINVALID && len(issues) > 0 {
		s.metrics.countError(registry.EINVALID)
		s.render(w, r, http.StatusBadRequest, "form", s.formPage(r, site, lang, vals["nonce"], vals, f.formFields(issues)))
		return
	} else if err != nil {
		s.renderError(w, r, lang, err, map[string]string{registry.ECONFLICT: "msg_nonce_reused"}, site)
		return
	}
	fresh := resultTickets(res)
	kept, err := s.openTickets(r.Context(), cookieTickets(r))
	if err != nil {
		kept = nil // the new registration is stored; the old tickets stay for the next visit
	}
	all := parseTickets(joinTickets(append(kept, fresh...)))
	s.setTickets(w, r, site.Code, all)
	names := map[string]string{res.Visit.ID: f.name(-1)}
	for i, c := range res.Companions {
		names[c.Visit.ID] = f.name(i)
	}
	s.renderStatus(w, r, lang, site, all, names)
}

// resultTickets are the tickets of a registration, registrant first.
func resultTickets(res *intake.Result) []intake.Ticket {
	ts := []intake.Ticket{{ID: res.Visit.ID, Token: res.CheckoutToken}}
	for _, c := range res.Companions {
		ts = append(ts, intake.Ticket{ID: c.Visit.ID, Token: c.CheckoutToken})
	}
	return ts
}

// openTickets returns the tickets whose visits are still open, in order:
// the cookie forgets the others.
func (s *Server) openTickets(ctx context.Context, ts []intake.Ticket) ([]intake.Ticket, error) {
	var open []intake.Ticket
	for _, t := range ts {
		v, err := s.cfg.Intake.TicketVisit(ctx, t)
		if registry.ErrorCode(err) == registry.EUNAUTHORIZED || registry.ErrorCode(err) == registry.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		if v.CheckOut == nil {
			open = append(open, t)
		}
	}
	return open, nil
}

// ticketView is one person on the status page.
type ticketView struct {
	Ticket, Label, Name, Code, Since string
}

// renderStatus shows the open visits of the tickets with their check-out
// buttons; names are the people's names when they were just registered
// (the server keeps none).
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, lang string, site *registry.Site, ts []intake.Ticket, names map[string]string) {
	d := s.visitorPage(r, site, lang, "title_status")
	for i, t := range ts {
		label := d.T["person"] + " " + strconv.Itoa(i+1)
		v, err := s.cfg.Intake.TicketVisit(r.Context(), t)
		since := ""
		if err == nil {
			since = v.CheckIn.In(registry.LocalZone).Format(d.T["time_layout"])
		}
		d.Tickets = append(d.Tickets, ticketView{Ticket: encodeTicket(t), Label: label, Name: names[t.ID],
			Code: s.cfg.Secret.ShortCode(t.ID), Since: since})
	}
	d.OutLink = s.outLink(r, site.Code, ts)
	d.Notice = s.fullNotice(r.Context(), site, d.T)
	s.render(w, r, http.StatusOK, "status", d)
}

// handleCheckinCheckout serves POST /checkin/{site}/checkout with one or
// more tickets (fields t): 200 "goodbye" when at least one was checked
// out or was already, 401 when no ticket is valid, 404 when the visits
// were purged. The tickets leave the cookie.
func (s *Server) handleCheckinCheckout(w http.ResponseWriter, r *http.Request) {
	pageLang := s.visitorLang(w, r)
	site := s.site(w, r, pageLang, false)
	if site == nil || !s.allowPage(w, r, pageLang, site) {
		return
	}
	vals, err := s.readForm(w, r, checkoutFields, checkoutMulti)
	if err != nil {
		s.renderError(w, r, pageLang, err, nil, site)
		return
	}
	lang := visitorFormLang(vals.get("lang"))
	posted := parseTickets(strings.Join(vals["t"], "~"))
	if len(posted) == 0 {
		s.renderError(w, r, lang, errFormMalformed, nil, site)
		return
	}
	errs, err := s.cfg.Intake.CheckOutTickets(r.Context(), posted)
	if err != nil {
		s.renderError(w, r, lang, err, nil, site)
		return
	}
	kept := slices.DeleteFunc(cookieTickets(r), func(t intake.Ticket) bool { return slices.Contains(posted, t) })
	s.setTickets(w, r, site.Code, kept)
	if err := summarizeCheckouts(errs); err != nil {
		s.renderError(w, r, lang, err, map[string]string{
			registry.EUNAUTHORIZED: "msg_checkout_token", registry.ECONFLICT: "msg_checked_out", registry.ENOTFOUND: "msg_checkout_gone",
		}, site)
		return
	}
	msg := "msg_bye"
	if len(kept) > 0 {
		msg = "msg_bye_some"
	}
	s.renderMessage(w, r, http.StatusOK, lang, "title_bye", msg, site)
}

// summarizeCheckouts returns nil when at least one check-out was recorded
// and otherwise the first error (all already checked out: ECONFLICT).
func summarizeCheckouts(errs []error) error {
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	for _, code := range []string{registry.ECONFLICT, registry.ENOTFOUND} {
		for _, err := range errs {
			if registry.ErrorCode(err) == code {
				return err
			}
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// handleCheckinOut serves GET /checkin/{site}/out, the check-out link
// whose fragment holds the tickets (see out.js).
func (s *Server) handleCheckinOut(w http.ResponseWriter, r *http.Request) {
	lang := s.visitorLang(w, r)
	site := s.site(w, r, lang, false)
	if site == nil || !s.allowPage(w, r, lang, site) {
		return
	}
	d := s.visitorPage(r, site, lang, "title_out")
	d.Scripts = []string{"out.js"}
	s.render(w, r, http.StatusOK, "out", d)
}

// fullNotice is the notice of the public form and status page while the
// site is at capacity, when the site shows it; "" otherwise.
func (s *Server) fullNotice(ctx context.Context, site *registry.Site, t map[string]string) string {
	if !site.FullNotice || site.Capacity <= 0 {
		return ""
	}
	occ, err := s.occupancy(ctx)
	if err != nil {
		return ""
	}
	if occ.site(site.Code) >= site.Capacity {
		return t["full_notice"]
	}
	return ""
}

// allowPage takes a token of the client's page limit, or answers 429 and
// returns false.
func (s *Server) allowPage(w http.ResponseWriter, r *http.Request, lang string, site *registry.Site) bool {
	if ok, wait := s.limits.pages.allow(s.limits.clientKey(r), s.cfg.Now()); !ok {
		s.tooMany(w, r, lang, "pages", wait, site)
		return false
	}
	return true
}

// tooMany answers 429 with Retry-After and a page asking the visitor to
// wait or to register at the desk.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, lang, limit string, wait time.Duration, site *registry.Site) {
	s.metrics.countLimited(limit)
	w.Header().Set("Retry-After", retrySeconds(wait))
	s.renderMessage(w, r, http.StatusTooManyRequests, lang, "title_busy", "msg_busy", site)
}

// retrySeconds is a Retry-After value: whole seconds, at least 1.
func retrySeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// renderError answers err as a message page: statusErrors with their
// status, registry errors with statusOf(code). msgs chooses the message
// text key per code; internal errors are logged and get a generic text.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, lang string, err error, msgs map[string]string, site *registry.Site) {
	var se *statusError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.metrics.countError("cancelled")
		w.Header().Set("Retry-After", retryAfter)
		s.renderMessage(w, r, http.StatusServiceUnavailable, lang, "title_error", "msg_unavailable", nil)
		return
	case errors.As(err, &se):
		s.metrics.countError(se.code)
		s.renderMessage(w, r, se.status, lang, "title_error", statusMessages[se.status], nil)
		return
	}
	code := registry.ErrorCode(err)
	s.metrics.countError(code)
	key, ok := msgs[code]
	switch {
	case ok:
	case code == registry.EUNAVAILABLE:
		w.Header().Set("Retry-After", retryAfter)
		s.cfg.Logger.Warn("service unavailable: answered 503 with Retry-After", "route", routeOf(r), "error", err)
		key = "msg_unavailable"
	case code == registry.EINTERNAL:
		s.cfg.Logger.Error("internal error", "route", routeOf(r), "error", err)
		key = "msg_internal"
	default:
		key = "msg_form"
	}
	s.renderMessage(w, r, statusOf(code), lang, "title_error", key, site)
}

// statusMessages are the message keys of statusErrors.
var statusMessages = map[int]string{
	http.StatusBadRequest:            "msg_form",
	http.StatusRequestEntityTooLarge: "msg_too_large",
	http.StatusUnsupportedMediaType:  "msg_form",
	http.StatusRequestTimeout:        "msg_form",
	http.StatusTooManyRequests:       "msg_busy",
}

// handleAppointmentCheck serves GET /checkin/{site}/appointment?code=…:
// whether the site has an appointment of that code today (204), or not
// (404, the same for a code that does not exist, was cancelled or is of
// another site), for the form's check as the visitor leaves the input.
// An appointment's code is no personal data; the answer names nothing
// but yes or no, and the visitors' page limit bounds the guesses.
func (s *Server) handleAppointmentCheck(w http.ResponseWriter, r *http.Request) {
	lang := s.visitorLang(w, r)
	site := s.site(w, r, lang, true)
	if site == nil || !s.allowPage(w, r, lang, site) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	code := registry.NormalizeCode(r.URL.Query().Get("code"))
	if code != "" {
		a, err := s.cfg.Store.FindAppointment(r.Context(), site.Code, registry.LocalDay(s.cfg.Now()), code)
		if err == nil && a.Status != registry.AppointmentCancelled {
			w.WriteHeader(http.StatusNoContent)
			return
		} else if err != nil && registry.ErrorCode(err) != registry.ENOTFOUND {
			s.renderError(w, r, lang, err, nil, site)
			return
		}
	}
	http.Error(w, "no such appointment today", http.StatusNotFound)
}

// preferredLang is the language of a staff page: ?lang=de or en, else
// the one of them the browser's Accept-Language prefers, else German.
func preferredLang(r *http.Request) string {
	return matchLang(r, staffLangs)
}

// langCookie remembers the language a visitor chose in the picker: only
// the language, no identifier, for a year.
const langCookie = "lang"

// visitorLang is the language of a visitor's page: ?lang= (one of the
// visitors' languages, then remembered in a cookie), else the remembered
// one, else the one the browser's Accept-Language prefers, else German.
func (s *Server) visitorLang(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); slices.Contains(registry.VisitorLanguages, l) {
		if c, err := r.Cookie(langCookie); err != nil || c.Value != l {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true,
				Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
		}
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && slices.Contains(registry.VisitorLanguages, c.Value) {
		return c.Value
	}
	return matchLang(r, registry.VisitorLanguages)
}

// matchLang is ?lang= when it is supported, else the supported language
// the Accept-Language header rates highest, else the first supported.
func matchLang(r *http.Request, supported []string) string {
	if l := r.URL.Query().Get("lang"); slices.Contains(supported, l) {
		return l
	}
	best, bestQ := supported[0], 0.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q = parseQ(v)
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if slices.Contains(supported, primary) && q > bestQ {
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

// formLang is the language of a staff form's hidden lang field.
func formLang(v string) string {
	if v == "en" {
		return "en"
	}
	return "de"
}

// visitorFormLang is the language of a visitor form's hidden lang field.
func visitorFormLang(v string) string {
	if slices.Contains(registry.VisitorLanguages, v) {
		return v
	}
	return "de"
}
