package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/poster"
)

// The desk's registration form: the public form's inputs and the
// appointment; companion rows grow in steps of deskRowStep up to
// intake.MaxCompanions; the paper form adds the date and the times.
const (
	deskRows    = 1
	deskRowStep = 3
)

var (
	deskSpecs  = append(append([]fieldSpec(nil), mainSpecs...), fieldSpec{"appointment", "off", "text", false}, fieldSpec{"walk_in", "off", "select", false})
	paperSpecs = []fieldSpec{{"date", "off", "date", true}, {"arrival", "off", "time", true}, {"departure", "off", "time", false}}

	deskFields  = formFieldSet([]fieldSpec{{name: "appointment"}, {name: "walk_in"}}, intake.MaxCompanions, "nonce", "lang", "rows", "more")
	paperFields = formFieldSet(append([]fieldSpec{{name: "appointment"}, {name: "walk_in"}}, paperSpecs...), intake.MaxCompanions, "nonce", "lang", "rows", "more")
)

// handleDeskHome serves GET /desk/: the account's site, or a choice of
// its sites.
func (s *Server) handleDeskHome(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	if len(dr.user.Sites) == 1 {
		http.Redirect(w, r, "/desk/"+dr.user.Sites[0]+"/?lang="+dr.lang, http.StatusSeeOther)
		return
	}
	d := s.deskPage(r, dr, "title_choose_site")
	d.Page = "sites"
	s.render(w, r, http.StatusOK, "desk_sites", d)
}

// handleDeskRegisterPage serves GET /desk/{site}/ and GET
// /desk/{site}/paper: the empty form.
func (s *Server) handleDeskRegisterPage(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	paper := strings.HasSuffix(r.URL.Path, "/paper")
	vals := map[string]string{}
	if paper {
		vals["date"] = s.cfg.Now().In(registry.LocalZone).Format("2006-01-02")
	}
	// From the day list: the appointment's code, host and room (a code is
	// no personal data; it may stand in the URL).
	if code := registry.NormalizeCode(r.URL.Query().Get("appointment")); code != "" {
		if a, err := s.cfg.Store.FindAppointment(r.Context(), dr.site.Code, registry.LocalDay(s.cfg.Now()), code); err == nil {
			vals["appointment"], vals["host"], vals["area"] = a.Code, a.Host, a.Area
		}
	}
	s.render(w, r, http.StatusOK, "desk_register", s.deskForm(r, dr, paper, issueNonce(s.formKey, dr.site.Code, s.cfg.Now()), vals, deskRows, nil))
}

// deskForm is the desk's registration form with vals, rows companion
// rows and the inputs bad names marked.
func (s *Server) deskForm(r *http.Request, dr *deskRequest, paper bool, nonce string, vals map[string]string, rows int, bad map[string]bool) *pageData {
	title := "title_register"
	if paper {
		title = "title_paper"
	}
	d := s.deskPage(r, dr, title)
	d.Page, d.Paper, d.Nonce = "register", paper, nonce
	if paper {
		d.Page = "paper"
		for _, f := range paperSpecs {
			d.Times = append(d.Times, d.input(f, f.name, "", vals, bad))
		}
	}
	// The desk's own words for the appointment's error: the desk can admit
	// a walk-in, the visitor cannot.
	t := make(map[string]string, len(d.T))
	for k, v := range d.T {
		t[k] = v
	}
	t["err_appointment"] = d.T["err_desk_appointment"]
	d.T = t
	d.fillRegistration(dr.site, deskSpecs, rows, vals, bad)
	for i := range d.Fields {
		if d.Fields[i].Name == "host" {
			d.Fields[i].Label = d.T["label_desk_host"]
		}
	}
	d.MoreRows = rows < intake.MaxCompanions
	if len(bad) == 0 && len(d.Fields) > 0 { // the cursor starts in the first name
		d.Fields[0].Autofocus = true
	}
	d.Notice = s.fullNotice(r.Context(), dr.site, d.T)
	if d.Notice != "" {
		d.Notice = d.T["full"] + ": " + d.T["full_notice"]
	}
	return d
}

