package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
)

// deskClient is a browser-like HTTP client of the desk's pages: it keeps
// cookies and does not follow redirects, so that tests see them.
type deskClient struct {
	t    *testing.T
	s    *testServer
	http *http.Client
}

func newDeskClient(t *testing.T, s *testServer) *deskClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &deskClient{t: t, s: s, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// send sends a request; a form body is posted as the page's own form
// would be (Sec-Fetch-Site: same-origin).
func (c *deskClient) send(method, path string, form url.Values, header ...string) *http.Response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.s.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// page sends a request and returns the status and the body.
func (c *deskClient) page(method, path string, form url.Values, header ...string) (int, string) {
	c.t.Helper()
	resp := c.send(method, path, form, header...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// signIn signs in and returns the response.
func (c *deskClient) signIn(login, pw string) *http.Response {
	c.t.Helper()
	resp := c.send("POST", "/desk/login", url.Values{"login": {login}, "password": {pw}, "lang": {"de"}})
	resp.Body.Close()
	return resp
}

// deskServer is a server with two sites and a desk account for rathaus
// (no password change due).
func deskServer(t *testing.T, opt serverOptions) (*testServer, string) {
	t.Helper()
	s, _ := newSQLiteServer(t, opt)
	s.PutSite(t, browserSite())
	s.PutSite(t, &registry.Site{Code: "bauamt", Name: "Bauamt", SelfCheckin: true})
	const pw = "Eingang-Nord-2026!"
	u := &registry.User{Login: "pforte", Name: "Maria Pforte", Role: registry.UserDesk, Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(pw)}
	if err := s.Store.CreateUser(context.Background(), "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	return s, pw
}

func TestDeskSignIn(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	c := newDeskClient(t, s)
	if resp := c.send("GET", "/desk/rathaus/present", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/desk/login?lang=de" {
		t.Errorf("without a session: %d to %q, want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Unknown login, wrong password and wrong case of the password: one
	// answer.
	var first string
	for i, try := range [][2]string{{"niemand", pw}, {"pforte", "falsch-falsch-falsch"}, {"pforte", strings.ToUpper(pw)}} {
		status, body := c.page("POST", "/desk/login", url.Values{"login": {try[0]}, "password": {try[1]}, "lang": {"de"}})
		if status != 401 || !strings.Contains(body, "Benutzername oder Passwort ist falsch") || strings.Contains(body, pw) {
			t.Errorf("sign-in %v: %d", try, status)
		}
		msg := regexp.MustCompile(`role="alert">([^<]*)<`).FindString(body)
		if i == 0 {
			first = msg
		} else if msg != first {
			t.Errorf("sign-in %v answers %q, the unknown login %q", try, msg, first)
		}
	}

	// A good sign-in: the session cookie is HttpOnly, SameSite=Strict,
	// for the whole host, and lasts the browser session.
	resp := c.signIn(" Pforte ", pw) // the login is case-insensitive and trimmed
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/desk/?lang=de" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"rg_desk=", "Path=/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Max-Age") || strings.Contains(cookie, "Expires") || strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie %q: want a session cookie without Secure over plain HTTP", cookie)
	}
	if resp := c.send("GET", "/desk/", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/desk/rathaus/?lang=de" {
		t.Errorf("desk home: %d to %q, want the account's one site", resp.StatusCode, resp.Header.Get("Location"))
	}
	if status, body := c.page("GET", "/desk/rathaus/", nil); status != 200 || !strings.Contains(body, "Besucher anmelden") || !strings.Contains(body, "Maria Pforte") {
		t.Errorf("register page: %d", status)
	}
	// Another site's pages are closed to the account.
	if status, body := c.page("GET", "/desk/bauamt/", nil); status != 403 || !strings.Contains(body, "gehört nicht zu diesem Standort") {
		t.Errorf("other site: %d", status)
	}
	if status, _ := c.page("GET", "/desk/nirgends/present", nil); status != 403 {
		t.Errorf("unknown site: %d, want 403 (the account does not work there)", status)
	}

	// Idle for the session's idle time: the session has ended.
	s.Clock.Add(registry.SessionIdle)
	if resp := c.send("GET", "/desk/rathaus/present", nil); resp.StatusCode != 303 {
		t.Errorf("after %v idle: %d, want 303 to the sign-in page", registry.SessionIdle, resp.StatusCode)
	}

	// Signing out ends the session on the server, not only the cookie.
	c.signIn("pforte", pw)
	var secret string
	for _, ck := range c.http.Jar.Cookies(mustURL(t, s.url)) {
		if ck.Name == "rg_desk" {
			secret = ck.Value
		}
	}
	if status, _ := c.page("POST", "/desk/logout", url.Values{"lang": {"de"}}); status != 200 {
		t.Errorf("sign-out: %d", status)
	}
	replay := newDeskClient(t, s)
	if resp := replay.send("GET", "/desk/rathaus/present", nil, "Cookie", "rg_desk="+secret); resp.StatusCode != 303 {
		t.Errorf("the signed-out session still works: %d", resp.StatusCode)
	}
}

func TestDeskLockOut(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	c := newDeskClient(t, s)
	for range registry.MaxFailedSignIns {
		if resp := c.signIn("pforte", "falsch-falsch-falsch"); resp.StatusCode != 401 {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
	}
	// Locked: the right password fails too, with the same answer.
	if resp := c.signIn("pforte", pw); resp.StatusCode != 401 {
		t.Errorf("locked account, right password: %d, want 401", resp.StatusCode)
	}
	u, err := s.Store.User(context.Background(), "pforte")
	if err != nil || !u.Locked(s.Clock.Now()) {
		t.Fatalf("account not locked after %d failures: %+v, %v", registry.MaxFailedSignIns, u, err)
	}
	ev, err := s.Store.LastAudit(context.Background(), registry.AuditUserChanged)
	if err != nil || !strings.Contains(ev.Details, `"change":"locked"`) {
		t.Errorf("the lock-out is not audited: %v, %v", ev, err)
	}
	s.Clock.Add(registry.LockoutPeriod)
	if resp := c.signIn("pforte", pw); resp.StatusCode != 303 {
		t.Errorf("after the lock-out period: %d, want 303", resp.StatusCode)
	}
}

func TestDeskFailedSignInsAreLimitedPerClient(t *testing.T) {
	l := httpapi.DefaultLimits()
	l.AuthFailures.PerMinute, l.AuthFailures.Burst = 6, 3
	s, pw := deskServer(t, serverOptions{limits: &l})
	c := newDeskClient(t, s)
	for i := range 3 {
		if resp := c.signIn("niemand"+string(rune('a'+i)), "x"); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	resp := c.signIn("pforte", pw)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after the client's failures: %d, Retry-After %q; want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestDeskRefusesCrossOriginRequests(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	c := newDeskClient(t, s)
	c.signIn("pforte", pw)
	for _, path := range []string{"/desk/login", "/desk/logout", "/desk/rathaus/register", "/desk/rathaus/checkout", "/checkin/rathaus"} {
		form := url.Values{"lang": {"de"}}
		for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example", "Sec-Fetch-Site", ""}} {
			status, _ := c.page("POST", path, form, h...)
			if status != 403 {
				t.Errorf("POST %s with %v: %d, want 403", path, h, status)
			}
		}
	}
	if n := len(openVisits(t, s)); n != 0 {
		t.Errorf("%d visits stored by cross-origin requests", n)
	}
}

func TestDeskSecureCookies(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{publicURL: "https://besuch.musterstadt.example"})
	s.PutSite(t, browserSite())
	const pw = "Eingang-Nord-2026!"
	u := &registry.User{Login: "pforte", Name: "Maria Pforte", Role: registry.UserDesk, Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(pw)}
	if err := s.Store.CreateUser(context.Background(), "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	resp := newDeskClient(t, s).signIn("pforte", pw)
	cookie := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "__Host-rg_desk=") || !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "Path=/") {
		t.Errorf("behind TLS the session cookie is %q, want __Host-rg_desk, Secure, Path=/", cookie)
	}
}

// TestDeskOnlyWrites registers at the desk and checks what the desk can
// see afterwards: codes, areas and times, never a name or an address;
// a visit of another site cannot be checked out from here.
func TestDeskOnlyWrites(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	c := newDeskClient(t, s)
	c.signIn("pforte", pw)
	_, form := c.page("GET", "/desk/rathaus/", nil)
	nonce := nonceRE.FindStringSubmatch(form)[1]
	reg := url.Values{"nonce": {nonce}, "lang": {"de"}, "rows": {"3"}, "given_name": {"Erika"}, "family_name": {"Mustermann"},
		"street": {"Heidestraße"}, "house_number": {"17"}, "postcode": {"51147"}, "city": {"Köln"}, "phone": {"+49 221 1234567"},
		"area": {"Standesamt"}, "host": {"Frau Amt"}, "c1_given_name": {"Max"}, "c1_family_name": {"Mustermann"}}
	status, slips := c.page("POST", "/desk/rathaus/register", reg)
	if status != 200 || strings.Count(slips, `class="slip"`) != 2 {
		t.Fatalf("register: %d, %d slips", status, strings.Count(slips, `class="slip"`))
	}
	// The same form again (a double click) replays: still two visits.
	if status, again := c.page("POST", "/desk/rathaus/register", reg); status != 200 || strings.Count(again, `class="slip"`) != 2 {
		t.Errorf("resubmitted form: %d", status)
	}
	if n := len(openVisits(t, s)); n != 2 {
		t.Errorf("%d open visits, want 2", n)
	}
	status, present := c.page("GET", "/desk/rathaus/present", nil)
	if status != 200 {
		t.Fatal(status)
	}
	for _, secret := range []string{"Erika", "Mustermann", "Heidestraße", "51147", "1234567", "Frau Amt", "T-4711", "rgc_"} {
		if strings.Contains(present, secret) {
			t.Errorf("the list of those present shows %q", secret)
		}
	}
	if !strings.Contains(present, "Standesamt") || !strings.Contains(present, "2 von 4") {
		t.Errorf("the list lacks the area or the occupancy")
	}

	// A visit of bauamt, registered by the API, is not this desk's.
	r := s.register(t, `{"site":"bauamt","given_name":"A","family_name":"B","street":"C","house_number":"1","postcode":"12345","city":"D","phone":"0221 123456"}`, "")
	id := r.created(t).ID
	resp := c.send("POST", "/desk/rathaus/checkout", url.Values{"v": {id}, "lang": {"de"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "done=0") || !strings.Contains(loc, "failed=1") {
		t.Errorf("checking out another site's visit: %d to %q, want done=0 failed=1", resp.StatusCode, loc)
	}
	if v, _, _ := s.Open(t, id); v.CheckOut != nil {
		t.Errorf("another site's visit was checked out")
	}
	// Everyone at closing: the confirmation names the count; the desk's
	// check-outs are audited under the account's name.
	if status, body := c.page("GET", "/desk/rathaus/close", nil); status != 200 || !strings.Contains(body, "Wirklich alle 2 Anwesenden abmelden?") {
		t.Errorf("close: %d", status)
	}
	if resp := c.send("POST", "/desk/rathaus/checkout", url.Values{"all": {"2"}, "lang": {"de"}}); !strings.Contains(resp.Header.Get("Location"), "done=2") {
		t.Errorf("all: %q", resp.Header.Get("Location"))
	}
	ev, err := s.Store.LastAudit(context.Background(), registry.AuditVisitsCheckedOut)
	if err != nil || ev.Actor != "user:pforte" || !strings.Contains(ev.Details, `"count":2`) || !strings.Contains(ev.Details, `"reason":"desk"`) {
		t.Errorf("desk check-out event: %+v, %v", ev, err)
	}
}

func TestDeskPoster(t *testing.T) {
	s, pw := deskServer(t, serverOptions{publicURL: "https://besuch.musterstadt.example"})
	c := newDeskClient(t, s)
	c.signIn("pforte", pw)
	resp := c.send("GET", "/desk/rathaus/poster.pdf?area=Standesamt", nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("poster: %d %q %.10q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if status, _ := c.page("GET", "/desk/rathaus/poster.pdf?area=Keller", nil); status != 404 {
		t.Errorf("poster of an unknown area: %d, want 404", status)
	}
	s.PutSite(t, func() *registry.Site { x := browserSite(); x.SelfCheckin = false; return x }())
	if status, _ := c.page("GET", "/desk/rathaus/poster.pdf", nil); status != 409 {
		t.Errorf("poster of a site without self check-in: %d, want 409", status)
	}
}

// TestVisitorCookie checks the phone's ticket cookie: scoped to the site,
// HttpOnly, SameSite=Lax, kept for the longest stay, and forgetting
// visits that ended.
func TestVisitorCookie(t *testing.T) {
	s, _ := deskServer(t, serverOptions{})
	c := newDeskClient(t, s)
	_, form := c.page("GET", "/checkin/rathaus", nil)
	v, _ := checkinForm("Ck1", nonceRE.FindStringSubmatch(form)[1])
	v.Set("area", "")
	resp := c.send("POST", "/checkin/rathaus", url.Values(v))
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"rg_visits=", "Path=/checkin/rathaus", "HttpOnly", "SameSite=Lax", "Max-Age=43200"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("ticket cookie %q lacks %s", cookie, want)
		}
	}
	_, status := c.page("GET", "/checkin/rathaus", nil)
	if got := checkouts(t, status); len(got) != 3 {
		t.Fatalf("status page after the tab closed: %d people, want 3", len(got))
	}
	// The desk checks one of them out; the phone forgets that one.
	ids := checkouts(t, status)
	d := &registry.Departure{ID: ids[1][0], At: s.Clock.Now(), Reason: registry.CheckoutDesk}
	if err := s.Store.CheckOutVisits(context.Background(), "user:pforte", []*registry.Departure{d}); err != nil || d.Err != nil {
		t.Fatal(err, d.Err)
	}
	_, status = c.page("GET", "/checkin/rathaus", nil)
	if got := checkouts(t, status); len(got) != 2 || got[0][0] != ids[0][0] || got[1][0] != ids[2][0] {
		t.Errorf("after one left: %v, want the other two", got)
	}
	// The cookie of another site is not sent here, nor this one there.
	if _, other := c.page("GET", "/checkin/bauamt", nil); strings.Contains(other, "Sie sind angemeldet") {
		t.Errorf("bauamt shows rathaus's visitors")
	}
	// A tampered ticket is dropped, and checks nothing out.
	tampered := ids[0][0] + "." + ids[2][1]
	c2 := newDeskClient(t, s)
	if _, page := c2.page("GET", "/checkin/rathaus", nil, "Cookie", "rg_visits="+tampered); strings.Contains(page, "Sie sind angemeldet") {
		t.Errorf("a tampered ticket counts as checked in")
	}
	if status, _ := c2.page("POST", "/checkin/rathaus/checkout", url.Values{"t": {tampered}, "lang": {"de"}}); status != 401 {
		t.Errorf("check-out with a tampered ticket: %d, want 401", status)
	}
	if n := len(openVisits(t, s)); n != 2 {
		t.Errorf("%d open visits, want 2", n)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
