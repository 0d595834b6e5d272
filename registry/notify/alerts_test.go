package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlite"
)

// TestAlerts: a pending request raises request.new at once and
// request.waiting after PendingAfter, each once; the webhook of the
// DPO receives them signed, a failing receiver is retried with backoff
// from the store, and a condition (a failed purge) reaches the DPO's and
// IT's hooks.
func TestAlerts(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store.SetClock(clock)
	r := &registry.TraceRequest{ID: registry.NewID(), CaseRef: "GA-2026-0042", Office: "Gesundheitsamt Musterstadt", LegalBasis: "§ 25 IfSG",
		Contact: "Frau Beispiel", From: now.Add(-48 * time.Hour), To: now.Add(-46 * time.Hour), Sites: []string{"rathaus"},
		OwnerToken: "t1", CreatedBy: registry.TokenActor("t1"), CreatedAt: now}
	if err := store.CreateTraceRequest(ctx, registry.TokenActor("t1"), r); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	got := map[string][]map[string]any{} // by receiver
	fail := true
	secret := []byte("0123456789abcdef0123")
	recv := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			ts, _ := strconv.ParseInt(req.Header.Get("X-Registry-Timestamp"), 10, 64)
			if req.Header.Get("X-Registry-Signature") != Sign(secret, time.Unix(ts, 0), body) {
				t.Errorf("%s: bad signature", name)
			}
			mu.Lock()
			defer mu.Unlock()
			if name == "it" && fail {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var m map[string]any
			json.Unmarshal(body, &m)
			got[name] = append(got[name], m)
		}))
	}
	dpoHook, itHook := recv("dpo"), recv("it")
	defer dpoHook.Close()
	defer itHook.Close()
	purgeFailed := false
	w := &Watcher{Store: store, PublicURL: "https://register.example", PendingAfter: 4 * time.Hour, Now: clock,
		Conditions: func(context.Context, time.Time) []*registry.Alert {
			if !purgeFailed {
				return nil
			}
			return []*registry.Alert{{Key: "purge.failed:2026-11-24", Audience: "dpo it", Subject: "Löschung fehlgeschlagen", Text: "…", CreatedAt: now}}
		}}
	d := &Dispatcher{Store: store, Now: clock, Channels: []Channel{
		&WebhookChannel{Target: Target{Audience: "dpo", URL: dpoHook.URL, Secret: secret}, N: 1, Now: clock},
		&WebhookChannel{Target: Target{Audience: "it", URL: itHook.URL, Secret: secret}, N: 2, Now: clock},
	}}
	step := func(advance time.Duration) {
		t.Helper()
		now = now.Add(advance)
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	kinds := func(name string) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, m := range got[name] {
			out = append(out, m["kind"].(string))
		}
		return out
	}
	step(0)
	step(time.Minute) // nothing new
	if k := kinds("dpo"); len(k) != 1 || k[0] != "request.new" {
		t.Fatalf("DPO hook got %v, want [request.new]", k)
	}
	if link := got["dpo"][0]["link"]; link != "https://register.example/dpo/requests/"+r.ID {
		t.Errorf("link = %v", link)
	}
	step(4 * time.Hour)
	if k := kinds("dpo"); len(k) != 2 || k[1] != "request.waiting" {
		t.Fatalf("DPO hook got %v, want request.waiting second", k)
	}
	// IT's hook fails: retried after 1, 2, 4 minutes, from the store.
	purgeFailed = true
	step(0)
	if k := kinds("dpo"); len(k) != 3 || k[2] != "purge.failed" {
		t.Fatalf("DPO hook got %v, want purge.failed third", k)
	}
	step(30 * time.Second) // not yet due
	list, _ := store.Alerts(ctx, 10)
	var pf *registry.Alert
	for _, a := range list {
		if a.Kind == "purge.failed" {
			pf = a
		}
	}
	if pf == nil || pf.Attempts != 1 || pf.ClosedAt != nil || pf.LastError == "" {
		t.Fatalf("purge alert after a failure = %+v", pf)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	step(31 * time.Second)
	if k := kinds("it"); len(k) != 1 || k[0] != "purge.failed" {
		t.Fatalf("IT hook got %v after the retry, want [purge.failed]", k)
	}
	if k := kinds("dpo"); len(k) != 3 {
		t.Fatalf("DPO hook got %v: a retry sent it again", k)
	}
	if due, _ := store.PendingAlerts(ctx, now.Add(24*time.Hour), 10); len(due) != 0 {
		t.Fatalf("%d alerts still open", len(due))
	}
}
