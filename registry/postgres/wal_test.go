package postgres_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/sqlstore"
)

// walHits counts how many of the payloads occur in the server's pg_wal
// segments.
func walHits(t *testing.T, s *postgres.Store, payloads [][]byte) int {
	t.Helper()
	// The test server commits asynchronously: wait until the WAL inserted
	// so far is written to the segment files.
	var inserted string
	if err := s.DB().Get(&inserted, `SELECT pg_current_wal_insert_lsn()::text`); err != nil {
		t.Fatal(err)
	}
	for written := false; !written; {
		if err := s.DB().Get(&written, `SELECT pg_current_wal_lsn() >= $1::pg_lsn`, inserted); err != nil {
			t.Fatal(err)
		}
		if !written {
			time.Sleep(10 * time.Millisecond)
		}
	}
	var dataDir string
	if err := s.DB().Get(&dataDir, `SELECT current_setting('data_directory')`); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, "pg_wal")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v (the test must run on the server's host as its user)", dir, err)
	}
	var data []byte
	for _, e := range entries {
		if !e.Type().IsRegular() || len(e.Name()) != 24 { // segments, not .history or archive_status
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	// A WAL page header may split a record: a payload counts when any
	// 48-byte piece of it is found.
	n := 0
	for _, p := range payloads {
		for i := 0; i+48 <= len(p); i += 48 {
			if bytes.Contains(data, p[i:i+48]) {
				n++
				break
			}
		}
	}
	return n
}

// TestPurgeFlushesWAL measures what the write-ahead log keeps of purged
// visits: before the purge every inserted payload is in pg_wal; after it
// (a WAL switch and a checkpoint, with wal_recycle = off) the segments
// that held them are gone. Measured before the flush existed: 20 of 20
// stayed; with the flush but wal_recycle = on, 20 of 20 stayed in the
// recycled segments.
func TestPurgeFlushesWAL(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	w, err := s.WAL(ctx)
	if err != nil || !w.Privilege || w.Recycle {
		t.Fatalf("WAL() = %+v, %v; the test server runs as a superuser with wal_recycle=off (scripts/pg-test-server), as the README tells installations to", w, err)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cutoff := now.Add(-28 * 24 * time.Hour)
	expired := seedExpired(t, s, cutoff)
	before := walHits(t, s, expired)
	if before != len(expired) {
		t.Fatalf("before the purge %d of %d payloads found in pg_wal: the scan does not work", before, len(expired))
	}
	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff})
	if err != nil || rep.VisitsDeleted != int64(len(expired)) {
		t.Fatalf("Purge() = %+v, %v", rep, err)
	}
	after := walHits(t, s, expired)
	t.Logf("purged payloads in pg_wal: %d of %d before the purge, %d after", before, len(expired), after)
	if after != 0 {
		t.Errorf("%d of %d purged payloads still in pg_wal after the purge", after, len(expired))
	}
}

// TestWALPrivilege: an ordinary role may not flush the WAL (the purge
// then leaves it to the server); granted pg_checkpoint and EXECUTE on
// pg_switch_wal it may.
func TestWALPrivilege(t *testing.T) {
	ctx := context.Background()
	admin := open(t)
	var dbname string
	if err := admin.DB().Get(&dbname, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	role := "walrole_" + dbname[len(dbname)-8:]
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT ALL ON SCHEMA public TO ` + role,
		`GRANT ALL ON ALL TABLES IN SCHEMA public TO ` + role,
		`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ` + role,
	} {
		if _, err := admin.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		admin.DB().Exec(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ` + role)
		admin.DB().Exec(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ` + role)
		admin.DB().Exec(`REVOKE ALL ON SCHEMA public FROM ` + role)
		admin.DB().Exec(`REVOKE pg_checkpoint FROM ` + role)
		admin.DB().Exec(`REVOKE EXECUTE ON FUNCTION pg_switch_wal() FROM ` + role)
		admin.DB().Exec(`DROP ROLE ` + role)
	})
	u, err := url.Parse(os.Getenv("REGISTRY_TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	u.User, u.Path = url.User(role), "/"+dbname
	db, err := sqlx.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ok, err := postgres.WALPrivilege(ctx, db); err != nil || ok {
		t.Fatalf("WALPrivilege of an ordinary role = %v, %v; want false", ok, err)
	}
	for _, q := range []string{`GRANT pg_checkpoint TO ` + role, `GRANT EXECUTE ON FUNCTION pg_switch_wal() TO ` + role} {
		if _, err := admin.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if ok, err := postgres.WALPrivilege(ctx, db); err != nil || !ok {
		t.Fatalf("WALPrivilege after the grants = %v, %v; want true", ok, err)
	}
	for _, q := range []string{`SELECT pg_switch_wal()`, `CHECKPOINT`} {
		if _, err := db.Exec(q); err != nil {
			t.Errorf("%s with the grants: %v", q, err)
		}
	}
}

// TestDiskFullIsUnavailable: the server's disk_full and io_error are what
// SQLite's SQLITE_FULL is (TestDiskFull in cmd/registry fills a real
// disk): 503, and not ready until a write succeeds again.
func TestDiskFullIsUnavailable(t *testing.T) {
	for _, code := range []string{"53100", "58030"} {
		if got := postgres.ErrorCodeOf(code); got != sqlstore.CodeNoWrite {
			t.Errorf("SQLSTATE %s classified %q, want %q", code, got, sqlstore.CodeNoWrite)
		}
	}
	if got := postgres.ErrorCodeOf("53200"); got != registry.EUNAVAILABLE { // out_of_memory
		t.Errorf("SQLSTATE 53200 classified %q, want %q", got, registry.EUNAVAILABLE)
	}
}
