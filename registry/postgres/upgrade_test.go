package postgres

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/cityhall/registry/registry/postgres/pgtest"
	"github.com/cityhall/registry/registry/storetest"
)

// TestUpgradeFromRelease1 migrates a database of the first release's
// schema, with data and with statistics sampled from its sealed bytes (the
// first release did not exclude them), to the current one.
func TestUpgradeFromRelease1(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	seed := storetest.SeedRelease1(t, db)
	if _, err := db.Exec(`ANALYZE visits`); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open() of a release-1 database = %v", err)
	}
	defer s.Close()
	storetest.CheckUpgrade(t, s.Store, s.DB(), seed)
	var pending int
	if err := s.DB().Get(&pending, `SELECT count(*) FROM settings WHERE name = $1`, settingScrubPending); err != nil || pending != 0 {
		t.Errorf("statistics scrub pending = %d, %v; want done (the test role may rewrite pg_statistic)", pending, err)
	}
}
