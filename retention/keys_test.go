package retention_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

func TestEnsureKeys(t *testing.T) {
	start := mustTime(t, "2026-03-02T23:59:59Z")
	e := newEnv(t, openSQLite(t), start)
	// Today, 13 days ahead, and the 7 days back a paper form may name.
	want := days("2026-02-23", 21)

	t.Run("creates the days ahead", func(t *testing.T) {
		created, covered, err := e.purger.EnsureKeys(e.ctx, "dpo:anna")
		if err != nil || covered != 14 || !slices.Equal(created, want) {
			t.Fatalf("EnsureKeys = %v, %d, %v; want %v, 14, nil", created, covered, err, want)
		}
		if got := e.keyDays(); !slices.Equal(got, want) {
			t.Errorf("key files = %v, want %v", got, want)
		}
		wantPublicHalves(t, e, want)
		if n := countOf(e.auditActions(), registry.AuditEpochKeysCreated); n != 1 {
			t.Errorf("%d %s events, want 1", n, registry.AuditEpochKeysCreated)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		audit := len(e.auditActions())
		created, covered, err := e.purger.EnsureKeys(e.ctx, "dpo:anna")
		if err != nil || covered != 14 || len(created) != 0 {
			t.Fatalf("second EnsureKeys = %v, %d, %v; want none, 14, nil", created, covered, err)
		}
		if got := len(e.auditActions()); got != audit {
			t.Errorf("second EnsureKeys appended %d audit events, want 0", got-audit)
		}
	})
	t.Run("next day", func(t *testing.T) {
		e.clock.Set(start.Add(time.Second))
		created, covered, err := e.purger.EnsureKeys(e.ctx, registry.ActorSystem)
		if want := []registry.Day{"2026-03-16"}; err != nil || covered != 14 || !slices.Equal(created, want) {
			t.Fatalf("EnsureKeys on the next day = %v, %d, %v; want %v, 14, nil", created, covered, err, want)
		}
	})
	if strings.Contains(e.logs.String(), "level=WARN") {
		t.Errorf("unexpected warning:\n%s", e.logs.String())
	}
}

func TestEnsureKeysRepairsPublicHalf(t *testing.T) {
	now := mustTime(t, "2026-03-02T10:00:00Z")
	e := newEnv(t, openSQLite(t), now)
	// A key file written by a run that failed before the database insert.
	orphan, err := e.keys.Create("2026-03-04", crypto.Hybrid, now)
	if err != nil {
		t.Fatal(err)
	}
	created, covered, err := e.purger.EnsureKeys(e.ctx, registry.ActorSystem)
	if err != nil || covered != 14 || !slices.Equal(created, days("2026-02-23", 21)) {
		t.Fatalf("EnsureKeys = %v, %d, %v; want 21 days, 14, nil", created, covered, err)
	}
	k, err := e.store.EpochKey(e.ctx, "2026-03-04")
	if err != nil || k.Recipient != orphan.Recipient {
		t.Errorf("repaired key = %+v, %v; want recipient of the existing file %s", k, err, orphan.Recipient)
	}
	wantPublicHalves(t, e, days("2026-03-02", 14))
}

func TestEnsureKeysWarns(t *testing.T) {
	now := mustTime(t, "2026-03-02T10:00:00Z")
	e := newEnv(t, openSQLite(t), now)
	e.purger.Policy.KeysAhead, e.purger.Policy.KeysWarn = 5, 3
	e.ensureKeysAt(now)
	// The private half of tomorrow's key is lost: only today is usable.
	if _, err := e.keys.Destroy("2026-03-03"); err != nil {
		t.Fatal(err)
	}
	created, covered, err := e.purger.EnsureKeys(e.ctx, registry.ActorSystem)
	if len(created) != 0 || covered != 1 {
		t.Errorf("EnsureKeys = %v, %d; want none, 1", created, covered)
	}
	if registry.ErrorCode(err) != registry.ECONFLICT || !strings.Contains(registry.ErrorMessage(err), "2026-03-03") {
		t.Errorf("EnsureKeys err = %v, want ECONFLICT naming 2026-03-03", err)
	}
	logs := e.logs.String()
	if !containsAll(logs, "level=WARN", "too few days ahead", "covered_days=1", "warn_below=3") {
		t.Errorf("log lacks the warning:\n%s", logs)
	}
	if e.keyFile("2026-03-03") {
		t.Errorf("EnsureKeys recreated a private key the database has another public half for")
	}
}

func TestEnsureKeysNoWarningAtThreshold(t *testing.T) {
	now := mustTime(t, "2026-03-02T10:00:00Z")
	e := newEnv(t, openSQLite(t), now)
	e.purger.Policy.KeysAhead, e.purger.Policy.KeysWarn = 3, 3
	if _, covered, err := e.purger.EnsureKeys(e.ctx, registry.ActorSystem); err != nil || covered != 3 {
		t.Fatalf("EnsureKeys = %d, %v; want 3, nil", covered, err)
	}
	if strings.Contains(e.logs.String(), "level=WARN") {
		t.Errorf("warning with covered == KeysWarn:\n%s", e.logs.String())
	}
}

// TestEnsureKeysKeepsDestroyedDays: after a clock that ran ahead made a
// purge destroy keys of days that are current again, EnsureKeys does not
// bring them back.
func TestEnsureKeysKeepsDestroyedDays(t *testing.T) {
	now := mustTime(t, "2026-03-02T10:00:00Z")
	e := newEnv(t, openSQLite(t), now)
	e.ensureKeysAt(now)
	// The clock jumps 40 days ahead, the purge destroys every key but
	// those of the last three days, then the clock is set right.
	r := e.purge(now.Add(40*24*time.Hour), retention.Options{AllowClockJump: true})
	if want := days("2026-02-23", 18); !slices.Equal(r.KeysDestroyed, want) {
		t.Fatalf("KeysDestroyed = %v, want %v", r.KeysDestroyed, want)
	}
	e.clock.Set(now)
	created, covered, err := e.purger.EnsureKeys(e.ctx, registry.ActorSystem)
	if err != nil || len(created) != 0 || covered != 0 {
		t.Errorf("EnsureKeys = %v, %d, %v; want none, 0, nil", created, covered, err)
	}
	for _, d := range r.KeysDestroyed {
		if e.keyFile(d) {
			t.Errorf("key of destroyed day %s recreated", d)
		}
	}
	if !containsAll(e.logs.String(), "level=WARN", "covered_days=0") {
		t.Errorf("log lacks the warning:\n%s", e.logs.String())
	}
}

// wantPublicHalves checks that the store holds, for each day, the public
// half of the key file.
func wantPublicHalves(t *testing.T, e *env, days []registry.Day) {
	t.Helper()
	for _, d := range days {
		k, err := e.store.EpochKey(e.ctx, d)
		if err != nil {
			t.Errorf("EpochKey(%s): %v", d, err)
			continue
		}
		r, err := e.keys.Recipient(d)
		if err != nil || r != k.Recipient || k.DestroyedAt != nil {
			t.Errorf("key of %s: store %+v, file %q (%v); want the same usable key", d, k, r, err)
		}
	}
}

// TestEnsureKeysSharedKeyStore: two processes (here two purgers with
// their own key store handles) on one database and one key store
// directory start together; both come up with every key usable.
func TestEnsureKeysSharedKeyStore(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			now := mustTime(t, "2026-03-02T10:00:00Z")
			var s registry.Store
			if store == "sqlite" {
				s = openSQLite(t)
			} else {
				s = openPostgres(t)
			}
			for trial := range 10 {
				e := newEnv(t, s, now.AddDate(0, 0, 30*trial))
				other, err := crypto.OpenKeyStore(e.keys.Dir)
				if err != nil {
					t.Fatal(err)
				}
				second := &retention.Purger{Store: s, Keys: other, Policy: e.purger.Policy, Now: e.purger.Now, Logger: e.purger.Logger}
				errs := make(chan error, 2)
				for _, p := range []*retention.Purger{e.purger, second} {
					go func() {
						_, covered, err := p.EnsureKeys(e.ctx, registry.ActorSystem)
						if err == nil && covered != 14 {
							err = fmt.Errorf("covered = %d, want 14", covered)
						}
						errs <- err
					}()
				}
				for range 2 {
					if err := <-errs; err != nil {
						t.Fatalf("trial %d: EnsureKeys = %v", trial, err)
					}
				}
			}
		})
	}
}

