package httpapi_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/httpapi"
)

// postFormFrom posts the check-in form of site from client (an address a
// trusted proxy forwards, or "" for the connection's own).
func postFormFrom(t *testing.T, s *testServer, site, nonce, client string) *response {
	t.Helper()
	form, _ := checkinForm("Flood", nonce)
	h := hdr("Content-Type", "application/x-www-form-urlencoded")
	if client != "" {
		h.Set("X-Forwarded-For", client)
	}
	return s.do(t, request{method: "POST", path: "/checkin/" + site, header: h, body: form.Encode()})
}

func limitedServer(t *testing.T, l httpapi.Limits) *testServer {
	s, _ := newSQLiteServer(t, serverOptions{publicSites: []string{"rathaus", "bauamt"}, limits: &l})
	return s
}

// TestFormFloodLimits: one client registers its burst and then waits; a
// second client behind the trusted proxy still registers; the site's own
// limit then stops everybody at that site but not at the other; the total
// limit stops all. Every refusal is a 429 page with Retry-After, stores
// nothing and is counted in /metrics.
func TestFormFloodLimits(t *testing.T) {
	s := limitedServer(t, httpapi.Limits{
		PerClient: httpapi.Rate{PerMinute: 1, Burst: 2}, PerSite: httpapi.Rate{PerMinute: 1, Burst: 4},
		Total: httpapi.Rate{PerMinute: 1, Burst: 6}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	want := func(site, client string, status int) {
		t.Helper()
		r := postFormFrom(t, s, site, getForm(t, s, site), client)
		if r.status != status {
			t.Fatalf("%s from %s: status %d, want %d", site, client, r.status, status)
		}
		if status == 429 {
			if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After = %q, want whole seconds", r.header.Get("Retry-After"))
			}
			if body := string(r.body); !strings.Contains(body, "Bitte einen Moment Geduld") {
				t.Errorf("429 page lacks its message: %s", body)
			}
		}
	}
	want("rathaus", "192.0.2.1", 200)
	want("rathaus", "192.0.2.1", 200)
	want("rathaus", "192.0.2.1", 429) // client
	want("rathaus", "192.0.2.2", 200)
	want("rathaus", "192.0.2.2", 200)
	want("rathaus", "192.0.2.3", 429) // site
	want("bauamt", "192.0.2.3", 200)
	want("bauamt", "192.0.2.4", 200)
	want("bauamt", "192.0.2.5", 429) // total
	if n := countVisits(t, s); n != 6*3 {
		t.Errorf("stored visits = %d, want 18 (six families of three)", n)
	}
	metrics := string(s.do(t, request{method: "GET", path: "/metrics"}).body)
	for _, l := range []string{"client", "site", "total"} {
		if !strings.Contains(metrics, fmt.Sprintf(`registry_http_limited_total{limit=%q} 1`, l)) {
			t.Errorf("metrics lack one %s refusal:\n%s", l, metrics)
		}
	}
}

// TestForwardedForIsNotBelievedByDefault: without trusted proxies a client
// cannot escape its limit by naming other addresses.
func TestForwardedForIsNotBelievedByDefault(t *testing.T) {
	s := limitedServer(t, httpapi.Limits{PerClient: httpapi.Rate{PerMinute: 1, Burst: 1}})
	wantPage(t, postFormFrom(t, s, "rathaus", getForm(t, s, "rathaus"), "192.0.2.1"), 200)
	wantPage(t, postFormFrom(t, s, "rathaus", getForm(t, s, "rathaus"), "192.0.2.2"), 429)
}

// tamper changes the last two characters of a nonce (never to what they
// were).
func tamper(nonce string) string {
	if strings.HasSuffix(nonce, "AA") {
		return nonce[:len(nonce)-2] + "BB"
	}
	return nonce[:len(nonce)-2] + "AA"
}

// TestFormNonces: only a nonce this server issued for this site and not
// expired registers; nothing is stored for any other.
func TestFormNonces(t *testing.T) {
	s := limitedServer(t, httpapi.DefaultLimits())
	good := getForm(t, s, "rathaus")
	forged := strings.Repeat("A", 27) + "." + strings.Repeat("B", 22)
	for name, nonce := range map[string]string{
		"self-chosen":   "0123456789abcdef0123456789abcdef",
		"forged":        forged,
		"other site":    getForm(t, s, "bauamt"),
		"mac tampered":  tamper(good),
		"empty":         "",
		"extra garbage": good + ".x",
	} {
		t.Run(name, func(t *testing.T) {
			body := wantPage(t, postFormFrom(t, s, "rathaus", nonce, ""), 400)
			if !strings.Contains(body, "abgelaufen") && !strings.Contains(body, "Formular") {
				t.Errorf("page does not explain: %s", body)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		s.Clock.Add(12*time.Hour + time.Minute)
		defer s.Clock.Add(-12*time.Hour - time.Minute)
		wantPage(t, postFormFrom(t, s, "rathaus", good, ""), 400)
	})
	if n := countVisits(t, s); n != 0 {
		t.Fatalf("stored visits = %d, want 0", n)
	}
	wantPage(t, postFormFrom(t, s, "rathaus", good, ""), 200)
}

// TestAuthFailuresAreLimited: guessing tokens earns 429s from the burst
// on, without a database look-up; a valid token from another address is
// unaffected.
func TestAuthFailuresAreLimited(t *testing.T) {
	s := limitedServer(t, httpapi.Limits{AuthFailures: httpapi.Rate{PerMinute: 1, Burst: 3},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	guess := func(client string) int {
		h := hdr("Authorization", "Bearer rgt_"+strings.Repeat("x", 43), "Content-Type", "application/json", "X-Forwarded-For", client)
		return s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: validBody}).status
	}
	for i, want := range []int{401, 401, 401, 429, 429} {
		if got := guess("198.51.100.7"); got != want {
			t.Errorf("guess %d: status %d, want %d", i+1, got, want)
		}
	}
	h := hdr("Authorization", "Bearer "+s.intake, "Content-Type", "application/json", "X-Forwarded-For", "198.51.100.8")
	wantStatus(t, s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: validBody}), 201)
}
