package postgres_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

// TestOpenSaysWhy: each usual fault of a first connection gets a message
// that names it, and never the password.
func TestOpenSaysWhy(t *testing.T) {
	server, err := url.Parse(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	withDB := func(name, query string) string {
		u := *server
		u.User = url.UserPassword(server.User.Username(), "secret-pw")
		u.Path, u.RawQuery = "/"+name, query
		return u.String()
	}
	refused := freePort(t)
	silent := silentListener(t)
	tests := []struct{ name, dsn, want string }{
		{"unknown database", withDB("no_such_db", "sslmode=disable"), `no database "no_such_db"`},
		{"TLS required", withDB("postgres", "sslmode=require"), "does not offer TLS"},
		{"connection refused", "postgres://registry:secret-pw@" + refused + "/x?sslmode=disable", "refused the connection"},
		{"no answer", "postgres://registry:secret-pw@" + silent + "/x?sslmode=disable", "did not answer"},
		{"unknown host", "postgres://registry:secret-pw@no-such-host.invalid/x?sslmode=disable", "cannot be resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := postgres.Open(ctx, tt.dsn)
			if registry.ErrorCode(err) != registry.EUNAVAILABLE {
				t.Fatalf("Open() = %v, want EUNAVAILABLE", err)
			}
			msg := registry.ErrorMessage(err)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
			if strings.Contains(err.Error(), "secret-pw") || strings.Contains(msg, "secret-pw") {
				t.Errorf("error %q reveals the password", err)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("Open() took %v", d)
			}
		})
	}
}

// TestPasswordMessage: a refused password is named as such; the test
// cluster trusts every local connection, so the server's answer is made up.
func TestPasswordMessage(t *testing.T) {
	msg := postgres.ExplainServerError("28P01", "registry", "registry")
	if !strings.Contains(msg, "password") || !strings.Contains(msg, "PGPASSWORD") {
		t.Errorf("message %q does not point at the password", msg)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentListener accepts connections and never answers, like a stopped
// PostgreSQL process.
func silentListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}