// handleDeskRegister serves POST /desk/{site}/register and POST
// /desk/{site}/paper: 200 with the slips once every person is committed
// (also for a resubmitted form: its nonce is the Idempotency-Key), 400
// with the form and every field at fault, or the form with more rows for
// the "more companions" button.
func (s *Server) handleDeskRegister(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	paper := strings.HasSuffix(r.URL.Path, "/paper")
	allowed := deskFields
	if paper {
		allowed = paperFields
	}
	vals, ok := s.readDeskForm(w, r, dr, allowed)
	if !ok {
		return
	}
	var err error
	rows := min(max(deskRows, atoiOr(vals["rows"], deskRows)), intake.MaxCompanions)
	if !checkNonce(s.formKey, dr.site.Code, vals["nonce"], s.cfg.Now()) {
		s.metrics.countError("form_expired")
		d := s.deskForm(r, dr, paper, issueNonce(s.formKey, dr.site.Code, s.cfg.Now()), vals, rows, nil)
		d.Message, d.Alert = d.T["msg_form_expired"], true
		s.render(w, r, http.StatusBadRequest, "desk_register", d)
		return
	}
	if vals["more"] != "" {
		d := s.deskForm(r, dr, paper, vals["nonce"], vals, min(rows+deskRowStep, intake.MaxCompanions), nil)
		if rows < len(d.Companions) { // the cursor goes to the first new row
			d.Fields[0].Autofocus = false
			d.Companions[rows][0].Autofocus = true
		}
		s.render(w, r, http.StatusOK, "desk_register", d)
		return
	}
	f := newCheckinForm(dr.site.Code, vals, rows)
	bad := map[string]bool{}
	if paper {
		f.reg.CheckIn, f.reg.CheckOut = paperTimes(vals, bad)
	}
	var res *intake.Result
	if len(bad) == 0 {
		body, merr := json.Marshal(registerRequest{Registration: *f.reg, Companions: f.companions})
		if merr != nil {
			s.renderError(w, r, dr.lang, merr, nil, nil)
			return
		}
		res, err = s.cfg.Intake.RegisterGroup(r.Context(), dr.user, f.reg, f.companions, "desk-"+vals["nonce"], body)
	}
	for field := range f.formFields(registry.ErrorFields(err)) {
		switch field {
		case "check_in":
			bad["arrival"] = true
		case "check_out":
			bad["departure"] = true
		default:
			bad[field] = true
		}
	}
	if len(bad) > 0 && (err == nil || registry.ErrorCode(err) == registry.EINVALID) {
		s.metrics.countError(registry.EINVALID)
		s.render(w, r, http.StatusBadRequest, "desk_register", s.deskForm(r, dr, paper, vals["nonce"], vals, rows, bad))
		return
	} else if err != nil {
		s.renderError(w, r, dr.lang, err, map[string]string{registry.ECONFLICT: "msg_nonce_reused"}, nil)
		return
	}
	s.forgetOccupancy()
	s.renderSlips(w, r, dr, paper, f, res)
}

