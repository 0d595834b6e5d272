package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedactAddrs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"read tcp 127.0.0.1:58441->127.0.0.1:8080: i/o timeout", "read tcp [address]->[address]: i/o timeout"},
		{"http: TLS handshake error from 192.168.17.4:41234: EOF", "http: TLS handshake error from [address]: EOF"},
		{"dial tcp [2001:db8::17]:5432: connect: connection refused", "dial tcp [address]: connect: connection refused"},
		{"client fe80::1 said hello", "client [address] said hello"},
		{"at 2026-12-01T09:30:00Z, version 1.26.8, id 4f1c2a9e0b7d3c11", "at 2026-12-01T09:30:00Z, version 1.26.8, id 4f1c2a9e0b7d3c11"},
		{"deleted 212 visits; cafe added", "deleted 212 visits; cafe added"},
	}
	for _, tt := range tests {
		if got := redactAddrs(tt.in); got != tt.want {
			t.Errorf("redactAddrs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLoggerRedactsErrors: a network error, wrapped, in any attribute or
// group, reaches the log without addresses.
func TestLoggerRedactsErrors(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	log := slog.New(newGuard(slog.NewTextHandler(&buf, nil), func() time.Time { return now }))
	opErr := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555},
		Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 8080}, Err: errors.New("i/o timeout")}
	log.Info("read body", "error", fmt.Errorf("read: %w", opErr), slog.Group("peer", "addr", "10.1.2.3:5555"))
	log.With("remote", "10.1.2.3").Error("x")
	if strings.Contains(buf.String(), "10.1.2.3") || strings.Contains(buf.String(), "10.9.8.7") {
		t.Errorf("log holds an address:\n%s", buf.String())
	}
	// The server's own address is logged as it is.
	buf.Reset()
	log.Info("serving", "url", ownAddress("http://127.0.0.1:8080"), "client", "10.1.2.3")
	if !strings.Contains(buf.String(), "url=http://127.0.0.1:8080") || strings.Contains(buf.String(), "10.1.2.3") {
		t.Errorf("serving line: %s", buf.String())
	}
}

// TestLoggerCollapsesRepeats: identical warnings within a second become
// one line; the next line after the window says how many were left out.
func TestLoggerCollapsesRepeats(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	log := slog.New(newGuard(slog.NewTextHandler(&buf, nil), func() time.Time { return now }))
	for range 500 {
		log.Warn("database unavailable")
		log.Info("http request")
		now = now.Add(time.Millisecond)
	}
	now = now.Add(time.Second)
	log.Warn("database unavailable")
	got := buf.String()
	if n := strings.Count(got, "database unavailable"); n != 2 {
		t.Errorf("%d warning lines, want 2:\n%s", n, got)
	}
	if !strings.Contains(got, "repeated=499") {
		t.Errorf("no count of the left-out lines:\n%s", got)
	}
	if n := strings.Count(got, "http request"); n != 500 {
		t.Errorf("%d info lines, want all 500", n)
	}
}
