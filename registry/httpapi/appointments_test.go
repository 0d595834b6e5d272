package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
)

// apptSite is a site by appointment only, with hosts.
func apptSite() *registry.Site {
	s := browserSite()
	s.RequiresAppointment = true
	s.Hosts = []string{"Bürgerbüro", "Standesamt Frau Roth"}
	return s
}

// TestAppointmentsAPI: the booking system books, lists and cancels; a
// retry with the same uid books once; the token's site binds it.
func TestAppointmentsAPI(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	s.PutSite(t, &registry.Site{Code: "bauamt", Name: "Bauamt"})
	secret, _ := s.Token(t, registry.RoleScheduler, "rathaus")
	intakeSecret, _ := s.Token(t, registry.RoleIntake, "")
	as := func(secret, method, path, body string) *response {
		h := hdr("Authorization", "Bearer "+secret)
		if body != "" {
			h.Set("Content-Type", "application/json")
		}
		return s.do(t, request{method: method, path: path, header: h, body: body})
	}
	start := intaketest.Start.Add(time.Hour)
	book := func(extra string) *response {
		return as(secret, "POST", "/v1/appointments", `{"site":"rathaus","host":"Bürgerbüro","area":"Bürgerbüro","start":"`+
			start.Format(time.RFC3339)+`","end":"`+start.Add(30*time.Minute).Format(time.RFC3339)+`"`+extra+`}`)
	}
	r := book(`,"uid":"termin-1"`)
	wantStatus(t, r, 201)
	var a struct {
		ID, Code, Status string
		Day              registry.Day
	}
	if err := json.Unmarshal(r.body, &a); err != nil || !regexp.MustCompile(`^T-\d{4}$`).MatchString(a.Code) || a.Status != "expected" {
		t.Fatalf("booking = %s (%v)", r.body, err)
	}
	r = book(`,"uid":"termin-1"`)
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.body), a.Code) {
		t.Errorf("retry booked another appointment: %s", r.body)
	}
	wantStatus(t, as(secret, "POST", "/v1/appointments", `{"site":"rathaus","host":"Niemand","start":"x"}`), 400)
	r = as(secret, "POST", "/v1/appointments", `{"site":"rathaus","host":"Niemand","start":"`+start.Format(time.RFC3339)+`","end":"`+start.Format(time.RFC3339)+`"}`)
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.body), `"#/host"`) || !strings.Contains(string(r.body), `"#/end"`) {
		t.Errorf("invalid booking names %s, want host and end", r.body)
	}
	wantStatus(t, as(secret, "POST", "/v1/appointments", `{"site":"bauamt","host":"x","start":"`+start.Format(time.RFC3339)+`","end":"`+start.Add(time.Hour).Format(time.RFC3339)+`"}`), 403)
	wantStatus(t, as(intakeSecret, "POST", "/v1/appointments", `{}`), 403)

	r = as(secret, "GET", "/v1/appointments?site=rathaus&date="+string(a.Day), "")
	wantStatus(t, r, 200)
	if strings.Count(string(r.body), `"code"`) != 1 {
		t.Errorf("list = %s, want one appointment", r.body)
	}
	wantStatus(t, as(secret, "POST", "/v1/appointments/rathaus/"+string(a.Day)+"/"+a.Code+"/cancel", ""), 200)
	wantStatus(t, as(secret, "POST", "/v1/appointments/rathaus/"+string(a.Day)+"/"+a.Code+"/cancel", ""), 409)
	wantStatus(t, as(secret, "POST", "/v1/appointments/rathaus/"+string(a.Day)+"/T-0000/cancel", ""), 404)
}