// paperTimes reads the paper form's date and times (German time) into
// the check-in and check-out, marking the inputs at fault in bad.
func paperTimes(vals map[string]string, bad map[string]bool) (checkIn, checkOut *time.Time) {
	day, err := time.ParseInLocation("2006-01-02", vals["date"], registry.LocalZone)
	if err != nil {
		bad["date"] = true
		return nil, nil
	}
	at := func(name string) *time.Time {
		v := strings.TrimSpace(vals[name])
		if v == "" {
			return nil
		}
		min, err := registry.ParseClock(v)
		if err != nil {
			bad[name] = true
			return nil
		}
		t := time.Date(day.Year(), day.Month(), day.Day(), min/60, min%60, 0, 0, registry.LocalZone)
		return &t
	}
	if checkIn = at("arrival"); checkIn == nil {
		bad["arrival"] = true
	}
	return checkIn, at("departure")
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// slip is one printable visitor slip.
type slip struct {
	Name, Code, Since, Area string
	QR                      any // template.HTML of the check-out link's QR code
}

// renderSlips shows the registered people, with a slip for each whose
// visit is open: the short code and the QR code of the check-out link.
func (s *Server) renderSlips(w http.ResponseWriter, r *http.Request, dr *deskRequest, paper bool, f *checkinForm, res *intake.Result) {
	d := s.deskPage(r, dr, "title_slips")
	d.Page, d.Paper = "register", paper
	people := append([]intake.Stored{res.Stored}, res.Companions...)
	// The confirmation names whom: the appointment's code and each
	// person's given name and initial, as the slips do.
	who := make([]string, 0, len(people)+1)
	if code := registry.NormalizeCode(f.reg.Appointment); code != "" {
		who = append(who, code)
	}
	for i := range people {
		who = append(who, slipName(f, i-1))
	}
	if paper {
		d.Message = fmt.Sprintf(d.T["paper_done"], strings.Join(who, ", "))
	} else {
		d.Message = fmt.Sprintf(d.T["slips_intro"], strings.Join(who, ", "))
		d.Notice = s.capacityWarning(r.Context(), dr.site, res.Visit.Area, d.T)
	}
	for i, p := range people {
		if p.Visit.CheckOut != nil {
			continue
		}
		code := s.cfg.Secret.ShortCode(p.Visit.ID)
		link := s.outLink(r, dr.site.Code, []intake.Ticket{{ID: p.Visit.ID, Token: p.CheckoutToken}})
		qr, err := poster.QRSVG(link, d.T["code"]+" "+code)
		if err != nil {
			s.renderError(w, r, dr.lang, err, nil, nil)
			return
		}
		d.Slips = append(d.Slips, slip{Name: slipName(f, i-1), Code: code, QR: qr, Area: p.Visit.Area,
			Since: p.Visit.CheckIn.In(registry.LocalZone).Format(d.T["time_layout"])})
	}
	s.render(w, r, http.StatusOK, "desk_slips", d)
}

// capacityWarning warns the desk when the registration filled the site
// or the area, or went beyond its capacity.
func (s *Server) capacityWarning(ctx context.Context, site *registry.Site, area string, t map[string]string) string {
	occ, err := s.occupancy(ctx)
	if err != nil {
		return "" // a count is a help, not a condition of the registration
	}
	var out []string
	check := func(name string, open, capacity int) {
		switch {
		case capacity <= 0 || open < capacity:
		case open == capacity:
			out = append(out, fmt.Sprintf(t["capacity_full"], name, open, capacity))
		default:
			out = append(out, fmt.Sprintf(t["capacity_over"], name, open, capacity))
		}
	}
	if area != "" {
		for _, a := range site.Areas {
			if a.Name == area {
				check(a.Name, occ.area(site.Code, area), a.Capacity)
			}
		}
	}
	check(site.Name, occ.site(site.Code), site.Capacity)
	return strings.Join(out, " ")
}

// slipName is the name on a slip: the given name and the family name's
// initial, enough to hand each slip to the right person.
func slipName(f *checkinForm, i int) string {
	given, family := f.reg.GivenName, f.reg.FamilyName
	if i >= 0 {
		given, family = f.companions[i].GivenName, f.companions[i].FamilyName
	}
	given, family = strings.TrimSpace(given), strings.TrimSpace(family)
	if r := []rune(family); len(r) > 0 {
		return strings.TrimSpace(given + " " + string(r[0]) + ".")
	}
	return given
}

// presentRow is one open visit on the desk's list.
type presentRow struct {
	ID, Code, Area, Since, Ago, Party, Group string
	// Appointment is the appointment's code and host ("" without one);
	// WalkIn marks a visit without one at a site by appointment only.
	Appointment string
	WalkIn      bool
	GroupStart  bool
	GroupSize   int
}

// handleDeskPresent serves GET /desk/{site}/present: who is in the
// building now, by short code, area and time, grouped by party, with the
// occupancy against the capacities. ?done= and ?failed= report the last
// check-outs (numbers only).
func (s *Server) handleDeskPresent(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	d, err := s.presentPage(r, dr)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	q := r.URL.Query()
	var msgs []string
	if n := atoiOr(q.Get("done"), 0); n > 0 {
		msgs = append(msgs, fmt.Sprintf(d.T["done_n"], n))
	}
	if n := atoiOr(q.Get("failed"), 0); n > 0 {
		msgs = append(msgs, fmt.Sprintf(d.T["failed_n"], n))
	}
	d.Message = strings.Join(msgs, " ")
	s.render(w, r, http.StatusOK, "desk_present", d)
}

// presentPage builds the list of those present.
func (s *Server) presentPage(r *http.Request, dr *deskRequest) (*pageData, error) {
	d := s.deskPage(r, dr, "title_present")
	d.Page, d.LiveSeconds = "present", 15
	d.Scripts = append(d.Scripts, "live.js")
	s.forgetOccupancy()
	occ, err := s.occupancy(r.Context())
	if err != nil {
		return nil, err
	}
	d.Occupancy = occupancyRows(occ, dr.site, d.T)
	open, err := s.openVisits(r, dr.site.Code)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if err := s.auditView(r, dr, "list.present", registry.LocalDay(now), len(open)); err != nil {
		return nil, err
	}
	size := map[string]int{}
	for _, v := range open {
		size[v.Party]++
	}
	// Parties together, in order of their first check-in.
	first := map[string]int{}
	for i, v := range open {
		if _, ok := first[v.Party]; !ok {
			first[v.Party] = i
		}
	}
	slices.SortStableFunc(open, func(a, b *registry.Visit) int { return first[a.Party] - first[b.Party] })
	appts := map[string]*registry.Appointment{}
	for _, v := range open { // the appointments of the days the visits began on
		if v.Appointment == "" {
			continue
		}
		if _, ok := appts[v.Appointment]; ok {
			continue
		}
		list, err := s.cfg.Store.Appointments(r.Context(), dr.site.Code, registry.LocalDay(v.CheckIn))
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			appts[a.ID] = a
		}
		if _, ok := appts[v.Appointment]; !ok {
			appts[v.Appointment] = nil // of another day: shown without details
		}
	}
	for i, v := range open {
		row := presentRow{ID: v.ID, Code: s.cfg.Secret.ShortCode(v.ID), Area: v.Area, Party: v.Party,
			Since:      v.CheckIn.In(registry.LocalZone).Format("15:04"),
			Ago:        fmt.Sprintf(d.T["minutes_ago"], int(now.Sub(v.CheckIn).Minutes())),
			GroupStart: i == 0 || open[i-1].Party != v.Party, GroupSize: size[v.Party]}
		if a := appts[v.Appointment]; a != nil {
			row.Appointment = a.Code
			if a.Host != "" {
				row.Appointment += " · " + a.Host
			}
		}
		row.WalkIn = v.Appointment == "" && dr.site.RequiresAppointment
		row.Group = d.T["alone"]
		if row.GroupSize > 1 {
			row.Group = fmt.Sprintf(d.T["group_of"], row.GroupSize)
		}
		d.Present = append(d.Present, row)
	}
	return d, nil
}

