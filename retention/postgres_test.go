package retention_test

import (
	"context"
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

// TestPurgePostgres runs the end-to-end purge on PostgreSQL (a fresh
// database on the server of REGISTRY_TEST_POSTGRES_DSN, see pgtest).
func TestPurgePostgres(t *testing.T) { testPurge(t, openPostgres) }

func openPostgres(t *testing.T) registry.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
