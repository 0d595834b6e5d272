package office_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cityhall/registry/registry/office"
)

func webServer(t *testing.T, signIn bool, hosts ...string) (*httptest.Server, *office.Store) {
	t.Helper()
	s, _ := openStore(t)
	w, err := office.NewWeb(office.WebConfig{Store: s, SignIn: signIn, Actor: "clerk", Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return srv, s
}

func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestWebSignIn: beyond the local machine every page wants a signed-in
// clerk; a wrong password is refused, the right one opens the workspace.
func TestWebSignIn(t *testing.T) {
	srv, s := webServer(t, true)
	pw, err := s.AddUser(context.Background(), "it", "schmidt", "Frau Schmidt")
	if err != nil {
		t.Fatal(err)
	}
	c := client()
	for _, path := range []string{"/", "/registries", "/log", "/cases/new"} {
		if st, _, h := get(t, c, srv.URL+path); st != http.StatusSeeOther || h.Get("Location") != "/login" {
			t.Errorf("GET %s without a session: %d to %q", path, st, h.Get("Location"))
		}
	}
	post := func(form url.Values) int {
		req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(url.Values{"login": {"schmidt"}, "password": {"falsch"}}); st != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", st)
	}
	if st := post(url.Values{"login": {"Schmidt "}, "password": {pw}}); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	st, body, h := get(t, c, srv.URL+"/")
	if st != 200 || !strings.Contains(body, "Frau Schmidt") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("after sign-in: %d, CSP %q\n%s", st, h.Get("Content-Security-Policy"), body)
	}
}

// TestWebRefusesForeignRequests: a form posted from another site is
// refused, and a Host the workspace does not answer to (DNS rebinding onto
// 127.0.0.1) reaches nothing.
func TestWebRefusesForeignRequests(t *testing.T) {
	srv, _ := webServer(t, false)
	req, _ := http.NewRequest("POST", srv.URL+"/cases", strings.NewReader("ref=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}

	pinned, _ := webServer(t, false, "127.0.0.1:8090")
	req, _ = http.NewRequest("GET", pinned.URL+"/", nil)
	req.Host = "rebind.evil.example:8090"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %d, want 421", resp.StatusCode)
	}
}