// openVisits are the site's open visits within the longest stay.
func (s *Server) openVisits(r *http.Request, site string) ([]*registry.Visit, error) {
	return s.cfg.Store.OpenVisits(r.Context(), site, s.cfg.Now().Add(-s.cfg.MaxStay))
}

// handleDeskClose serves GET /desk/{site}/close: the confirmation of
// checking everyone out.
func (s *Server) handleDeskClose(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	open, err := s.openVisits(r, dr.site.Code)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	if err := s.auditView(r, dr, "list.close", registry.LocalDay(s.cfg.Now()), len(open)); err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	d := s.deskPage(r, dr, "checkout_everyone")
	d.Page, d.Count = "present", len(open)
	d.Message = fmt.Sprintf(d.T["confirm_all"], len(open))
	s.render(w, r, http.StatusOK, "desk_close", d)
}

var (
	deskCheckoutFields = map[string]bool{"v": true, "party": true, "code": true, "all": true, "lang": true}
	deskCheckoutMulti  = map[string]bool{"v": true}
)

// handleDeskCheckout serves POST /desk/{site}/checkout: the selected
// visits (v), a party (party), the visit of a short code or a scanned
// slip (code), or everyone present (all). 303 to the list with the
// numbers; 404 with the list for a code no one present has.
func (s *Server) handleDeskCheckout(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	vals, err := s.readForm(w, r, deskCheckoutFields, deskCheckoutMulti)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	dr.lang = formLang(vals.get("lang"))
	open, err := s.openVisits(r, dr.site.Code)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	var ids []string
	switch {
	case vals.get("code") != "":
		if id := s.visitOfCode(open, vals.get("code")); id != "" {
			ids = []string{id}
		} else {
			d, err := s.presentPage(r, dr)
			if err != nil {
				s.renderError(w, r, dr.lang, err, nil, nil)
				return
			}
			d.Message, d.Alert = d.T["code_unknown"], true
			s.render(w, r, http.StatusNotFound, "desk_present", d)
			return
		}
	case vals.get("party") != "":
		for _, v := range open {
			if v.Party == vals.get("party") {
				ids = append(ids, v.ID)
			}
		}
	case vals.get("all") != "":
		for _, v := range open {
			ids = append(ids, v.ID)
		}
	default:
		ids = vals["v"]
	}
	done, failed := 0, 0
	if len(ids) > 0 {
		errs, err := s.cfg.Intake.CheckOutAtDesk(r.Context(), dr.user, dr.site.Code, ids)
		if err != nil {
			s.renderError(w, r, dr.lang, err, nil, nil)
			return
		}
		for _, e := range errs {
			if e == nil {
				done++
			} else {
				failed++
			}
		}
	}
	s.forgetOccupancy()
	q := url.Values{"lang": {dr.lang}, "done": {strconv.Itoa(done)}, "failed": {strconv.Itoa(failed)}}
	http.Redirect(w, r, "/desk/"+dr.site.Code+"/present?"+q.Encode(), http.StatusSeeOther)
}

// visitOfCode returns the id of the open visit a typed short code or a
// scanned slip (the check-out link, whose fragment holds the ticket)
// names, or "".
func (s *Server) visitOfCode(open []*registry.Visit, code string) string {
	if _, frag, ok := strings.Cut(code, "#"); ok {
		for _, t := range parseTickets(frag) {
			for _, v := range open {
				if v.ID == t.ID && s.cfg.Secret.VerifyCheckoutToken(t.ID, t.Token) {
					return v.ID
				}
			}
		}
		return ""
	}
	want := registry.NormalizeShortCode(code)
	for _, v := range open {
		if s.cfg.Secret.ShortCode(v.ID) == want {
			return v.ID
		}
	}
	return ""
}

