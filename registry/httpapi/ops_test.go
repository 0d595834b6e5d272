package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/notify"
)

func TestHealthAndReadiness(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{noEpochKey: true})
	r := s.do(t, request{method: "GET", path: "/healthz"})
	if r.status != 200 || string(r.body) != "ok\n" {
		t.Errorf("healthz = %d %q, want 200 ok", r.status, r.body)
	}

	r = s.do(t, request{method: "GET", path: "/readyz"})
	wantStatus(t, r, 503)
	if p := r.problem(t); !strings.Contains(p.Detail, "epoch_key") || !strings.Contains(p.Detail, "2025-03-04") {
		t.Errorf("readyz detail = %q, want it to name the epoch key check and the day", p.Detail)
	}
	wantStatus(t, s.register(t, validBody, ""), 503) // no key: nothing can be sealed

	s.AddEpochKey(t, registry.DayOf(s.Clock.Now()))
	r = s.do(t, request{method: "GET", path: "/readyz"})
	wantStatus(t, r, 200)

	s.Service.Close()
	r = s.do(t, request{method: "GET", path: "/readyz"})
	wantStatus(t, r, 503)
	if p := r.problem(t); !strings.Contains(p.Detail, "intake") {
		t.Errorf("readyz detail = %q, want it to name the intake check", p.Detail)
	}

	s.Store.Close()
	r = s.do(t, request{method: "GET", path: "/readyz"})
	wantStatus(t, r, 503)
	if p := r.problem(t); !strings.Contains(p.Detail, "database") {
		t.Errorf("readyz detail = %q, want it to name the database check", p.Detail)
	}
}

func TestMetrics(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	s.PutSite(t, &registry.Site{Code: "rathaus", Name: "Rathaus", Capacity: 40, Areas: []registry.Area{{Name: "Saal 1", Capacity: 10}, {Name: "Foyer"}}})
	wantStatus(t, s.register(t, validBody, ""), 201)
	wantStatus(t, s.register(t, validBody, ""), 201)
	wantStatus(t, s.register(t, `{}`, ""), 400)
	r := s.do(t, request{method: "GET", path: "/metrics"})
	wantStatus(t, r, 200)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	for _, want := range []string{
		`registry_http_requests_total{route="POST /v1/visits",status="201"} 2`,
		`registry_http_requests_total{route="POST /v1/visits",status="400"} 1`,
		`registry_http_errors_total{code="invalid"} 1`,
		"registry_registrations_total 2\n",
		`registry_intake_batch_size_bucket{le="1"} 2`,
		`registry_intake_batch_size_bucket{le="+Inf"} 2`,
		"registry_intake_batch_size_sum 2\n",
		"registry_intake_batch_size_count 2\n",
		"# TYPE registry_intake_batch_size histogram\n",
		`registry_open_visits{area="Saal 1",site="rathaus"} 2`,
		`registry_open_visits{area="Foyer",site="rathaus"} 0`,
		`registry_open_visits{area="",site="rathaus"} 0`,
		`registry_open_visits{area="",site="bauamt"} 0`,
		`registry_site_capacity{area="",site="rathaus"} 40`,
		`registry_site_capacity{area="Saal 1",site="rathaus"} 10`,
		`registry_http_request_duration_seconds_bucket{route="POST /v1/visits",le="+Inf"} 3`,
		"registry_epoch_keys_ahead_days ",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q:\n%s", want, r.body)
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	r := s.do(t, request{method: "GET", path: "/v1/nothing?name=Geheim"})
	wantStatus(t, r, 404)
	r.problem(t)
	r = s.do(t, request{method: "GET", path: "/v1/visits"})
	wantStatus(t, r, 405)
	r.problem(t)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q, want POST", allow)
	}
	r = s.do(t, request{method: "DELETE", path: "/v1/visits/" + registry.NewID() + "/checkout"})
	wantStatus(t, r, 405)
}

