package httpapi_test

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

const wantCSP = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// newCheckinServer is a SQLite server whose check-in form is on for
// rathaus only.
func newCheckinServer(t *testing.T) *testServer {
	t.Helper()
	s, _ := newSQLiteServer(t, serverOptions{publicSites: []string{"rathaus", "bauamt"}})
	return s
}

// wantPage checks the status and the headers of a check-in page.
func wantPage(t *testing.T, r *response, status int) string {
	t.Helper()
	wantStatus(t, r, status)
	for k, want := range map[string]string{
		"Content-Security-Policy": wantCSP, "Referrer-Policy": "no-referrer",
		"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	return string(r.body)
}

var nonceRE = regexp.MustCompile(`name="nonce" value="([A-Za-z0-9_.-]+)"`)

// getForm fetches the form of site and returns its nonce.
func getForm(t *testing.T, s *testServer, site string) string {
	t.Helper()
	page := wantPage(t, s.do(t, request{method: "GET", path: "/checkin/" + site}), 200)
	m := nonceRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("form has no nonce: %s", page)
	}
	return m[1]
}

// checkinForm is a family as the visitor types it into the form: the
// registrant and companions in rows 1 and 3 (row 2 left empty).
func checkinForm(tag, nonce string) (url.Values, []registry.Registration) {
	reg := *registryWithTag(tag)
	reg.Appointment = "" // the form has no appointment field
	v := url.Values{"nonce": {nonce}, "lang": {"de"}}
	for k, val := range map[string]string{"given_name": reg.GivenName, "family_name": reg.FamilyName,
		"street": reg.Street, "house_number": reg.HouseNumber, "postcode": reg.Postcode, "city": reg.City,
		"phone": reg.Phone, "email": reg.Email, "host": reg.Host, "area": reg.Area} {
		v.Set(k, val)
	}
	people := []registry.Registration{reg}
	for row, name := range map[int][2]string{1: {"Jörg" + tag, "Müller" + tag}, 3: {"Änne" + tag, "Schmidt" + tag}} {
		v.Set(fmt.Sprintf("c%d_given_name", row), name[0])
		v.Set(fmt.Sprintf("c%d_family_name", row), name[1])
	}
	for _, name := range [][2]string{{"Jörg" + tag, "Müller" + tag}, {"Änne" + tag, "Schmidt" + tag}} {
		c := reg
		c.GivenName, c.FamilyName, c.Email = name[0], name[1], ""
		people = append(people, c)
	}
	return v, people
}

// postForm posts form values to path as a browser does.
func postForm(t *testing.T, s *testServer, path string, v url.Values) *response {
	t.Helper()
	return s.do(t, request{method: "POST", path: path, header: hdr("Content-Type", "application/x-www-form-urlencoded"), body: v.Encode()})
}

var ticketRE = regexp.MustCompile(`name="t" value="([0-9a-f]{32})\.(rgc_[A-Za-z0-9_-]{43})"`)