// handleDeskPoster serves GET /desk/{site}/poster.pdf?area=: the
// entrance poster of the site or one of its areas.
func (s *Server) handleDeskPoster(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	area := r.URL.Query().Get("area")
	if !dr.site.SelfCheckin {
		d := s.deskPage(r, dr, "title_error")
		d.Message, d.Alert = d.T["poster_off"], true
		s.render(w, r, http.StatusConflict, "message", d)
		return
	}
	if area != "" && !dr.site.HasArea(area) {
		s.renderMessage(w, r, http.StatusNotFound, dr.lang, "title_notfound", "msg_notfound", nil)
		return
	}
	p := &poster.Poster{Site: dr.site, Area: area, URL: CheckinURL(s.baseURL(r), dr.site.Code, area),
		RetentionDays: int(s.cfg.Retention / (24 * time.Hour)), Created: s.cfg.Now()}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `attachment; filename="aushang-`+dr.site.Code+`.pdf"`)
	if err := p.Write(w); err != nil {
		s.cfg.Logger.Error("write poster", "site", dr.site.Code, "error", err)
	}
}

// CheckinURL is the public form's URL of a site (and area) under base.
func CheckinURL(base, site, area string) string {
	u := strings.TrimSuffix(base, "/") + "/checkin/" + site
	if area != "" {
		u += "?" + url.Values{"area": {area}}.Encode()
	}
	return u
}

var passwordFields = map[string]bool{"current": true, "new": true, "repeat": true, "lang": true, "username": true}

var passwordSpecs = []fieldSpec{
	{"current", "current-password", "password", true},
	{"new", "new-password", "password", true},
	{"repeat", "new-password", "password", true},
}

// handleDeskPassword serves GET and POST /desk/password: the own
// password, changed with the current one; the other sessions of the
// account end.
func (s *Server) handleDeskPassword(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	bad := map[string]bool{}
	d := s.deskPage(r, dr, "title_password")
	d.Page = "password"
	if dr.user.MustChange {
		d.Message = d.T["must_change"]
	}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		vals, err := s.readForm(w, r, passwordFields, nil)
		if err != nil {
			s.renderError(w, r, dr.lang, err, nil, nil)
			return
		}
		dr.lang = formLang(vals.get("lang"))
		d = s.deskPage(r, dr, "title_password")
		d.Page = "password"
		now, client := s.cfg.Now(), s.limits.clientKey(r)
		switch {
		case s.limits.authFailures.exhausted(client, now):
			s.metrics.countLimited("auth_failures")
			_, wait := s.limits.authFailures.allow(client, now)
			w.Header().Set("Retry-After", retrySeconds(wait))
			d.Message, d.Alert, status = d.T["login_limited"], true, http.StatusTooManyRequests
		case !crypto.VerifyPassword(dr.user.PasswordHash, vals.get("current")):
			s.limits.authFailures.allow(client, now)
			bad["current"] = true
		case registry.CheckPassword(dr.user.Login, vals.get("new")) != nil:
			bad["new"] = true
		case vals.get("new") != vals.get("repeat"):
			bad["repeat"] = true
		default:
			u := *dr.user
			u.PasswordHash, u.MustChange = crypto.HashPassword(vals.get("new")), false
			if err := s.cfg.Store.UpdateUser(r.Context(), u.Actor(), &u, "password"); err != nil {
				s.renderError(w, r, dr.lang, err, nil, nil)
				return
			}
			if err := s.startSession(r.Context(), w, r, u.Login, now); err != nil {
				s.renderError(w, r, dr.lang, err, nil, nil)
				return
			}
			if dr.user.MustChange { // the first sign-in: on to the account's own page
				http.Redirect(w, r, homeOf(&u)+"?changed=password&lang="+dr.lang, http.StatusSeeOther)
				return
			}
			dr.user = &u
			d = s.deskPage(r, dr, "title_password")
			d.Page, d.Message = "password", d.T["password_changed"]
		}
		if len(bad) > 0 {
			status = http.StatusBadRequest
		}
	}
	for _, f := range passwordSpecs {
		d.Fields = append(d.Fields, d.input(f, f.name, "", nil, bad))
	}
	d.summarize(bad)
	s.render(w, r, status, "desk_password", d)
}

// handleHostPage serves GET /desk/{site}/host to host accounts: their own
// appointments of the day at the site with their status, so that the
// host sees the visitor arrive (by code and time, never by name). The
// page updates its list every 5 seconds (live.js; without scripts it
// reloads every 20 seconds) and announces an arrival to screen readers.
func (s *Server) handleHostPage(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	if dr.user.Role != registry.UserHost {
		http.Redirect(w, r, "/desk/"+dr.site.Code+"/day?lang="+dr.lang, http.StatusSeeOther)
		return
	}
	d, err := s.hostPage(r, dr)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	s.render(w, r, http.StatusOK, "desk_host", d)
}

