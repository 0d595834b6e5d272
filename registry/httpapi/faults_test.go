package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// rawRequest writes head and then body to a new connection, half-closing
// it when closeWrite is set, and reads the answer.
func rawRequest(t *testing.T, s *testServer, head, body string, closeWrite bool) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprint(c, head, body); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	resp.Body.Close()
	return resp
}

// TestBrokenBodies: a body that stalls is answered 408 and one that ends
// before its announced length 400; neither is an internal error, and no
// log line names the client's address.
func TestBrokenBodies(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{publicSites: []string{"rathaus"}, readTimeout: 300 * time.Millisecond})
	head := func(path, ctype string, n int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, s.intake, ctype, n)
	}
	part := validBody[:40]
	for _, tt := range []struct {
		name, path, ctype string
		closeWrite        bool
		want              int
	}{
		{"API body stalls", "/v1/visits", "application/json", false, 408},
		{"API body ends early", "/v1/visits", "application/json", true, 400},
		{"form stalls", "/checkin/rathaus", "application/x-www-form-urlencoded", false, 408},
		{"form ends early", "/checkin/rathaus", "application/x-www-form-urlencoded", true, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawRequest(t, s, head(tt.path, tt.ctype, len(validBody)), part, tt.closeWrite)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	logs := s.logs.String()
	if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "127.0.0.1:") {
		t.Errorf("log holds an error or a client address:\n%s", logs)
	}
	if n := countVisits(t, s); n != 0 {
		t.Errorf("stored visits = %d, want 0", n)
	}
}

// TestStalledBodyIsNot503: the request timeout is shorter than the read
// timeout (as by default: 5 s and 15 s). A body that stalls is still the
// read timeout's (408: send it again), never the request timeout's 503,
// which would tell the client that something may have been stored.
func TestStalledBodyIsNot503(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{publicSites: []string{"rathaus"}, readTimeout: 600 * time.Millisecond, requestTimeout: 150 * time.Millisecond})
	for _, tt := range []struct{ path, ctype string }{{"/v1/visits", "application/json"}, {"/checkin/rathaus", "application/x-www-form-urlencoded"}} {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", tt.path, s.intake, tt.ctype, len(validBody))
		if resp := rawRequest(t, s, head, validBody[:40], false); resp.StatusCode != 408 {
			t.Errorf("%s: stalled body answered %d, want 408", tt.path, resp.StatusCode)
		}
	}
	// A whole body is answered as ever.
	if r := s.register(t, validBody, "whole"); r.status != 201 {
		t.Errorf("registration: %d", r.status)
	}
}

// hangingStore stands for a database that accepts connections but never
// answers (a stopped PostgreSQL process): once hang is closed, every call
// that reaches the database blocks, deaf to its context, as lib/pq does.
type hangingStore struct {
	registry.Store
	hang chan struct{}
	stop chan struct{}
}

func (h *hangingStore) block() {
	select {
	case <-h.hang:
		<-h.stop
	default:
	}
}

func (h *hangingStore) Ping(ctx context.Context) error { h.block(); return h.Store.Ping(ctx) }

func (h *hangingStore) CreateParties(ctx context.Context, p []*registry.Party) error {
	h.block()
	return h.Store.CreateParties(ctx, p)
}

func (h *hangingStore) FindTokenByHash(ctx context.Context, hash []byte) (*registry.Token, error) {
	h.block()
	return h.Store.FindTokenByHash(ctx, hash)
}

// TestSilentDatabase: with the database silent, registrations, pages and
// /readyz are answered 503 with Retry-After within the request timeout,
// and nothing is acknowledged.
func TestSilentDatabase(t *testing.T) {
	store, _ := sqliteStore(t)
	h := &hangingStore{Store: store, hang: make(chan struct{}), stop: make(chan struct{})}
	s := newServer(t, h, serverOptions{publicSites: []string{"rathaus"}, requestTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { close(h.stop) }) // before the server and service close: they wait for the hung calls
	nonce := getForm(t, s, "rathaus")
	close(h.hang)
	for _, req := range []struct {
		name string
		do   func() *response
	}{
		{"registration", func() *response { return s.register(t, validBody, "k1") }},
		{"form", func() *response { return postFormFrom(t, s, "rathaus", nonce, "") }},
		{"readyz", func() *response { return s.do(t, request{method: "GET", path: "/readyz"}) }},
	} {
		t.Run(req.name, func(t *testing.T) {
			start := time.Now()
			r := req.do()
			if r.status != 503 || r.header.Get("Retry-After") == "" && req.name != "readyz" {
				t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("answered after %v", d)
			}
			if req.name == "registration" && !strings.Contains(string(r.body), "may have been stored: retry only with the same Idempotency-Key") {
				t.Errorf("a registration's 503 does not say that it may have been stored: %s", r.body)
			}
		})
	}
}