// TestKeyStoreTemporaryFiles: a Create in progress in another process (its
// temporary file) is no key to Days, but the purge destroys leftovers of
// expired days.
func TestKeyStoreTemporaryFiles(t *testing.T) {
	now := mustTime(t, "2026-03-02T10:00:00Z")
	e := newEnv(t, openSQLite(t), now)
	e.ensureKeysAt(now)
	tmp := filepath.Join(e.keys.Dir, ".epoch-2026-03-20.age.tmp-123456")
	old := filepath.Join(e.keys.Dir, ".epoch-2026-01-20.age.tmp-99")
	for _, p := range []string{tmp, old} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	days, err := e.keys.Days()
	if err != nil || slices.Contains(days, "2026-03-20") || slices.Contains(days, "2026-01-20") {
		t.Errorf("Days() = %v, %v; want no day of a temporary file", days, err)
	}
	left, err := e.keys.LeftoverDays()
	if err != nil || !slices.Equal(left, []registry.Day{"2026-01-20", "2026-03-20"}) {
		t.Errorf("LeftoverDays() = %v, %v", left, err)
	}
	e.purge(now, retention.Options{})
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover of an expired day survived the purge: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("temporary file of a current day removed: %v", err)
	}
}

// TestDayRecipient: an appointment's day months ahead gets its key on
// demand, once; a destroyed or expired day gets none.
func TestDayRecipient(t *testing.T) {
	now := mustTime(t, "2026-03-02T10:00:00Z")
	e := newEnv(t, openSQLite(t), now)
	e.ensureKeysAt(now)
	ahead := registry.Day("2026-07-15")
	r, err := e.purger.DayRecipient(e.ctx, "user:service", ahead)
	if err != nil || !strings.HasPrefix(r, "age1") {
		t.Fatalf("DayRecipient(%s) = %q, %v", ahead, r, err)
	}
	wantPublicHalves(t, e, []registry.Day{ahead})
	audit := len(e.auditActions())
	if again, err := e.purger.DayRecipient(e.ctx, "user:service", ahead); err != nil || again != r {
		t.Errorf("second DayRecipient = %q, %v; want the same key", again, err)
	}
	if today, err := e.purger.DayRecipient(e.ctx, "user:service", registry.DayOf(now)); err != nil || today == r {
		t.Errorf("DayRecipient(today) = %q, %v; want today's own key", today, err)
	}
	if got := len(e.auditActions()); got != audit {
		t.Errorf("reading existing keys appended %d audit events", got-audit)
	}
	if _, err := e.purger.DayRecipient(e.ctx, "user:service", "2026-01-01"); registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Errorf("DayRecipient(expired day) = %v, want ENOTFOUND", err)
	}
	// After a purge destroyed a day's key, it is never made again.
	rep := e.purge(now.Add(40*24*time.Hour), retention.Options{AllowClockJump: true})
	e.clock.Set(now)
	gone := rep.KeysDestroyed[len(rep.KeysDestroyed)-1]
	if _, err := e.purger.DayRecipient(e.ctx, "user:service", gone); registry.ErrorCode(err) != registry.ENOTFOUND || e.keyFile(gone) {
		t.Errorf("DayRecipient(destroyed %s) = %v, key file %v; want ENOTFOUND and none", gone, err, e.keyFile(gone))
	}
}
