package retention_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"filippo.io/age"
	_ "modernc.org/sqlite"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

// TestCryptoShreddingReachesBackups is the requirement: once the
// purge destroyed a day's epoch key, a backup of the database taken while
// the day's records still existed cannot be read any more, not even with
// the health office's identity, while the records of days still in
// retention open from the same backup copy.
func TestCryptoShreddingReachesBackups(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "registry.db")
	store, _ := openSQLiteAt(t, dbPath)
	e := newEnv(t, store, mustTime(t, "2026-03-02T08:00:00Z"))
	e.ensureKeysAt(mustTime(t, "2026-03-02T08:00:00Z"))
	var expired, live []*visit
	for _, at := range []string{"2026-03-02T08:30:00Z", "2026-03-02T14:10:00Z", "2026-03-03T17:45:00Z"} {
		e.clock.Set(mustTime(t, at))
		expired = append(expired, e.register(mustTime(t, at), true))
	}
	for _, at := range []string{"2026-03-10T09:00:00Z", "2026-03-10T09:00:01Z", "2026-03-14T23:59:59Z"} {
		e.clock.Set(mustTime(t, at))
		live = append(live, e.register(mustTime(t, at), true))
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	vacuumInto(t, dbPath, backup)
	old, _ := openSQLiteAt(t, backup)
	// Before the purge the backup is as readable as the database.
	for _, v := range append(slices.Clone(expired), live...) {
		wantOpens(t, e.keys, findIn(t, old, v.ID), e.office, v)
	}

	// 2026-04-02T00:00Z is the first instant at which the keys of
	// 2026-03-02 and 2026-03-03 are expired (end of day + 28 days + 1 day);
	// every later day keeps its key.
	// No purge ran for 18 days: the operator confirms the clock.
	r := e.purge(mustTime(t, "2026-04-02T00:00:00Z"), retention.Options{AllowClockJump: true})
	// The key run also made keys for the 7 days before the first day.
	if want := days("2026-02-23", 9); !slices.Equal(r.KeysDestroyed, want) {
		t.Fatalf("KeysDestroyed = %v, want %v", r.KeysDestroyed, want)
	}
	if r.VisitsDeleted != 3 || r.VisitsRemaining != 3 {
		t.Errorf("purge deleted %d and kept %d visits, want 3 and 3", r.VisitsDeleted, r.VisitsRemaining)
	}

	for _, v := range expired {
		if e.find(v.ID) != nil {
			t.Errorf("expired visit %s still in the database", v.ID)
		}
		bv := findIn(t, old, v.ID)
		if bv == nil || !bytes.Equal(bv.Sealed, v.Sealed) {
			t.Fatalf("backup lacks the sealed record of expired visit %s", v.ID)
		}
		if _, err := e.keys.Identity(bv.Epoch); registry.ErrorCode(err) != registry.ENOTFOUND {
			t.Errorf("key of %s after purge: err = %v, want ENOTFOUND", bv.Epoch, err)
		}
		if _, err := openContact(e.keys, bv, e.office); registry.ErrorCode(err) != registry.ENOTFOUND {
			t.Errorf("opening expired record %s from the backup: err = %v, want ENOTFOUND", v.ID, err)
		}
		wantNoKeyOpens(t, e.keys, bv, e)
	}
	for _, v := range live {
		wantOpens(t, e.keys, findIn(t, old, v.ID), e.office, v)
	}
}

// wantNoKeyOpens tries every key left in the key store on the record.
func wantNoKeyOpens(t *testing.T, keys *crypto.KeyStore, v *registry.Visit, e *env) {
	t.Helper()
	for _, d := range e.keyDays() {
		id, err := keys.Identity(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.Open(v, id, e.office); err == nil {
			t.Errorf("record of %s opened with the key of %s", v.Epoch, d)
		}
	}
}

func wantOpens(t *testing.T, keys *crypto.KeyStore, v *registry.Visit, office []age.Identity, want *visit) {
	t.Helper()
	if v == nil {
		t.Fatalf("record %s missing", want.ID)
	}
	c, err := openContact(keys, v, office)
	if err != nil {
		t.Fatalf("open record %s of %s: %v", v.ID, v.Epoch, err)
	}
	if err := sameContact(c, want.contact); err != nil {
		t.Errorf("record %s: %v", v.ID, err)
	}
}

// vacuumInto writes a consistent copy of the SQLite database, as a backup
// job would.
func vacuumInto(t *testing.T, src, dst string) {
	t.Helper()
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), `VACUUM INTO ?`, dst); err != nil {
		t.Fatalf("VACUUM INTO: %v", err)
	}
}
