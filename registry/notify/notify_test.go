package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// TestWebhook: the host's endpoint receives the arrival, signed, after a
// failed first attempt; another host's target receives nothing; nothing
// about the visitor is sent.
func TestWebhook(t *testing.T) {
	secret := []byte("geheimnis-der-pforte-2026")
	var mu sync.Mutex
	var got []Arrival
	calls := 0
	done := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		body, _ := io.ReadAll(r.Body)
		sec, _ := strconv.ParseInt(r.Header.Get("X-Registry-Timestamp"), 10, 64)
		if r.Header.Get("X-Registry-Signature") != Sign(secret, time.Unix(sec, 0), body) {
			t.Errorf("bad signature")
			w.WriteHeader(401)
			return
		}
		if calls == 1 {
			w.WriteHeader(503) // the chat system is down once
			return
		}
		var a Arrival
		if err := json.Unmarshal(body, &a); err != nil {
			t.Errorf("body: %v", err)
		}
		got = append(got, a)
		done <- struct{}{}
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("another host's webhook was called")
	}))
	defer other.Close()

	dir := t.TempDir()
	secFile := filepath.Join(dir, "bauamt.secret")
	os.WriteFile(secFile, append(secret, '\n'), 0o600)
	list := filepath.Join(dir, "webhooks.txt")
	os.WriteFile(list, []byte("# arrivals\nrathaus/Bauamt "+srv.URL+"/hook "+secFile+"\nrathaus/Standesamt "+other.URL+" "+secFile+"\n"), 0o600)
	targets, err := ReadTargets(list)
	if err != nil || len(targets) != 2 {
		t.Fatalf("ReadTargets = %v, %v", targets, err)
	}
	n := &Notifier{Targets: targets, Logger: slog.New(slog.DiscardHandler), Backoff: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n.Start(ctx)
	start := time.Date(2026, 11, 3, 8, 15, 0, 0, time.UTC)
	a := &registry.Appointment{Site: "rathaus", Code: "T-4711", Host: "Bauamt", Area: "Zimmer 3", Start: start}
	n.Notify(NewArrival(a, &registry.Site{Code: "rathaus", Name: "Rathaus Musterstadt"}, start.Add(-5*time.Minute)))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivered")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(got) != 1 || got[0].Code != "T-4711" || got[0].Area != "Zimmer 3" ||
		got[0].Text != "Ihr Besuch zum Termin T-4711 (09:15 Uhr, Zimmer 3) ist an der Pforte Rathaus Musterstadt angekommen." {
		t.Errorf("calls %d, got %+v", calls, got)
	}
}

func TestReadTargetsRefuses(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "s")
	os.WriteFile(sec, []byte("0123456789abcdef0123"), 0o644)
	for _, line := range []string{"rathaus http://example.org/x " + sec, "rathaus https://example.org/x " + sec, "rathaus https://example.org"} {
		p := filepath.Join(dir, "w")
		os.WriteFile(p, []byte(line+"\n"), 0o600)
		if _, err := ReadTargets(p); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("%q: %v, want EINVALID", line, err)
		}
	}
}
