package retention_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlite"
	"github.com/cityhall/registry/retention"
)

// benchNow is the clock of the benchmarks; every seeded visit is expired.
var benchNow = time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC)

// benchRows is the number of expired visits, REGISTRY_BENCH_PURGE_ROWS or
// 100,000.
func benchRows(b *testing.B) int {
	b.Helper()
	s := os.Getenv("REGISTRY_BENCH_PURGE_ROWS")
	if s == "" {
		return 100_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("REGISTRY_BENCH_PURGE_ROWS=%q: want a positive number", s)
	}
	return n
}

// BenchmarkPurge times one Purger.Purge of N expired visits (with their 30
// days of epoch keys) on SQLite, next to baselines measured in the same
// run: a plain DELETE FROM visits of the same rows without and with
// secure_delete, and the store's own statements alone (DELETE … WHERE
// check_in < cutoff with secure_delete, then the WAL checkpoint), which
// shows what the purger, the audit event and the key destruction add.
// Every iteration starts from a copy of one seeded database file. It runs
// for post-quantum hybrid and for X25519 keys: rows and keys of each
// kind's size (a hybrid record is 3,567 bytes, an X25519 one 649).
func BenchmarkPurge(b *testing.B) {
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		b.Run(kind.String(), func(b *testing.B) { benchmarkPurge(b, kind) })
	}
}

// sealedSize is the size of a stored record of the key kind
// (crypto.BenchmarkSeal's stored-bytes).
var sealedSize = map[crypto.KeyKind]int{crypto.Hybrid: 3567, crypto.X25519: 649}

func benchmarkPurge(b *testing.B, kind crypto.KeyKind) {
	rows := benchRows(b)
	seed := seedBench(b, rows, kind)
	b.Run("Purger.Purge", func(b *testing.B) {
		for range b.N {
			p := seed.purger(b)
			b.StartTimer()
			r, err := p.Purge(context.Background(), retention.Options{})
			b.StopTimer()
			if err != nil || r.VisitsDeleted != int64(rows) || len(r.KeysDestroyed) != benchDays {
				b.Fatalf("Purge = %+v, %v; want %d visits and %d keys", r, err, rows, benchDays)
			}
			p.Store.Close()
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	baselines := []struct {
		name, secure, query string
		checkpoint          bool
	}{
		{"baseline-DELETE", "OFF", `DELETE FROM visits`, false},
		{"baseline-DELETE-secure_delete", "ON", `DELETE FROM visits`, false},
		{"baseline-store-SQL", "ON", `DELETE FROM visits WHERE check_in < ?`, true},
	}
	for _, bl := range baselines {
		b.Run(bl.name, func(b *testing.B) {
			for range b.N {
				db := openRaw(b, copyFile(b, seed.db), bl.secure)
				b.StartTimer()
				rawDelete(b, db, bl.query, bl.checkpoint, rows)
				b.StopTimer()
				db.Close()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func rawDelete(b *testing.B, db *sql.DB, query string, checkpoint bool, rows int) {
	b.Helper()
	var args []any
	if strings.Contains(query, "?") {
		args = append(args, retention.DefaultPolicy().Cutoff(benchNow).UnixMicro())
	}
	res, err := db.Exec(query, args...)
	if err != nil {
		b.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != int64(rows) {
		b.Fatalf("%s deleted %d rows, want %d", query, n, rows)
	}
	if checkpoint {
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDays is the number of days the seeded visits spread over.
const benchDays = 30

// benchSeed is a seeded database file and key store directory.
type benchSeed struct{ db, keys string }

// seedBench writes a database with rows expired visits, each with sealed
// data of a record of kind's size, spread over benchDays days, and a key
// store with those days' keys of kind.
func seedBench(b *testing.B, rows int, kind crypto.KeyKind) *benchSeed {
	b.Helper()
	dir := b.TempDir()
	seed := &benchSeed{db: filepath.Join(dir, "template.db"), keys: filepath.Join(dir, "keys")}
	s, err := sqlite.Open(context.Background(), seed.db)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetClock(func() time.Time { return benchNow }) // audit times on the benchmarks' clock
	first := benchNow.Add(-60 * 24 * time.Hour)
	seed.addKeys(b, s, registry.DayOf(first), kind)
	const batch = 1000
	for i := 0; i < rows; i += batch {
		parties := make([]*registry.Party, min(batch, rows-i))
		for j := range parties {
			checkIn := first.Add(time.Duration(i+j) * (benchDays * 24 * time.Hour) / time.Duration(rows))
			sealed := make([]byte, sealedSize[kind])
			rand.Read(sealed)
			parties[j] = &registry.Party{Actor: registry.ActorSystem, Visits: []*registry.Visit{{
				ID: registry.NewVisitID(checkIn), Site: "rathaus", CheckIn: checkIn,
				CheckOut: ptr(checkIn.Add(time.Hour)), Epoch: registry.DayOf(checkIn), Sealed: sealed, CreatedAt: checkIn}}}
		}
		if err := s.CreateParties(context.Background(), parties); err != nil {
			b.Fatal(err)
		}
	}
	return seed
}

// addKeys creates the keys of benchDays days from first on.
func (seed *benchSeed) addKeys(b *testing.B, s registry.Store, first registry.Day, kind crypto.KeyKind) {
	b.Helper()
	keys, err := crypto.OpenKeyStore(seed.keys)
	if err != nil {
		b.Fatal(err)
	}
	var add []*registry.EpochKey
	for i := range benchDays {
		k, err := keys.Create(first.AddDays(i), kind, first.Start())
		if err != nil {
			b.Fatal(err)
		}
		add = append(add, k)
	}
	if err := s.AddEpochKeys(context.Background(), registry.ActorSystem, add); err != nil {
		b.Fatal(err)
	}
}

// purger returns a purger on fresh copies of the database and key store.
func (seed *benchSeed) purger(b *testing.B) *retention.Purger {
	b.Helper()
	s, err := sqlite.Open(context.Background(), copyFile(b, seed.db))
	if err != nil {
		b.Fatal(err)
	}
	s.SetClock(func() time.Time { return benchNow })
	dir := filepath.Join(b.TempDir(), "keys")
	if err := os.CopyFS(dir, os.DirFS(seed.keys)); err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	keys, err := crypto.OpenKeyStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	return &retention.Purger{Store: s, Keys: keys, Policy: retention.DefaultPolicy(),
		Now: func() time.Time { return benchNow }, Logger: slog.New(slog.DiscardHandler)}
}

// openRaw opens the file with the store's pragmas but secure_delete as
// given.
func openRaw(b *testing.B, path, secure string) *sql.DB {
	b.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete("+secure+")")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		b.Fatal(err)
	}
	return db
}

func copyFile(b *testing.B, src string) string {
	b.Helper()
	dst := filepath.Join(b.TempDir(), "registry.db")
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
}

func ptr[T any](v T) *T { return &v }