// hostPage is the host's own appointments of the day.
func (s *Server) hostPage(r *http.Request, dr *deskRequest) (*pageData, error) {
	now := s.cfg.Now()
	list, err := s.cfg.Store.Appointments(r.Context(), dr.site.Code, registry.LocalDay(now))
	if err != nil {
		return nil, err
	}
	d := s.deskPage(r, dr, "title_host")
	d.Page, d.Refresh, d.LiveSeconds = "host", 20, 5
	d.Scripts = append(d.Scripts, "live.js")
	d.Updated = fmt.Sprintf(d.T["host_updated"], now.In(registry.LocalZone).Format("15:04:05"))
	d.Day = &dayNav{Date: string(registry.LocalDay(now)), Today: true}
	for _, a := range list {
		if a.Host != dr.user.Host {
			continue
		}
		st := a.StatusAt(now)
		row := dayRow{From: a.Start.In(registry.LocalZone).Format("15:04"), To: a.End.In(registry.LocalZone).Format("15:04"),
			Code: a.Code, Host: a.Host, Area: a.Area, Status: string(st), StatusText: d.T["status_"+string(st)],
			CanCancel: a.Status == registry.AppointmentExpected && a.End.After(now)}
		if a.ArrivedAt != nil {
			at := a.ArrivedAt.In(registry.LocalZone).Format("15:04")
			row.StatusText += " " + fmt.Sprintf(d.T["arrived_at"], at)
			if st == registry.AppointmentArrived {
				row.Announce = fmt.Sprintf(d.T["host_announce"], a.Code, at)
			}
		}
		d.Appointments = append(d.Appointments, row)
	}
	if err := s.auditView(r, dr, "list.host", registry.LocalDay(now), len(d.Appointments)); err != nil {
		return nil, err
	}
	return d, nil
}

// dayRow is one appointment on the desk's day list: no visitor data, an
// appointment holds none.
type dayRow struct {
	From, To, Code, Host, Area, Status, StatusText string
	CanRegister                                    bool
	// Announce is what the host's page says aloud when the visitor
	// arrives (screen readers; live.js).
	Announce string
	// CanCancel offers the button that cancels an expected appointment.
	CanCancel bool
}

// handleDeskDay serves GET /desk/{site}/day[?date=YYYY-MM-DD]: a day's
// appointments of the site by time (default today), with their status,
// for today's expected ones a link that registers the visitor from the
// appointment, and for every expected one a button that cancels it.
func (s *Server) handleDeskDay(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	day := registry.LocalDay(s.cfg.Now())
	if q := r.URL.Query().Get("date"); q != "" {
		d, ok := parseDate(q)
		if !ok {
			s.renderMessage(w, r, http.StatusBadRequest, dr.lang, "title_error", "msg_bad_date", nil)
			return
		}
		day = d
	}
	d, err := s.dayPage(r, dr, day)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	s.render(w, r, http.StatusOK, "desk_day", d)
}

// parseDate parses a YYYY-MM-DD date.
func parseDate(s string) (registry.Day, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return "", false
	}
	return registry.Day(s), true
}

// dayNav is the day a day list shows and its neighbours.
type dayNav struct {
	Date, Prev, Next, Label string
	Today                   bool
}

// dayPage is the day list of day.
func (s *Server) dayPage(r *http.Request, dr *deskRequest, day registry.Day) (*pageData, error) {
	now := s.cfg.Now()
	list, err := s.cfg.Store.Appointments(r.Context(), dr.site.Code, day)
	if err != nil {
		return nil, err
	}
	if err := s.auditView(r, dr, "list.day", day, len(list)); err != nil {
		return nil, err
	}
	d := s.deskPage(r, dr, "title_day")
	d.Page = "day"
	t, _ := time.ParseInLocation(time.DateOnly, string(day), registry.LocalZone)
	d.Day = &dayNav{Date: string(day), Prev: t.AddDate(0, 0, -1).Format(time.DateOnly), Next: t.AddDate(0, 0, 1).Format(time.DateOnly),
		Label: t.Format("02.01.2006"), Today: day == registry.LocalDay(now)}
	if !d.Day.Today {
		d.Title = fmt.Sprintf(d.T["title_day_on"], d.Day.Label)
	}
	for _, a := range list {
		st := a.StatusAt(now)
		d.Appointments = append(d.Appointments, dayRow{
			From: a.Start.In(registry.LocalZone).Format("15:04"), To: a.End.In(registry.LocalZone).Format("15:04"),
			Code: a.Code, Host: a.Host, Area: a.Area, Status: string(st), StatusText: d.T["status_"+string(st)],
			CanRegister: dr.user.Role == registry.UserDesk && d.Day.Today && (st == registry.AppointmentExpected || st == registry.AppointmentNoShow),
			CanCancel:   a.Status == registry.AppointmentExpected && a.End.After(now),
		})
	}
	return d, nil
}

