package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/cityhall/registry/registry/storetest"
)

// TestUpgradeFromRelease1 migrates a database of the first release's
// schema, with data, to the current one.
func TestUpgradeFromRelease1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := openPool(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.DB, migrationsFS())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	seed := storetest.SeedRelease1(t, db)
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open() of a release-1 database = %v", err)
	}
	defer s.Close()
	storetest.CheckUpgrade(t, s, sqlx.NewDb(s.DB().DB, "sqlite"), seed)
}
