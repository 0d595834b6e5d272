package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
	"github.com/cityhall/registry/registry/storetest"
)

// open returns a store on a fresh database.
func open(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) registry.Store { return open(t) })
}

// TestOpenConcurrent opens one new database from several goroutines at
// once: the session lock must let the migrations run once.
func TestOpenConcurrent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	storetest.OpensConcurrently(t, func() (registry.Store, error) { return postgres.Open(context.Background(), dsn) })
}

func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody:secret-pw@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if got := registry.ErrorCode(err); got != registry.EUNAVAILABLE {
		t.Errorf("Open() error code = %q (%v), want %q", got, err, registry.EUNAVAILABLE)
	}
	if err != nil && strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("Open() error %q reveals the password", err)
	}
}

func TestTampering(t *testing.T) {
	s := open(t)
	storetest.Tampering(t, s, s.DB())
}

func TestDataTampering(t *testing.T) {
	s := open(t)
	storetest.DataTampering(t, s, s.DB())
}