// checkouts returns the visit ids and checkout tokens of a status page's
// check-out buttons, each once, in order.
func checkouts(t *testing.T, page string) [][2]string {
	t.Helper()
	var out [][2]string
	seen := map[string]bool{}
	for _, m := range ticketRE.FindAllStringSubmatch(page, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	return out
}

// ticket is the t field of a check-out form.
func ticket(id, token string) string { return id + "." + token }

func TestCheckinFormRenders(t *testing.T) {
	s := newCheckinServer(t)
	tests := []struct {
		name, path, acceptLang string
		want                   []string
	}{
		{"German by default", "/checkin/rathaus", "", []string{`<html lang="de" dir="ltr">`, "Vorname *", "28 Tagen", "Infektionsketten", `href="/checkin/rathaus?lang=en"`}},
		{"German preferred", "/checkin/rathaus", "de-DE,de;q=0.9,en;q=0.8", []string{`<html lang="de" dir="ltr">`, "Anmelden"}},
		{"English by query", "/checkin/rathaus?lang=en", "de", []string{`<html lang="en" dir="ltr">`, "Given name *", "28 days", `href="/checkin/rathaus?lang=de"`}},
		{"English preferred", "/checkin/bauamt", "fr, en-GB;q=0.8, de;q=0.5", []string{`<html lang="en" dir="ltr">`, `action="/checkin/bauamt"`}},
		{"Turkish preferred", "/checkin/rathaus", "tr-TR,tr;q=0.9,de;q=0.5", []string{`<html lang="tr" dir="ltr">`, "Adı *", "28 gün sonra silinir", `aria-current="true">Türkçe`}},
		{"Arabic, right to left", "/checkin/rathaus?lang=ar", "", []string{`<html lang="ar" dir="rtl">`, "الاسم الأول *", "28 يوماً"}},
		{"Ukrainian", "/checkin/rathaus", "uk", []string{`<html lang="uk" dir="ltr">`, "Прізвище *", "Через 28 днів"}},
		{"Russian", "/checkin/rathaus", "ru-RU", []string{`<html lang="ru" dir="ltr">`, "Через 28 дней"}},
		{"Polish", "/checkin/rathaus", "pl", []string{`<html lang="pl" dir="ltr">`, "po 28 dniach"}},
		{"no pandemic regulation", "/checkin/rathaus", "", []string{"Datenschutz: Wir erfassen"}},
		{"area from the poster", "/checkin/rathaus?area=Saal+2", "", []string{`name="area" type="text" value="Saal 2"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(t, request{method: "GET", path: tt.path, header: hdr("Accept-Language", tt.acceptLang)})
			page := wantPage(t, r, 200)
			for _, want := range append(tt.want, `name="viewport"`, `href="/static/registry.css"`) {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %q:\n%s", want, page)
				}
			}
			if strings.Contains(page, "28a IfSG") || strings.Contains(page, "Corona") {
				t.Errorf("the default notice names a pandemic regulation")
			}
			if strings.Contains(page, "<script") || strings.Contains(page, "style=") {
				t.Errorf("page has scripts or inline styles, which the CSP forbids")
			}
		})
	}
	t.Run("nonce differs per rendering", func(t *testing.T) {
		if a, b := getForm(t, s, "rathaus"), getForm(t, s, "rathaus"); a == b {
			t.Errorf("two renderings share the nonce %s", a)
		}
	})
	t.Run("stylesheet", func(t *testing.T) {
		r := s.do(t, request{method: "GET", path: "/static/registry.css"})
		wantStatus(t, r, 200)
		if got := r.header.Get("Content-Type"); got != "text/css; charset=utf-8" || !strings.Contains(string(r.body), "button") {
			t.Errorf("stylesheet: Content-Type %q, body %q", got, r.body)
		}
	})
}

func TestCheckinSQLite(t *testing.T) {
	s := newCheckinServer(t)
	form, people := checkinForm("Qr1", getForm(t, s, "rathaus"))
	page := wantPage(t, postForm(t, s, "/checkin/rathaus", form), 200)
	if want := "04.03.2025, 10:30 Uhr"; !strings.Contains(page, want) {
		t.Errorf("confirmation lacks the check-in time %q:\n%s", want, page)
	}
	got := checkouts(t, page)
	if len(got) != len(people) {
		t.Fatalf("confirmation has %d check-out buttons, want %d:\n%s", len(got), len(people), page)
	}
	for i, p := range people {
		checkStored(t, s, sent{reg: p, answer: created{ID: got[i][0], CheckoutToken: got[i][1], CheckIn: s.Clock.Now()}})
		if name := html.EscapeString(p.GivenName + " " + p.FamilyName); !strings.Contains(page, name) {
			t.Errorf("confirmation lacks the name %q", name)
		}
	}
	ev, err := s.Store.LastAudit(context.Background(), registry.AuditVisitsRegistered)
	if err != nil {
		t.Fatalf("last audit: %v", err)
	}
	if want := registry.Actor("token:public-rathaus"); ev.Actor != want {
		t.Errorf("audit actor = %q, want %q", ev.Actor, want)
	}

	t.Run("resubmitting the form replays", func(t *testing.T) {
		again := wantPage(t, postForm(t, s, "/checkin/rathaus", form), 200)
		if fmt.Sprint(checkouts(t, again)) != fmt.Sprint(got) {
			t.Errorf("replay answered %v, want %v", checkouts(t, again), got)
		}
		if n := countVisits(t, s); n != 3 {
			t.Errorf("stored visits = %d, want 3", n)
		}
	})
	t.Run("same nonce, other input", func(t *testing.T) {
		other := url.Values{}
		for k, v := range form {
			other[k] = v
		}
		other.Set("c1_given_name", "Someone")
		body := wantPage(t, postForm(t, s, "/checkin/rathaus", other), 409)
		if !strings.Contains(body, "bereits mit anderen Angaben") {
			t.Errorf("409 page does not explain: %s", body)
		}
		if n := countVisits(t, s); n != 3 {
			t.Errorf("stored visits = %d, want 3", n)
		}
	})
	t.Run("check out", func(t *testing.T) {
		out := func(visit, token string) *response {
			return postForm(t, s, "/checkin/rathaus/checkout", url.Values{"t": {ticket(visit, token)}, "lang": {"de"}})
		}
		wantPage(t, out(got[1][0], got[0][1]), 401)
		wantPage(t, out(registry.NewID(), got[1][1]), 401)
		if page := wantPage(t, out(got[1][0], got[1][1]), 200); !strings.Contains(page, "Auf Wiedersehen") {
			t.Errorf("goodbye page: %s", page)
		}
		wantPage(t, out(got[1][0], got[1][1]), 409)
		for i, id := range got {
			v, _, _ := s.Open(t, id[0])
			if gotOut, want := v.CheckOut != nil, i == 1; gotOut != want {
				t.Errorf("visit %d checked out = %v, want %v", i, gotOut, want)
			}
		}
	})
}

func TestCheckinRefusesSQLite(t *testing.T) {
	s := newCheckinServer(t)
	nonce := getForm(t, s, "rathaus")
	t.Run("invalid phone", func(t *testing.T) {
		form, _ := checkinForm("Ph1", nonce)
		form.Set("phone", `ring <b>twice</b>`)
		page := wantPage(t, postForm(t, s, "/checkin/rathaus", form), 400)
		for _, want := range []string{
			`value="ring &lt;b&gt;twice&lt;/b&gt;"`, `aria-invalid="true" aria-describedby="f-phone-error"`,
			"Bitte geben Sie eine gültige Telefonnummer an", `value="` + nonce + `"`, html.EscapeString(form.Get("given_name")),
			`value="` + form.Get("c1_given_name") + `"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("error page lacks %q:\n%s", want, page)
			}
		}
		if strings.Contains(page, "malformed") || strings.Contains(page, "<b>") {
			t.Errorf("error page shows an internal message or unescaped input:\n%s", page)
		}
	})
	t.Run("companion without family name, English", func(t *testing.T) {
		form, _ := checkinForm("Cm1", nonce)
		form.Set("lang", "en")
		form.Del("c3_family_name")
		page := wantPage(t, postForm(t, s, "/checkin/rathaus", form), 400)
		if want := `aria-describedby="f-c3_family_name-error"`; !strings.Contains(page, want) || !strings.Contains(page, "companion&#39;s family name") {
			t.Errorf("error page does not mark c3_family_name in English:\n%s", page)
		}
	})
	t.Run("XSS payloads in every field", func(t *testing.T) {
		payloads := []string{`<script>alert(1)</script>`, `"onmouseover=alert(1) x="`}
		for _, p := range payloads {
			form := url.Values{"nonce": {nonce}, "lang": {"de"}}
			for _, name := range []string{"given_name", "family_name", "street", "house_number", "postcode", "city", "phone", "email", "host", "area",
				"c1_given_name", "c1_family_name", "c2_given_name", "c2_family_name", "c3_given_name", "c3_family_name"} {
				form.Set(name, p)
			}
			page := wantPage(t, postForm(t, s, "/checkin/rathaus", form), 400)
			if strings.Contains(page, p) || strings.Contains(page, "<script") || strings.Contains(page, `"onmouseover`) {
				t.Errorf("payload %q comes back unescaped:\n%s", p, page)
			}
			if got, want := strings.Count(page, html.EscapeString(p)), 16; got != want {
				t.Errorf("payload %q escaped %d times, want %d (once per field)", p, got, want)
			}
		}
	})
	refusals := []struct {
		name, path, ctype, body string
		status                  int
	}{
		{"unknown site", "/checkin/schloss", "application/x-www-form-urlencoded", validForm(t, nonce), 404},
		{"unknown site, checkout", "/checkin/schloss/checkout", "application/x-www-form-urlencoded", "t=x", 404},
		{"checkout without ticket", "/checkin/rathaus/checkout", "application/x-www-form-urlencoded", "t=x&lang=de", 400},
		{"checkout, old fields", "/checkin/rathaus/checkout", "application/x-www-form-urlencoded", "visit=x&token=y", 400},
		{"JSON", "/checkin/rathaus", "application/json", `{"given_name":"A"}`, 415},
		{"multipart", "/checkin/rathaus", "multipart/form-data; boundary=x", "--x--", 415},
		{"no content type", "/checkin/rathaus", "", validForm(t, nonce), 415},
		{"checkout as JSON", "/checkin/rathaus/checkout", "application/json", `{}`, 415},
		{"unknown field", "/checkin/rathaus", "application/x-www-form-urlencoded", validForm(t, nonce) + "&nickname=x", 400},
		{"repeated field", "/checkin/rathaus", "application/x-www-form-urlencoded", validForm(t, nonce) + "&city=Bonn", 400},
		{"invalid UTF-8", "/checkin/rathaus", "application/x-www-form-urlencoded", strings.Replace(validForm(t, nonce), "city=", "city=%FF", 1), 400},
		{"bad escape", "/checkin/rathaus", "application/x-www-form-urlencoded", validForm(t, nonce) + "&host=%zz", 400},
		{"no nonce", "/checkin/rathaus", "application/x-www-form-urlencoded", validForm(t, ""), 400},
		{"malformed nonce", "/checkin/rathaus", "application/x-www-form-urlencoded", validForm(t, "../x"), 400},
		{"too large", "/checkin/rathaus", "application/x-www-form-urlencoded", validForm(t, nonce) + "&host=" + strings.Repeat("x", 17<<10), 413},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			wantPage(t, s.do(t, request{method: "POST", path: tt.path, header: hdr("Content-Type", tt.ctype), body: tt.body}), tt.status)
		})
	}
	t.Run("GET unknown site", func(t *testing.T) {
		page := wantPage(t, s.do(t, request{method: "GET", path: "/checkin/schloss"}), 404)
		if !strings.Contains(page, "QR-Code") {
			t.Errorf("404 page: %s", page)
		}
	})
	if n := countVisits(t, s); n != 0 {
		t.Errorf("stored visits = %d, want 0", n)
	}
}

