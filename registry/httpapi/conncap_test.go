package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/httpapi"
)

// dialFrom opens a TCP connection to the server from the local address.
func dialFrom(t *testing.T, s *testServer, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPerClientConnectionCap: one address holding idle connections gets
// no more than PerClientConns served; the others are never served (held,
// then closed), and another client is served without waiting although
// MaxConns is no higher than the flood.
func TestPerClientConnectionCap(t *testing.T) {
	l := httpapi.DefaultLimits()
	l.MaxConns, l.PerClientConns = 16, 8
	s, _ := newSQLiteServer(t, serverOptions{limits: &l})
	var conns []net.Conn
	for range 20 {
		conns = append(conns, dialFrom(t, s, "127.0.0.2"))
	}
	// A served connection answers a request; a refused one never does.
	results := make(chan bool, len(conns))
	for _, c := range conns {
		go func() {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
			_, err := http.ReadResponse(bufio.NewReader(c), nil)
			results <- err == nil
		}()
	}
	served := 0
	for range conns {
		if <-results {
			served++
		}
	}
	if served != 8 {
		t.Errorf("%d of 20 connections from one address served, want 8 (the cap)", served)
	}
	start := time.Now()
	c := dialFrom(t, s, "127.0.0.1")
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("another client: %v, %v", resp, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("another client waited %v", d)
	}
}

// TestPerClientRequestCapBehindProxy: behind a trusted proxy every
// connection comes from the proxy, which is not capped; the requests in
// flight are capped per forwarded address instead.
func TestPerClientRequestCapBehindProxy(t *testing.T) {
	l := httpapi.DefaultLimits()
	l.PerClientConns = 2
	l.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s, _ := newSQLiteServer(t, serverOptions{limits: &l, readTimeout: 3 * time.Second})
	stalled := func(client string) net.Conn {
		c := dialFrom(t, s, "127.0.0.1")
		fmt.Fprintf(c, "POST /v1/visits HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", client, s.intake)
		return c
	}
	stalled("203.0.113.7")
	stalled("203.0.113.7")
	get := func(client string) int {
		c := dialFrom(t, s, "127.0.0.1")
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\nConnection: close\r\n\r\n", client)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Once both stalled requests are in flight, a third is refused.
	st := 0
	for deadline := time.Now().Add(2 * time.Second); st != 429 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st = get("203.0.113.7")
	}
	if st != 429 {
		t.Errorf("a third request in flight of one forwarded client: %d, want 429", st)
	}
	if st := get("198.51.100.4"); st != 200 {
		t.Errorf("another forwarded client: %d, want 200 (the proxy's connections are not capped)", st)
	}
}