func TestAccessLog(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{accessLog: httpapi.AccessLogOn})
	c := s.register(t, validBody, "idem-key-in-header").created(t)
	s.do(t, request{method: "POST", path: "/v1/visits/" + c.ID + "/checkout?q=Geheimnis",
		header: hdr("Authorization", "Bearer "+c.CheckoutToken)})
	logs := s.logs.String()
	for _, want := range []string{`route="POST /v1/visits"`, "status=201", `route="POST /v1/visits/{id}/checkout"`, "status=204", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{c.ID, c.CheckoutToken, s.intake, "Geheimnis", "idem-key-in-header", "Muster", "Max", "2921"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
}

// TestAccessLogModes: sampled (the default) logs every error and one in
// AccessLogSampleEvery of the other requests, marked; off logs none; the
// metrics count every request in every mode.
func TestAccessLogModes(t *testing.T) {
	for _, mode := range []httpapi.AccessLog{httpapi.AccessLogSampled, httpapi.AccessLogOff} {
		t.Run(mode.String(), func(t *testing.T) {
			s, _ := newSQLiteServer(t, serverOptions{accessLog: mode})
			const ok = 2*httpapi.AccessLogSampleEvery + 1
			for i := range ok {
				s.register(t, validBody, fmt.Sprint("sample-", i)).created(t)
			}
			for range 3 {
				wantStatus(t, s.do(t, request{method: "GET", path: "/v1/visits"}), 405)
			}
			logs := s.logs.String()
			lines := strings.Count(logs, `msg="http request"`)
			sampled := strings.Count(logs, fmt.Sprintf("sampled=%d", httpapi.AccessLogSampleEvery))
			errors := strings.Count(logs, "status=405")
			switch mode {
			case httpapi.AccessLogSampled:
				if sampled != 3 || errors != 3 || lines != 6 {
					t.Errorf("%d lines, %d sampled, %d errors; want 3 sampled of %d successes and all 3 errors:\n%s", lines, sampled, errors, ok, logs)
				}
			case httpapi.AccessLogOff:
				if lines != 0 {
					t.Errorf("%d access log lines with the log off", lines)
				}
			}
			r := s.do(t, request{method: "GET", path: "/metrics"})
			if m := string(r.body); !strings.Contains(m, fmt.Sprintf(`registry_http_requests_total{route="POST /v1/visits",status="201"} %d`, ok)) {
				t.Errorf("metrics do not count every request in mode %s", mode)
			}
		})
	}
	var m httpapi.AccessLog
	if err := m.Set("verbose"); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("Set(verbose) = %v, want EINVALID", err)
	}
}

func TestServerLimits(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	h := s.srv.HTTPServer()
	for name, d := range map[string]int64{
		"ReadHeaderTimeout": int64(h.ReadHeaderTimeout), "ReadTimeout": int64(h.ReadTimeout),
		"WriteTimeout": int64(h.WriteTimeout), "IdleTimeout": int64(h.IdleTimeout), "MaxHeaderBytes": int64(h.MaxHeaderBytes),
	} {
		if d <= 0 {
			t.Errorf("%s = %d, want a limit", name, d)
		}
	}
	if h.ReadHeaderTimeout > h.ReadTimeout || h.ReadTimeout > h.WriteTimeout {
		t.Errorf("timeouts header %v, read %v, write %v: want header ≤ read ≤ write", h.ReadHeaderTimeout, h.ReadTimeout, h.WriteTimeout)
	}
}

func TestOpenBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := newSQLiteServer(t, serverOptions{})
	cfg := fullConfig(s)
	cfg.Addr = ln.Addr().String()
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err == nil {
		srv.Close(context.Background())
		t.Fatalf("Open on a taken port %s succeeded", ln.Addr())
	}
}

// fullConfig returns a complete config over s's store and keys.
func fullConfig(s *testServer) httpapi.Config {
	return httpapi.Config{Addr: "127.0.0.1:0", Store: s.Store, Intake: s.Service, Keys: s.Keys, Instance: s.Instance,
		Recipients: s.Recipients, Retention: testRetention, MaxStay: testMaxStay, Secret: s.Secret, Scratch: s.scratch}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	tests := []struct {
		name   string
		change func(*httpapi.Config)
	}{
		{"no store", func(c *httpapi.Config) { c.Store = nil }},
		{"no intake", func(c *httpapi.Config) { c.Intake = nil }},
		{"no server secret", func(c *httpapi.Config) { c.Secret = nil }},
		{"no epoch keys", func(c *httpapi.Config) { c.Keys = nil }},
		{"no recipients", func(c *httpapi.Config) { c.Recipients = nil }},
		{"no retention", func(c *httpapi.Config) { c.Retention = 0 }},
		{"negative max stay", func(c *httpapi.Config) { c.MaxStay = -time.Hour }},
	}
	if _, err := httpapi.New(fullConfig(s)); err != nil {
		t.Fatalf("New with a full config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fullConfig(s)
			tt.change(&cfg)
			if _, err := httpapi.New(cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

// TestMetricsListener: with a listener of its own, /metrics is served
// there and not on the main listener.
func TestMetricsListener(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	cfg := fullConfig(s)
	cfg.MetricsAddr = "127.0.0.1:0"
	srv := openServer(t, cfg)
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(srv.URL() + "/metrics"); got != 404 {
		t.Errorf("main listener /metrics = %d, want 404", got)
	}
	if got := get(srv.MetricsURL() + "/metrics"); got != 200 {
		t.Errorf("metrics listener /metrics = %d, want 200", got)
	}
}

// TestMetricsCollectors: the arrival webhooks' metrics are served with the
// others when serve passes the notifier.
func TestMetricsCollectors(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	cfg := fullConfig(s)
	cfg.Addr = "127.0.0.1:0"
	cfg.Collectors = []prometheus.Collector{&notify.Notifier{}}
	srv := openServer(t, cfg)
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`registry_webhook_deliveries_total{result="given_up"} 0`, "registry_webhook_arrivals_under_way 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// openServer starts a second server with cfg; cleanup closes it.
func openServer(t *testing.T, cfg httpapi.Config) *httpapi.Server {
	t.Helper()
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv
}