var cancelFields = map[string]bool{"code": true, "date": true, "lang": true}

// readDeskForm reads a desk form of single values with the allowed
// fields and takes its language; on error it has answered and ok is false.
func (s *Server) readDeskForm(w http.ResponseWriter, r *http.Request, dr *deskRequest, allowed map[string]bool) (vals map[string]string, ok bool) {
	posted, err := s.readForm(w, r, allowed, nil)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return nil, false
	}
	vals = posted.singles()
	dr.lang = formLang(vals["lang"])
	return vals, true
}

// handleDeskCancel serves POST /desk/{site}/cancel: cancels an expected
// appointment of the day list (desk and scheduler accounts; a host its
// own, from its page) and shows the list again with what was done.
func (s *Server) handleDeskCancel(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	vals, ok := s.readDeskForm(w, r, dr, cancelFields)
	if !ok {
		return
	}
	day, ok := parseDate(vals["date"])
	code := registry.NormalizeCode(vals["code"])
	if !ok || code == "" {
		s.renderMessage(w, r, http.StatusBadRequest, dr.lang, "title_error", "msg_bad_cancel", nil)
		return
	}
	a, err := s.cfg.Store.FindAppointment(r.Context(), dr.site.Code, day, code)
	if err == nil && dr.user.Role == registry.UserHost && a.Host != dr.user.Host {
		err = registry.Errorf(registry.ENOTFOUND, "There is no appointment %s of yours on %s.", code, day)
	}
	if err == nil {
		_, err = s.cfg.Store.CancelAppointment(r.Context(), dr.user.Actor(), a.ID, s.cfg.Now())
	}
	status, msg, alert := http.StatusOK, "", false
	switch registry.ErrorCode(err) {
	case "":
	case registry.ENOTFOUND:
		status, msg, alert = http.StatusNotFound, "msg_cancel_unknown", true
	case registry.ECONFLICT:
		status, msg, alert = http.StatusConflict, "msg_cancel_conflict", true
	default:
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	var d *pageData
	if dr.user.Role == registry.UserHost {
		d, err = s.hostPage(r, dr)
	} else {
		d, err = s.dayPage(r, dr, day)
	}
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	if msg == "" {
		d.Message = fmt.Sprintf(d.T["msg_cancelled"], code)
	} else {
		d.Message, d.Alert = fmt.Sprintf(d.T[msg], code), alert
	}
	page := "desk_day"
	if dr.user.Role == registry.UserHost {
		page = "desk_host"
	}
	s.render(w, r, status, page, d)
}

// bookSpecs are the inputs of the booking form.
var (
	bookSpecs = []fieldSpec{{"host", "off", "text", true}, {"area", "off", "text", false}, {"date", "off", "date", true},
		{"arrival", "off", "time", true}, {"departure", "off", "time", true}, {"note", "off", "textarea", false}}
	bookFields = map[string]bool{"host": true, "area": true, "date": true, "arrival": true, "departure": true, "note": true, "nonce": true, "lang": true, "overlap": true}
)

// hostAppointments lists the host's appointments at the site (not
// cancelled) that overlap [from, to), as "T-4711 10:00–10:30".
func (s *Server) hostAppointments(ctx context.Context, site, host string, from, to time.Time) ([]string, error) {
	var out []string
	for day := registry.LocalDay(from); day <= registry.LocalDay(to.Add(-time.Nanosecond)); day = registry.LocalDay(registry.LocalDayStart(day).AddDate(0, 0, 1)) {
		list, err := s.cfg.Store.Appointments(ctx, site, day)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			if a.Host == host && a.Status != registry.AppointmentCancelled && a.Start.Before(to) && a.End.After(from) {
				out = append(out, a.Code+" "+a.Start.In(registry.LocalZone).Format("15:04")+"–"+a.End.In(registry.LocalZone).Format("15:04"))
			}
		}
	}
	return out, nil
}

// bookForm is the booking form with vals and the inputs bad names marked.
func (s *Server) bookForm(r *http.Request, dr *deskRequest, nonce string, vals map[string]string, bad map[string]bool) *pageData {
	d := s.deskPage(r, dr, "title_book")
	d.Page, d.Nonce = "book", nonce
	for _, f := range bookSpecs {
		in := d.input(f, f.name, "book_", vals, bad)
		switch {
		case f.name == "host" && dr.user.Role == registry.UserHost:
			in.Options = []option{{Value: dr.user.Host, Label: dr.user.Host, Selected: true}} // a host books its own
		case f.name == "host" && len(dr.site.Hosts) > 0:
			in.Options = []option{{Value: "", Label: d.T["book_choose"], Selected: vals["host"] == ""}}
			for _, h := range dr.site.Hosts {
				in.Options = append(in.Options, option{Value: h, Label: h, Selected: vals["host"] == h})
			}
		case f.name == "area" && len(dr.site.Areas) > 0:
			in.Options = areaOptions(dr.site, vals["area"], d.T["area_none"])
		}
		d.Fields = append(d.Fields, in)
	}
	d.summarize(bad)
	return d
}

