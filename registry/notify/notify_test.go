package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/notify"
	"github.com/cityhall/registry/registry/sqlite"
)

// arrivalEnv is a real store with a site, an appointment with the
// Bauamt, and its visitor registered: one arrival waiting to be told.
type arrivalEnv struct {
	*intaketest.Env
	appt *registry.Appointment
}

func newArrivalEnv(t *testing.T) *arrivalEnv {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	env := intaketest.New(t, store, intaketest.Options{})
	site := &registry.Site{Code: "rathaus", Name: "Rathaus Musterstadt", Hosts: []string{"Bauamt", "Standesamt"}, Areas: []registry.Area{{Name: "Zimmer 3"}}}
	env.PutSite(t, site)
	start := intaketest.Start.Add(45 * time.Minute)
	a, err := registry.NewAppointment(&registry.AppointmentInput{Site: "rathaus", Host: "Bauamt", Area: "Zimmer 3", Start: start, End: start.Add(30 * time.Minute)},
		site, "cli", env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a, _, err = store.CreateAppointment(t.Context(), "user:service", a, nil); err != nil {
		t.Fatal(err)
	}
	_, tok := env.Token(t, registry.RoleIntake, "")
	reg := intaketest.Registration("Ankunft")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", a.Code
	if _, err := env.Service.Register(t.Context(), tok, reg, "", nil); err != nil {
		t.Fatal(err)
	}
	return &arrivalEnv{Env: env, appt: a}
}

// pending returns the arrivals not yet told.
func (e *arrivalEnv) pending(t *testing.T) []*registry.Appointment {
	t.Helper()
	list, err := e.Store.PendingArrivals(t.Context(), e.Clock.Now().Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// targets writes a webhook file naming url for site/host and reads it.
func targets(t *testing.T, secret []byte, lines ...string) []notify.Target {
	t.Helper()
	dir := t.TempDir()
	sec := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(sec, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	text := "# arrivals\n"
	for _, l := range lines {
		text += l + " " + sec + "\n"
	}
	list := filepath.Join(dir, "webhooks.txt")
	if err := os.WriteFile(list, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := notify.ReadTargets(list)
	if err != nil || len(ts) != len(lines) {
		t.Fatalf("ReadTargets = %v, %v", ts, err)
	}
	return ts
}

// receiver is a webhook endpoint that checks signatures and answers
// fail times with 503 before it takes arrivals.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	fail   int
	calls  int
	got    []notify.Arrival
	ids    []string
	done   chan struct{}
}

func newReceiver(t *testing.T, secret []byte, fail int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, fail: fail, done: make(chan struct{}, 10)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	body, _ := io.ReadAll(req.Body)
	sec, _ := strconv.ParseInt(req.Header.Get("X-Registry-Timestamp"), 10, 64)
	if req.Header.Get("X-Registry-Signature") != notify.Sign(r.secret, time.Unix(sec, 0), body) {
		r.t.Errorf("bad signature")
		w.WriteHeader(401)
		return
	}
	if r.calls <= r.fail {
		w.WriteHeader(503) // the chat system is down
		return
	}
	var a notify.Arrival
	if err := json.Unmarshal(body, &a); err != nil {
		r.t.Errorf("body: %v", err)
	}
	r.got = append(r.got, a)
	r.ids = append(r.ids, req.Header.Get("X-Registry-Delivery"))
	r.done <- struct{}{}
}

func (r *receiver) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivered")
	}
}

// waitFor polls cond until it holds (the notifier works on its own
// goroutines); it fails after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestWebhook: the host's endpoint receives the arrival, signed, after a
// failed first attempt; another host's target receives nothing; nothing
// about the visitor is sent; the arrival is then marked told.
func TestWebhook(t *testing.T) {
	e := newArrivalEnv(t)
	secret := []byte("geheimnis-der-pforte-2026")
	rcv, srv := newReceiver(t, secret, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("another host's webhook was called")
	}))
	defer other.Close()
	n := &notify.Notifier{Store: e.Store, Targets: targets(t, secret, "rathaus/Bauamt "+srv.URL+"/hook", "rathaus/Standesamt "+other.URL),
		Now: e.Clock.Now, Backoff: time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n.Start(ctx)
	rcv.wait(t)
	waitFor(t, "the arrival marked told", func() bool { return len(e.pending(t)) == 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	want := "Ihr Besuch zum Termin " + e.appt.Code + " (11:15 Uhr, Zimmer 3) ist an der Pforte Rathaus Musterstadt angekommen."
	if rcv.calls != 2 || len(rcv.got) != 1 || rcv.got[0].Code != e.appt.Code || rcv.got[0].Area != "Zimmer 3" || rcv.got[0].Text != want ||
		rcv.ids[0] != e.appt.ID {
		t.Errorf("calls %d, got %+v, delivery ids %v", rcv.calls, rcv.got, rcv.ids)
	}
	wantDeliveries(t, n, map[string]float64{"delivered": 1, "failed": 1, "given_up": 0})
}

// wantDeliveries checks the notifier's registry_webhook_deliveries_total.
func wantDeliveries(t *testing.T, n *notify.Notifier, want map[string]float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(n)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "registry_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("registry_webhook_deliveries_total = %v, want %v", got, want)
	}
}

// TestWebhookSurvivesRestart: an arrival whose target was down when serve
// stopped is told by the next start; nothing is lost with the process.
func TestWebhookSurvivesRestart(t *testing.T) {
	e := newArrivalEnv(t)
	secret := []byte("geheimnis-der-pforte-2026")
	down, srvDown := newReceiver(t, secret, 1000) // answers 503 for ever
	first := &notify.Notifier{Store: e.Store, Targets: targets(t, secret, "rathaus "+srvDown.URL), Now: e.Clock.Now,
		Backoff: time.Millisecond, Attempts: 1000}
	ctx, stop := context.WithCancel(t.Context())
	first.Start(ctx)
	waitFor(t, "a failed attempt", func() bool { down.mu.Lock(); defer down.mu.Unlock(); return down.calls >= 2 })
	stop() // serve stops while the chat system is down
	if p := e.pending(t); len(p) != 1 || p[0].ID != e.appt.ID {
		t.Fatalf("after the stop %d arrivals pending, want the untold one", len(p))
	}
	up, srvUp := newReceiver(t, secret, 0)
	second := &notify.Notifier{Store: e.Store, Targets: targets(t, secret, "rathaus "+srvUp.URL), Now: e.Clock.Now, Backoff: time.Millisecond}
	ctx2, stop2 := context.WithCancel(t.Context())
	defer stop2()
	second.Start(ctx2)
	up.wait(t)
	waitFor(t, "the arrival marked told", func() bool { return len(e.pending(t)) == 0 })
	if up.got[0].Code != e.appt.Code {
		t.Errorf("delivered %+v", up.got)
	}
}

// TestWebhookGivesUp: a target that never answers 2xx is given up after
// the attempts, and the arrival no longer waits.
func TestWebhookGivesUp(t *testing.T) {
	e := newArrivalEnv(t)
	secret := []byte("geheimnis-der-pforte-2026")
	rcv, srv := newReceiver(t, secret, 1000)
	n := &notify.Notifier{Store: e.Store, Targets: targets(t, secret, "rathaus "+srv.URL), Now: e.Clock.Now, Backoff: time.Millisecond, Attempts: 3}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n.Start(ctx)
	waitFor(t, "the arrival given up", func() bool { return len(e.pending(t)) == 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.calls != 3 {
		t.Errorf("%d attempts, want 3", rcv.calls)
	}
	wantDeliveries(t, n, map[string]float64{"delivered": 0, "failed": 2, "given_up": 1})
}

func TestReadTargetsRefuses(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "s")
	os.WriteFile(sec, []byte("0123456789abcdef0123"), 0o644)
	for _, line := range []string{"rathaus http://example.org/x " + sec, "rathaus https://example.org/x " + sec, "rathaus https://example.org"} {
		p := filepath.Join(dir, "w")
		os.WriteFile(p, []byte(line+"\n"), 0o600)
		if _, err := notify.ReadTargets(p); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("%q: %v, want EINVALID", line, err)
		}
	}
}

// TestWebhookNoRedirects: a target that answers 307 (and one that
// answers 302) is not followed: the signed body reaches the configured
// address once per attempt and the redirect's target never; the
// delivery counts as failed and is given up.
func TestWebhookNoRedirects(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusFound} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := newArrivalEnv(t)
			secret := []byte("geheimnis-der-pforte-2026")
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("the redirect was followed: %s %s", r.Method, r.URL)
			}))
			defer other.Close()
			var mu sync.Mutex
			calls := 0
			hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls++
				mu.Unlock()
				http.Redirect(w, r, other.URL+"/stolen", status)
			}))
			defer hop.Close()
			// A caller's client that would follow redirects is made not to.
			n := &notify.Notifier{Store: e.Store, Targets: targets(t, secret, "rathaus "+hop.URL), Now: e.Clock.Now,
				Backoff: time.Millisecond, Attempts: 2, Client: &http.Client{}}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			n.Start(ctx)
			waitFor(t, "the arrival given up", func() bool { return len(e.pending(t)) == 0 })
			mu.Lock()
			defer mu.Unlock()
			if calls != 2 {
				t.Errorf("%d posts to the configured address, want 2 (one per attempt)", calls)
			}
			wantDeliveries(t, n, map[string]float64{"delivered": 0, "failed": 1, "given_up": 1})
		})
	}
}