// TestRegisterByAppointment: at a site by appointment only the API needs a
// code of the day or a walk-in reason; a code marks the appointment
// arrived and fills in host and area; the public form asks for the code.
func TestRegisterByAppointment(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	a := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", intaketest.Start.Add(10*time.Minute))
	reg := intaketest.Registration("appt")
	reg.Site, reg.Host, reg.Area = "rathaus", "", ""
	post := func(mod func(*registry.Registration)) *response {
		r := *reg
		mod(&r)
		return s.register(t, regJSON(t, &r), "")
	}
	r := post(func(*registry.Registration) {})
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.body), `"#/appointment"`) {
		t.Errorf("no code at a site by appointment only: %s", r.body)
	}
	wantStatus(t, post(func(r *registry.Registration) { r.Appointment = "T-0000" }), 400)
	wantStatus(t, post(func(r *registry.Registration) { r.Appointment = "NO-SUCH-APPT" }), 400)
	r = post(func(r *registry.Registration) { r.WalkIn = "because" })
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.body), `"#/walk_in"`) {
		t.Errorf("unknown walk-in reason: %s", r.body)
	}
	wantStatus(t, post(func(r *registry.Registration) { r.WalkIn = "urgent" }), 201)
	code := strings.Replace(a.Code, "T-", "t ", 1) // as typed
	r = post(func(r *registry.Registration) { r.Appointment = code })
	wantStatus(t, r, 201)
	id := r.created(t).ID
	v, c, err := s.Open(t, id)
	if err != nil || c.Appointment != a.Code || c.Host != "Standesamt Frau Roth" || v.Area != "Standesamt" {
		t.Errorf("visit from the appointment: area %q, contact appointment %q host %q (%v)", v.Area, c.Appointment, c.Host, err)
	}
	got, err := s.Store.FindAppointment(t.Context(), "rathaus", a.Day, a.Code)
	if err != nil || got.Status != registry.AppointmentArrived || got.VisitID != id {
		t.Errorf("appointment after registration: %+v, %v", got, err)
	}
	ev, err := s.Store.LastAudit(t.Context(), registry.AuditVisitsRegistered)
	if err != nil || !strings.Contains(ev.Details, `"appointments":1`) {
		t.Errorf("registration event: %v %v", ev, err)
	}
	walk := s.auditWith(t, registry.AuditVisitsRegistered, `"walk_ins":{"urgent":1}`)
	if !walk {
		t.Errorf("the walk-in's reason is not in the audit log")
	}

	// The public form asks for the code, and refuses a visitor without one
	// (the walk-in override is the desk's).
	page := wantPage(t, s.do(t, request{method: "GET", path: "/checkin/rathaus"}), 200)
	if !strings.Contains(page, `name="appointment"`) || !strings.Contains(page, "Termin-Code") {
		t.Errorf("public form of a site by appointment only lacks the code input")
	}
	postPublic := func(extra url.Values) string {
		vals := url.Values{"nonce": {getForm(t, s, "rathaus")}, "lang": {"de"}, "given_name": {"Eva"}, "family_name": {"Ohnetermin"},
			"street": {"Weg"}, "house_number": {"1"}, "postcode": {"12345"}, "city": {"Ort"}, "phone": {"+49 30 1234567"}}
		for k, v := range extra {
			vals[k] = v
		}
		r := s.do(t, request{method: "POST", path: "/checkin/rathaus", header: hdr("Content-Type", "application/x-www-form-urlencoded"), body: vals.Encode()})
		return string(r.body)
	}
	if body := postPublic(nil); !strings.Contains(body, "den Sie am Telefon erhalten haben") {
		t.Errorf("public form without a code: no error about the code")
	}
	if body := postPublic(url.Values{"walk_in": {"urgent"}}); strings.Contains(body, "Sie sind angemeldet") {
		t.Errorf("the public form took a walk-in reason")
	}
	b := s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", intaketest.Start.Add(20*time.Minute))
	if body := postPublic(url.Values{"appointment": {b.Code}}); !strings.Contains(body, "Sie sind angemeldet") {
		t.Errorf("public form with the code: not registered")
	}
	if got, _ := s.Store.FindAppointment(t.Context(), "rathaus", b.Day, b.Code); got.Status != registry.AppointmentArrived {
		t.Errorf("the visitor's own check-in did not mark the appointment arrived: %s", got.Status)
	}
}