// handleBookPage serves GET /desk/{site}/book: the service line's form
// to make an appointment (scheduler and desk accounts, and host accounts
// for their own appointments).
func (s *Server) handleBookPage(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	vals := map[string]string{"date": s.cfg.Now().In(registry.LocalZone).Format(time.DateOnly)}
	s.render(w, r, http.StatusOK, "desk_book", s.bookForm(r, dr, issueNonce(s.formKey, dr.site.Code, s.cfg.Now()), vals, nil))
}

// handleBook serves POST /desk/{site}/book: 200 with the form again and
// the new appointment's code to tell the caller, 400 naming every input at
// fault. The form's nonce is the appointment's UID, so that submitting the
// same form twice books once.
func (s *Server) handleBook(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	vals, ok := s.readDeskForm(w, r, dr, bookFields)
	if !ok {
		return
	}
	var err error
	now := s.cfg.Now()
	if !checkNonce(s.formKey, dr.site.Code, vals["nonce"], now) {
		d := s.bookForm(r, dr, issueNonce(s.formKey, dr.site.Code, now), vals, nil)
		d.Message, d.Alert = d.T["msg_form_expired"], true
		s.render(w, r, http.StatusBadRequest, "desk_book", d)
		return
	}
	bad := map[string]bool{}
	if dr.user.Role == registry.UserHost && vals["host"] != dr.user.Host {
		bad["host"] = true // a host books its own appointments only
	}
	at := func(clock string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", vals["date"]+" "+vals[clock], registry.LocalZone)
		if err != nil {
			bad[clock] = true
		}
		return t
	}
	in := &registry.AppointmentInput{Site: dr.site.Code, Host: vals["host"], Area: vals["area"], Start: at("arrival"), End: at("departure"),
		UID: "desk-" + vals["nonce"], Note: vals["note"]}
	var a *registry.Appointment
	if len(bad) == 0 && in.Host != "" && vals["overlap"] != "1" {
		// The host has another appointment then: warn, book only when
		// the scheduler confirms.
		clash, err := s.hostAppointments(r.Context(), dr.site.Code, in.Host, in.Start, in.End)
		if err != nil {
			s.renderError(w, r, dr.lang, err, nil, nil)
			return
		}
		if len(clash) > 0 {
			d := s.bookForm(r, dr, vals["nonce"], vals, nil)
			d.Notice, d.Overlap = fmt.Sprintf(d.T["book_overlap"], in.Host, strings.Join(clash, ", ")), true
			s.render(w, r, http.StatusConflict, "desk_book", d)
			return
		}
	}
	if len(bad) == 0 {
		if a, err = registry.NewAppointment(in, dr.site, "desk", now); err == nil {
			a, _, err = s.cfg.Booking.Book(r.Context(), dr.user.Actor(), a, in.Note)
		}
		for _, is := range registry.ErrorFields(err) {
			switch is.Field {
			case "start":
				bad["arrival"] = true
			case "end":
				bad["departure"] = true
			default:
				bad[is.Field] = true
			}
		}
		if err != nil && len(bad) == 0 {
			s.renderError(w, r, dr.lang, err, nil, nil)
			return
		}
	}
	if len(bad) > 0 {
		s.metrics.countError(registry.EINVALID)
		s.render(w, r, http.StatusBadRequest, "desk_book", s.bookForm(r, dr, vals["nonce"], vals, bad))
		return
	}
	d := s.bookForm(r, dr, issueNonce(s.formKey, dr.site.Code, now), map[string]string{"date": vals["date"]}, nil)
	d.Message = fmt.Sprintf(d.T["book_done"], a.Code, a.Start.In(registry.LocalZone).Format("02.01.2006 15:04"), a.Host)
	if a.Host != "" { // the host's day, to book the next one around it
		day := registry.LocalDayStart(registry.LocalDay(a.Start))
		all, err := s.hostAppointments(r.Context(), dr.site.Code, a.Host, day, day.AddDate(0, 0, 1))
		if err != nil {
			s.renderError(w, r, dr.lang, err, nil, nil)
			return
		}
		d.Notice = fmt.Sprintf(d.T["book_host_day"], a.Host, strings.Join(all, ", "))
	}
	s.render(w, r, http.StatusOK, "desk_book", d)
}