// validForm is a valid, URL-encoded check-in form.
// An empty nonce leaves the field out.
func validForm(t *testing.T, nonce string) string {
	t.Helper()
	form, _ := checkinForm("Vf1", nonce)
	if nonce == "" {
		form.Del("nonce")
	}
	return form.Encode()
}

func TestCheckinOff(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	for _, req := range []request{
		{method: "GET", path: "/checkin/rathaus"},
		{method: "POST", path: "/checkin/rathaus", header: hdr("Content-Type", "application/x-www-form-urlencoded"), body: validForm(t, registry.NewID())},
		{method: "POST", path: "/checkin/schloss/checkout", header: hdr("Content-Type", "application/x-www-form-urlencoded"), body: "t=x"},
		{method: "GET", path: "/checkin/schloss/out"},
	} {
		wantPage(t, s.do(t, req), 404)
	}
	if n := countVisits(t, s); n != 0 {
		t.Errorf("stored visits = %d, want 0", n)
	}
}

func TestCheckinPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	s := newServer(t, store, serverOptions{publicSites: []string{"rathaus"}})
	form, people := checkinForm("Pg2", getForm(t, s, "rathaus"))
	got := checkouts(t, wantPage(t, postForm(t, s, "/checkin/rathaus", form), 200))
	if len(got) != len(people) {
		t.Fatalf("confirmation has %d check-out buttons, want %d", len(got), len(people))
	}
	for i, p := range people {
		checkStored(t, s, sent{reg: p, answer: created{ID: got[i][0], CheckoutToken: got[i][1], CheckIn: s.Clock.Now()}})
	}
	if again := checkouts(t, wantPage(t, postForm(t, s, "/checkin/rathaus", form), 200)); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("replay answered %v, want %v", again, got)
	}
	out := url.Values{"t": {ticket(got[0][0], got[0][1])}, "lang": {"en"}}
	if page := wantPage(t, postForm(t, s, "/checkin/rathaus/checkout", out), 200); !strings.Contains(page, "Goodbye") {
		t.Errorf("goodbye page: %s", page)
	}
	if n := countVisits(t, s); n != 3 {
		t.Errorf("stored visits = %d, want 3", n)
	}
}

func TestConfigRefusesBadPublicURL(t *testing.T) {
	s := newCheckinServer(t)
	for _, u := range []string{"besuch.example", "ftp://besuch.example", "https://besuch.example/x", "https://besuch.example?x", "https://u@besuch.example"} {
		_, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", Store: s.Store, Intake: s.Service, Keys: s.Keys, Instance: s.Instance, Secret: s.Secret,
			Scratch: s.scratch, Recipients: s.Recipients, Retention: testRetention, MaxStay: testMaxStay, PublicURL: u})
		if err == nil {
			t.Errorf("New accepted the public URL %q", u)
		}
	}
}