// appointment books one through the store, as the service line does.
func (s *testServer) appointment(t *testing.T, site, host, area string, start time.Time) *registry.Appointment {
	t.Helper()
	st, err := s.Store.Site(t.Context(), site)
	if err != nil {
		t.Fatal(err)
	}
	a, err := registry.NewAppointment(&registry.AppointmentInput{Site: site, Host: host, Area: area, Start: start, End: start.Add(30 * time.Minute)},
		st, "cli", s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a, _, err = s.Store.CreateAppointment(t.Context(), "user:service", a, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

// auditWith reports whether an event of the action holds details.
func (s *testServer) auditWith(t *testing.T, action, details string) bool {
	t.Helper()
	evs, err := s.Store.AuditEvents(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == action && strings.Contains(e.Details, details) {
			return true
		}
	}
	return false
}

// TestDeskDayPage: the day list over HTTP, and the form filled from an
// appointment.
func TestDeskDayPage(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	a := s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", s.Clock.Now().Add(time.Hour))
	c := newDeskClient(t, s)
	c.signIn("pforte", pw)
	status, body := c.page("GET", "/desk/rathaus/day", nil)
	if status != 200 || !strings.Contains(body, a.Code) || !strings.Contains(body, "erwartet") || !strings.Contains(body, "?appointment="+a.Code) {
		t.Fatalf("day page: %d\n%s", status, body)
	}
	status, body = c.page("GET", "/desk/rathaus/?appointment="+a.Code, nil)
	if status != 200 || !strings.Contains(body, `value="`+a.Code+`"`) || !strings.Contains(body, `name="walk_in"`) {
		t.Errorf("form from the appointment: %d", status)
	}
	// "Im Haus" names the appointment and its host, and marks a walk-in
	// at this site by appointment only; it updates itself (live.js).
	reg := intaketest.Registration("termin")
	reg.Site, reg.Area, reg.Appointment = "rathaus", "Bürgerbüro", a.Code
	wantStatus(t, s.register(t, regJSON(t, reg), ""), 201)
	walk := intaketest.Registration("ohne")
	walk.Site, walk.Area, walk.WalkIn = "rathaus", "Standesamt", registry.WalkInReasons[0].Code
	wantStatus(t, s.register(t, regJSON(t, walk), ""), 201)
	_, body = c.page("GET", "/desk/rathaus/present", nil)
	if !strings.Contains(body, "<td>"+a.Code+" · Bürgerbüro</td>") || strings.Count(body, "<strong>ohne Termin</strong>") != 1 || !strings.Contains(body, "/static/live.js") {
		t.Errorf("the list of those present lacks the appointment, the walk-in mark or live.js:\n%s", body)
	}

	// Another day: its appointments, cancellable, not yet registrable.
	later := s.appointment(t, "rathaus", "Bürgerbüro", "", s.Clock.Now().Add(25*time.Hour))
	date := string(later.Day)
	status, body = c.page("GET", "/desk/rathaus/day?date="+date, nil)
	if status != 200 || !strings.Contains(body, later.Code) || strings.Contains(body, a.Code) || strings.Contains(body, "?appointment=") ||
		!strings.Contains(body, "Termine am ") || !strings.Contains(body, `name="code" value="`+later.Code+`"`) {
		t.Fatalf("day list of %s: %d\n%s", date, status, body)
	}
	if status, _ := c.page("GET", "/desk/rathaus/day?date=2026-13-01", nil); status != 400 {
		t.Errorf("day list of a malformed date: %d, want 400", status)
	}
	// The caller cancels: the list says so, a second cancel is refused.
	cancel := url.Values{"code": {strings.ToLower(later.Code)}, "date": {date}, "lang": {"de"}}
	status, body = c.page("POST", "/desk/rathaus/cancel", cancel)
	if status != 200 || !strings.Contains(body, "Termin "+later.Code+" abgesagt") || !strings.Contains(body, "abgesagt</td>") {
		t.Errorf("cancel: %d\n%s", status, body)
	}
	if got, _ := s.Store.FindAppointment(t.Context(), "rathaus", later.Day, later.Code); got.Status != registry.AppointmentCancelled {
		t.Errorf("after the cancel: %s", got.Status)
	}
	if status, body := c.page("POST", "/desk/rathaus/cancel", cancel); status != 409 || !strings.Contains(body, "nicht mehr offen") {
		t.Errorf("second cancel: %d", status)
	}
	if status, _ := c.page("POST", "/desk/rathaus/cancel", url.Values{"code": {"T-0000"}, "date": {date}, "lang": {"de"}}); status != 404 {
		t.Errorf("cancel of an unknown code: %d, want 404", status)
	}
	if !s.auditWith(t, registry.AuditAppointment, `"change":"cancelled"`) {
		t.Errorf("the cancel is not in the audit log")
	}
}

// TestHostPage: a host account sees its own appointments of the day and
// the arrival (live.js updates the page, a <noscript> refresh reloads it),
// and nothing else of the desk.
func TestHostPage(t *testing.T) {
	s, _ := deskServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	mine := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", s.Clock.Now().Add(10*time.Minute))
	other := s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", s.Clock.Now().Add(20*time.Minute))
	const pw = "Standesamt-Roth-2026"
	u := &registry.User{Login: "roth", Name: "Frau Roth", Role: registry.UserHost, Host: "Standesamt Frau Roth", Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(pw)}
	if err := s.Store.CreateUser(t.Context(), "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	c := newDeskClient(t, s)
	c.signIn("roth", pw)
	status, body := c.page("GET", "/desk/rathaus/host", nil)
	if status != 200 || !strings.Contains(body, mine.Code) || strings.Contains(body, other.Code) || !strings.Contains(body, `http-equiv="refresh"`) ||
		!strings.Contains(body, "erwartet") {
		t.Fatalf("host page: %d\n%s", status, body)
	}
	// The visitor arrives at the desk.
	reg := intaketest.Registration("roth")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", mine.Code
	wantStatus(t, s.register(t, regJSON(t, reg), ""), 201)
	if _, body = c.page("GET", "/desk/rathaus/host", nil); !strings.Contains(body, "da seit") || strings.Contains(body, reg.FamilyName) ||
		!strings.Contains(body, `data-announce="Ihr Besuch zum Termin `+mine.Code+` ist angekommen`) || !strings.Contains(body, `/static/live.js`) {
		t.Errorf("host page after the arrival lacks the arrival or shows the name:\n%s", body)
	}
	// Nothing of the desk: registering, who is present, the day list.
	for _, path := range []string{"/desk/rathaus/", "/desk/rathaus/present", "/desk/rathaus/day", "/desk/rathaus/paper"} {
		if resp := c.send("GET", path, nil); resp.StatusCode != 303 || !strings.HasSuffix(strings.Split(resp.Header.Get("Location"), "?")[0], "/host") {
			t.Errorf("host account GET %s: %d to %q, want a redirect to its page", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp := c.send("POST", "/desk/rathaus/checkout", url.Values{"code": {"X"}}); resp.StatusCode != 403 {
		t.Errorf("host account POST checkout: %d, want 403", resp.StatusCode)
	}
	// A host books its own appointments, and only its own.
	status, form := c.page("GET", "/desk/rathaus/book", nil)
	hostSelect := regexp.MustCompile(`(?s)<select id="f-host".*?</select>`).FindString(form)
	if status != 200 || !strings.Contains(hostSelect, `<option value="Standesamt Frau Roth" selected>`) || strings.Count(hostSelect, "<option") != 1 {
		t.Fatalf("a host's booking form: %d\n%s", status, form)
	}
	day := s.Clock.Now().In(registry.LocalZone).Format(time.DateOnly)
	book := url.Values{"nonce": {nonceRE.FindStringSubmatch(form)[1]}, "lang": {"de"}, "host": {"Bürgerbüro"}, "date": {day},
		"arrival": {"23:00"}, "departure": {"23:30"}}
	if status, _ := c.page("POST", "/desk/rathaus/book", book); status != 400 {
		t.Errorf("a host booking for another host: %d, want 400", status)
	}
	book.Set("host", "Standesamt Frau Roth")
	if status, body := c.page("POST", "/desk/rathaus/book", book); status != 200 || !strings.Contains(body, "angelegt") {
		t.Errorf("a host booking its own appointment: %d", status)
	}
	list, _ := s.Store.Appointments(t.Context(), "rathaus", registry.LocalDay(s.Clock.Now()))
	if len(list) != 3 || list[2].Host != "Standesamt Frau Roth" || list[2].Source != "desk" {
		t.Fatalf("appointments after the host's booking: %+v", list)
	}
	// A host cancels its own appointments from its page, nobody else's.
	today := string(registry.LocalDay(s.Clock.Now()))
	if status, _ := c.page("POST", "/desk/rathaus/cancel", url.Values{"code": {other.Code}, "date": {today}, "lang": {"de"}}); status != 404 {
		t.Errorf("a host cancelling another host's appointment: %d, want 404", status)
	}
	status, body = c.page("POST", "/desk/rathaus/cancel", url.Values{"code": {list[2].Code}, "date": {today}, "lang": {"de"}})
	if status != 200 || !strings.Contains(body, "abgesagt") || !strings.Contains(body, "Meine Termine heute") {
		t.Errorf("a host cancelling its own appointment: %d\n%s", status, body)
	}
	if got, _ := s.Store.FindAppointment(t.Context(), "rathaus", list[2].Day, list[2].Code); got.Status != registry.AppointmentCancelled {
		t.Errorf("the host's appointment after the cancel: %s", got.Status)
	}
}

// TestBookPage: the service line books on a desk page: every fault at
// once, then the code; the same form twice books once; a scheduler sees
// the day list without the desk's registration links.
func TestBookPage(t *testing.T) {
	s, _ := deskServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	const pw = "Buergertelefon-2026"
	u := &registry.User{Login: "service", Name: "Bürgertelefon", Role: registry.UserScheduler, Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(pw)}
	if err := s.Store.CreateUser(t.Context(), "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	c := newDeskClient(t, s)
	if resp := c.signIn("service", pw); resp.StatusCode != 303 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if resp := c.send("GET", "/desk/", nil); resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/desk/rathaus/book") {
		t.Errorf("a scheduler's start: %d to %q, want the booking page", resp.StatusCode, resp.Header.Get("Location"))
	}
	status, form := c.page("GET", "/desk/rathaus/book", nil)
	if status != 200 || !strings.Contains(form, `name="host"`) || !strings.Contains(form, "Termin vergeben") || strings.Contains(form, "Im Haus") {
		t.Fatalf("a scheduler's start page: %d\n%s", status, form)
	}
	nonce := nonceRE.FindStringSubmatch(form)[1]
	day := s.Clock.Now().In(registry.LocalZone).Format(time.DateOnly)
	status, body := c.page("POST", "/desk/rathaus/book", url.Values{"nonce": {nonce}, "lang": {"de"}, "host": {""}, "area": {"Standesamt"},
		"date": {day}, "arrival": {"23:00"}, "departure": {"22:00"}})
	if status != 400 || !strings.Contains(body, "Bitte wählen Sie, bei wem") || !strings.Contains(body, "Das Ende muss nach dem Beginn") {
		t.Errorf("booking with faults: %d", status)
	}
	book := url.Values{"nonce": {nonce}, "lang": {"de"}, "host": {"Standesamt Frau Roth"}, "area": {"Standesamt"},
		"date": {day}, "arrival": {"23:00"}, "departure": {"23:30"}}
	status, body = c.page("POST", "/desk/rathaus/book", book)
	code := regexp.MustCompile(`Termin (T-[0-9]{4}) am`).FindStringSubmatch(body)
	if status != 200 || code == nil {
		t.Fatalf("booking: %d\n%s", status, body)
	}
	if !strings.Contains(body, "Termine von Standesamt Frau Roth an diesem Tag: "+code[1]+" 23:00–23:30.") {
		t.Errorf("after booking, the host's day is not shown")
	}
	if _, again := c.page("POST", "/desk/rathaus/book", book); !strings.Contains(again, code[1]) {
		t.Errorf("the same form again booked another appointment")
	}
	// Tomorrow, two appointments of the host at overlapping times: the
	// second is warned of and booked only when confirmed.
	tomorrow := s.Clock.Now().In(registry.LocalZone).AddDate(0, 0, 1)
	first := url.Values{"nonce": {nonceRE.FindStringSubmatch(body)[1]}, "lang": {"de"}, "host": {"Standesamt Frau Roth"},
		"date": {tomorrow.Format(time.DateOnly)}, "arrival": {"10:00"}, "departure": {"10:30"}}
	status, body = c.page("POST", "/desk/rathaus/book", first)
	firstCode := regexp.MustCompile(`Termin (T-[0-9]{4}) am`).FindStringSubmatch(body)
	if status != 200 || firstCode == nil {
		t.Fatalf("booking tomorrow: %d", status)
	}
	clash := url.Values{"nonce": {nonceRE.FindStringSubmatch(body)[1]}, "lang": {"de"}, "host": {"Standesamt Frau Roth"},
		"date": {tomorrow.Format(time.DateOnly)}, "arrival": {"10:15"}, "departure": {"10:45"}}
	status, body = c.page("POST", "/desk/rathaus/book", clash)
	if status != 409 || !strings.Contains(body, "Standesamt Frau Roth hat zu dieser Zeit schon einen Termin: "+firstCode[1]+" 10:00–10:30") || !strings.Contains(body, `name="overlap"`) {
		t.Errorf("a double booking: %d, want 409 with the clash and a confirmation", status)
	}
	if list, _ := s.Store.Appointments(t.Context(), "rathaus", registry.LocalDay(tomorrow)); len(list) != 1 {
		t.Errorf("a double booking was stored before it was confirmed")
	}
	clash.Set("overlap", "1")
	if status, body = c.page("POST", "/desk/rathaus/book", clash); status != 200 || !strings.Contains(body, "angelegt") {
		t.Errorf("a confirmed double booking: %d", status)
	}
	if list, _ := s.Store.Appointments(t.Context(), "rathaus", registry.LocalDay(tomorrow)); len(list) != 2 {
		t.Errorf("%d appointments after the confirmed double booking, want 2", len(list))
	}
	list, _ := s.Store.Appointments(t.Context(), "rathaus", registry.LocalDay(s.Clock.Now()))
	if len(list) != 1 || list[0].Source != "desk" || list[0].HasNote {
		t.Errorf("appointments = %+v, want one from the desk without a note", list)
	}
	// A note for the health office, typed over lines: sealed, never shown.
	noted := url.Values{"nonce": {nonceRE.FindStringSubmatch(body)[1]}, "lang": {"de"}, "host": {"Bürgerbüro"}, "date": {day},
		"arrival": {"22:00"}, "departure": {"22:30"}, "note": {strings.Repeat("lang ", 101)}}
	if status, body := c.page("POST", "/desk/rathaus/book", noted); status != 400 || !strings.Contains(body, "Der Hinweis ist zu lang") {
		t.Errorf("a note too long: %d", status)
	}
	noted.Set("note", "Begleitung: Herr Notar\r\nTel. 0171 5550177\r\n")
	status, body = c.page("POST", "/desk/rathaus/book", noted)
	if status != 200 || !strings.Contains(body, "angelegt") || strings.Contains(body, "Notar") {
		t.Fatalf("booking with a note: %d\n%s", status, body)
	}
	list, _ = s.Store.Appointments(t.Context(), "rathaus", registry.LocalDay(s.Clock.Now()))
	if len(list) != 2 || !list[0].HasNote || list[0].NoteEpoch != registry.DayOf(list[0].Start) {
		t.Errorf("appointments = %+v, want the new one first with a note sealed for its day", list)
	}
	if _, body := c.page("GET", "/desk/rathaus/day", nil); strings.Contains(body, "Notar") {
		t.Errorf("the day list shows the note")
	}
	if _, body := c.page("GET", "/desk/rathaus/day", nil); !strings.Contains(body, code[1]) || strings.Contains(body, "?appointment=") {
		t.Errorf("a scheduler's day list lacks the appointment or offers registration")
	}
	if resp := c.send("GET", "/desk/rathaus/present", nil); resp.StatusCode != 303 {
		t.Errorf("a scheduler opens who is present: %d", resp.StatusCode)
	}
}

// TestAppointmentNote: the booking system's note for the health office is
// sealed on arrival at the server, never shown or stored readable, and
// reaches the health office beside its visitor's contact in an export of
// a request by appointment code.
func TestAppointmentNote(t *testing.T) {
	s, path := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s) // visits of others, out of the scope by code
	s.PutSite(t, apptSite())
	secret, _ := s.Token(t, registry.RoleScheduler, "rathaus")
	const note = "Begleitperson Frau Notizia, Tel. 0171 5550199"
	start := s.Clock.Now().Add(10 * time.Minute)
	body := func(note string) string {
		b, _ := json.Marshal(map[string]any{"site": "rathaus", "host": "Bürgerbüro", "start": start, "end": start.Add(30 * time.Minute), "note": note})
		return string(b)
	}
	r := e.as(t, secret, "POST", "/v1/appointments", body(strings.Repeat("x", registry.MaxNoteLength+1)))
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.body), `"#/note"`) {
		t.Errorf("a note too long: %s", r.body)
	}
	// The API's text rules refuse line breaks in every string, naming the
	// field; the desk's form joins lines instead.
	r = e.as(t, secret, "POST", "/v1/appointments", body("Zeile 1\nZeile 2"))
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.body), `"#/note"`) {
		t.Errorf("a note with a line break: %s", r.body)
	}
	r = e.as(t, secret, "POST", "/v1/appointments", body("  "+note+" "))
	wantStatus(t, r, 201)
	var a struct {
		Code    string `json:"code"`
		HasNote bool   `json:"has_note"`
	}
	if err := json.Unmarshal(r.body, &a); err != nil || !a.HasNote || strings.Contains(string(r.body), "Notizia") {
		t.Fatalf("booking with a note = %s (%v)", r.body, err)
	}
	if list := e.as(t, secret, "GET", "/v1/appointments?site=rathaus", ""); strings.Contains(string(list.body), "Notizia") ||
		!strings.Contains(string(list.body), `"has_note":true`) {
		t.Errorf("the list shows the note or hides that there is one: %s", list.body)
	}
	other := s.appointment(t, "rathaus", "Bürgerbüro", "", start)

	reg := intaketest.Registration("Noted")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", a.Code
	r = s.register(t, regJSON(t, reg), "")
	wantStatus(t, r, 201)
	e.inScope = []string{r.created(t).ID} // what exportBundle expects
	reg2 := intaketest.Registration("Unnoted")
	reg2.Site, reg2.Host, reg2.Area, reg2.Appointment = "rathaus", "", "", other.Code
	wantStatus(t, s.register(t, regJSON(t, reg2), ""), 201)

	s.Clock.Add(time.Hour)
	in := traceInput()
	in.From, in.To, in.Areas, in.Appointments = start.Add(-time.Hour), s.Clock.Now(), nil, []string{strings.ToLower(a.Code)}
	id := e.file(t, e.office, in)
	if v := e.view(t, e.office, id); fmt.Sprint(v["appointments"]) != "["+a.Code+"]" {
		t.Errorf("request names appointments %v, want [%s]", v["appointments"], a.Code)
	}
	e.approve(t, id)
	b, _ := e.exportBundle(t, id)
	if len(b.Records) != 1 || b.Records[0].Note != note || b.Records[0].Contact.Appointment != a.Code ||
		!slices.Equal(b.Header.Appointments, []string{a.Code}) {
		t.Fatalf("export by code = %d records %+v, header appointments %v; want the one visitor with the note", len(b.Records), b.Records, b.Header.Appointments)
	}
	closeAll(t, s)
	if files := readDBFiles(t, path); bytes.Contains(files, []byte("Notizia")) || bytes.Contains(files, []byte("5550199")) {
		t.Error("the database files hold the note")
	}
	if strings.Contains(s.logs.String(), "Notizia") {
		t.Error("the log holds the note")
	}
}

// TestScopeByCodeFindsEveryone: three parties register with one
// appointment's code (the visitor with a companion over the API, a second
// person at the desk, a third on their own phone) and a fourth visitor
// without; a request by that code and one by the host each export the
// three parties' four visits, and the preview counts them.
func TestScopeByCodeFindsEveryone(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	site := apptSite()
	s.PutSite(t, site)
	e := &traceEnv{testServer: s}
	e.office, e.officeTok = s.OfficeToken(t, registry.RoleHealthOffice, "", "ga")
	a := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", intaketest.Start.Add(10*time.Minute))
	b := s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", intaketest.Start.Add(10*time.Minute))

	reg := intaketest.Registration("Api")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", a.Code
	body := strings.TrimSuffix(string(regJSON(t, reg)), "}") + `,"companions":[{"given_name":"Companion","family_name":"Api"}]}`
	wantStatus(t, s.register(t, body, ""), 201)
	other := intaketest.Registration("Other")
	other.Site, other.Host, other.Area, other.Appointment = "rathaus", "", "", b.Code
	wantStatus(t, s.register(t, regJSON(t, other), ""), 201)

	c := newDeskClient(t, s)
	c.signIn("pforte", pw)
	_, form := c.page("GET", "/desk/rathaus/", nil)
	desk := url.Values{"nonce": {nonceRE.FindStringSubmatch(form)[1]}, "lang": {"de"}, "rows": {"3"}, "given_name": {"Given"},
		"family_name": {"Desk"}, "street": {"Weg"}, "house_number": {"1"}, "postcode": {"12345"}, "city": {"Ort"},
		"phone": {"+49 30 1234567"}, "appointment": {strings.ToLower(a.Code)}}
	if status, page := c.page("POST", "/desk/rathaus/register", desk); status != 200 || !strings.Contains(page, `class="slip"`) {
		t.Fatalf("desk registration with the code: %d", status)
	}
	public := url.Values{"nonce": {getForm(t, s, "rathaus")}, "lang": {"de"}, "given_name": {"Given"}, "family_name": {"Phone"},
		"street": {"Weg"}, "house_number": {"1"}, "postcode": {"12345"}, "city": {"Ort"}, "phone": {"+49 30 7654321"}, "appointment": {a.Code}}
	if r := s.do(t, request{method: "POST", path: "/checkin/rathaus", header: hdr("Content-Type", "application/x-www-form-urlencoded"),
		body: public.Encode()}); !strings.Contains(string(r.body), "Sie sind angemeldet") {
		t.Fatalf("self check-in with the code failed: %d", r.status)
	}

	for _, in := range []*registry.TraceInput{
		{Appointments: []string{a.Code}},
		{Hosts: []string{"Standesamt Frau Roth"}},
	} {
		in.CaseRef, in.Office, in.LegalBasis, in.Contact = "GA-1", "GA", "§ 25 IfSG", "x"
		in.From, in.To, in.Sites = intaketest.Start.Add(-time.Hour), intaketest.Start.Add(2*time.Minute), []string{"rathaus"}
		id := e.file(t, e.office, in)
		req, _ := s.Store.FindTraceRequest(t.Context(), id)
		counts, err := s.Store.ScopeSummary(t.Context(), req, 12*time.Hour)
		total := 0
		for _, sc := range counts {
			total += sc.Visits
		}
		if err != nil || total != 4 {
			t.Errorf("preview of %v/%v counts %d (%v), want 4", in.Appointments, in.Hosts, total, err)
		}
		e.approve(t, id)
		bundle, _ := e.exportBundle(t, id)
		var names []string
		for _, rec := range bundle.Records {
			names = append(names, rec.Contact.GivenName+" "+rec.Contact.FamilyName)
		}
		slices.Sort(names)
		if want := []string{"Companion Api", "Given Desk", "Given Phone", "GivenApi FamilyApi"}; !slices.Equal(names, want) {
			t.Errorf("export of %v/%v holds %q, want %q", in.Appointments, in.Hosts, names, want)
		}
	}
}

// TestAppointmentCodeFirst: on a site by appointment only the visitors'
// form asks for the code first, with the sentence for those without one,
// and checks a code on its own (204 for an appointment of today, the same
// 404 for an unknown, a cancelled and another site's code).
func TestAppointmentCodeFirst(t *testing.T) {
	s, _ := deskServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	a := s.appointment(t, "rathaus", "Bürgerbüro", "", s.Clock.Now().Add(time.Hour))
	gone := s.appointment(t, "rathaus", "Bürgerbüro", "", s.Clock.Now().Add(2*time.Hour))
	if _, err := s.Store.CancelAppointment(t.Context(), "dpo:it", gone.ID, s.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	elsewhere := s.appointment(t, "bauamt", "Bauamt", "", s.Clock.Now().Add(time.Hour))
	page := wantPage(t, s.do(t, request{method: "GET", path: "/checkin/rathaus"}), 200)
	first := regexp.MustCompile(`<(?:input|select) id="f-([a-z_]+)"`).FindStringSubmatch(page)
	if first == nil || first[1] != "appointment" || !strings.Contains(page, "Ohne Termin-Code wenden Sie sich bitte an die Pforte") || !strings.Contains(page, "/static/checkin.js") {
		t.Errorf("the form's first input is %v, want the appointment with its hint and check", first)
	}
	for code, want := range map[string]int{strings.ToLower(a.Code): 204, gone.Code: 404, elsewhere.Code: 404, "T-0000": 404, "": 404} {
		r := s.do(t, request{method: "GET", path: "/checkin/rathaus/appointment?code=" + code})
		if r.status != want {
			t.Errorf("check of %q: %d, want %d", code, r.status, want)
		}
		if want == 404 && !strings.Contains(string(r.body), "no such appointment today") {
			t.Errorf("check of %q answers %q, not the one answer for every miss", code, r.body)
		}
	}
}
