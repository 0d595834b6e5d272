package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// SealedSize is the size of a realistic sealed contact: two age layers
// around about 240 bytes of contact JSON.
const SealedSize = 700

func benchVisits(n int, checkIn time.Time) []*registry.Visit {
	visits := make([]*registry.Visit, n)
	for i := range visits {
		sealed := make([]byte, SealedSize)
		rand.Read(sealed)
		visits[i] = &registry.Visit{
			ID: registry.NewVisitID(checkIn), Site: "rathaus", Area: "buergerbuero", CheckIn: checkIn,
			Epoch: registry.DayOf(checkIn), Sealed: sealed, CreatedAt: checkIn,
		}
	}
	return visits
}

// BenchCreateVisits measures CreateParties with batches of the size (one
// visit with an idempotency key per party) and reports rows/s.
func BenchCreateVisits(b *testing.B, s registry.Store, batch int) {
	ctx := context.Background()
	now := time.Now().UTC()
	rows := 0
	for b.Loop() {
		b.StopTimer()
		visits := benchVisits(batch, now)
		parties := make([]*registry.Party, batch)
		for i, v := range visits {
			parties[i] = party("token:bench", &registry.IdempotencyKey{Hash: v.Sealed[:32], RequestMAC: v.Sealed[32:64], CheckIn: v.CheckIn, Visits: 1}, v)
		}
		b.StartTimer()
		if err := s.CreateParties(ctx, parties); err != nil {
			b.Fatal(err)
		}
		rows += batch
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

const rawInsert = `INSERT INTO visits (id, site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// BenchRawInsert is the baseline for BenchCreateVisits: the same rows in
// transactions of the same size through plain INSERTs on db, without
// idempotency, audit or prepared statements. It reports rows/s.
func BenchRawInsert(b *testing.B, db *sqlx.DB, batch int) {
	ctx := context.Background()
	now := time.Now().UTC()
	q := db.Rebind(rawInsert)
	rows := 0
	for b.Loop() {
		b.StopTimer()
		visits := benchVisits(batch, now)
		b.StartTimer()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range visits {
			if _, err := tx.ExecContext(ctx, q, v.ID, v.Site, v.Area, v.CheckIn.UnixMicro(), nil, false, string(v.Epoch), v.Sealed, v.CreatedAt.UnixMicro()); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		rows += batch
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchPurgeRows returns REGISTRY_BENCH_PURGE_ROWS, the number of expired
// visits a purge benchmark deletes, or 100,000.
func BenchPurgeRows(b *testing.B) int {
	s := os.Getenv("REGISTRY_BENCH_PURGE_ROWS")
	if s == "" {
		return 100_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("REGISTRY_BENCH_PURGE_ROWS=%q is not a positive number", s)
	}
	return n
}

// BenchPurge measures one Purge that deletes the expired visits from a
// table that also holds the kept ones. The bulk insert is not timed; each
// iteration gets a fresh store from open.
func BenchPurge(b *testing.B, expired, kept int, open func() (registry.Store, *sqlx.DB)) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	cutoff := now.Add(-28 * 24 * time.Hour)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, db := open()
		BulkInsertVisits(b, s, db, expired, cutoff.Add(-time.Hour), cutoff)
		BulkInsertVisits(b, s, db, kept, cutoff, now)
		b.StartTimer()
		rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: now, Cutoff: cutoff, StaleBefore: now.Add(-12 * time.Hour), MaxStay: 12 * time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		if rep.VisitsDeleted != int64(expired) {
			b.Fatalf("VisitsDeleted = %d, want %d", rep.VisitsDeleted, expired)
		}
	}
}

// BulkInsertAppointments writes perDay appointments a day from from to to
// through plain SQL, every tenth with a sealed note of SealedSize bytes
// and every other one linked to a (random) visit id.
func BulkInsertAppointments(tb testing.TB, db *sqlx.DB, perDay int, from, to time.Time) {
	tb.Helper()
	q := db.Rebind(`INSERT INTO appointments (id, site, day, code, host, area, start_at, end_at, status, source, uid, visit_id, created_at,
note_epoch, note_sealed) VALUES (?, 'rathaus', ?, ?, 'Bauamt', '', ?, ?, 'expected', 'api', '', ?, ?, ?, ?)`)
	tx, err := db.Beginx()
	if err != nil {
		tb.Fatal(err)
	}
	for d := from; d.Before(to); d = d.Add(24 * time.Hour) {
		for i := range perDay {
			start := d.Add(time.Duration(i) * 24 * time.Hour / time.Duration(perDay))
			visit, epoch, note := "", "", []byte(nil)
			if i%2 == 0 {
				visit = registry.NewVisitID(start)
			}
			if i%10 == 0 {
				epoch, note = string(registry.DayOf(start)), make([]byte, SealedSize)
				rand.Read(note)
			}
			if _, err := tx.Exec(q, registry.NewID(), string(registry.LocalDay(start)), fmt.Sprintf("T-%04d", 1000+i), start.UnixMicro(),
				start.Add(30*time.Minute).UnixMicro(), visit, start.UnixMicro(), epoch, note); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// prepareDays prepares the storage of the days from from to to (the
// PostgreSQL partitions), for inserts that bypass the store.
func prepareDays(tb testing.TB, s registry.Store, from, to time.Time) {
	tb.Helper()
	p, ok := s.(interface {
		PrepareDays(context.Context, []registry.Day) error
	})
	if !ok {
		return
	}
	var days []registry.Day
	for d := registry.DayOf(from); !d.Start().After(to); d = d.AddDays(1) {
		days = append(days, d)
	}
	if err := p.PrepareDays(context.Background(), days); err != nil {
		tb.Fatal(err)
	}
}

// BulkInsertVisits loads n checked-out visits with check-ins spread evenly
// over [from, to) straight into the visits table of s (through db), 500
// rows per statement, in transactions of 50,000 rows, after preparing the
// days' storage (PostgreSQL partitions).
func BulkInsertVisits(tb testing.TB, s registry.Store, db *sqlx.DB, n int, from, to time.Time) {
	tb.Helper()
	if n == 0 {
		return
	}
	prepareDays(tb, s, from, to)
	const perStmt, perTx = 500, 50_000
	step := to.Sub(from) / time.Duration(n)
	sealed := make([]byte, SealedSize)
	rand.Read(sealed)
	for txStart := 0; txStart < n; txStart += perTx {
		tx, err := db.Beginx()
		if err != nil {
			tb.Fatal(err)
		}
		for done := txStart; done < min(n, txStart+perTx); done += perStmt {
			k := min(perStmt, n-done, txStart+perTx-done)
			values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?),", k), ",")
			q := db.Rebind(`INSERT INTO visits (id, site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at) VALUES ` + values)
			args := make([]any, 0, 9*k)
			for j := range k {
				in := from.Add(time.Duration(done+j) * step).UTC().Truncate(time.Microsecond)
				args = append(args, registry.NewVisitID(in), "rathaus", "Saal 1", in.UnixMicro(), in.Add(time.Hour).UnixMicro(), false,
					string(registry.DayOf(in)), sealed, in.UnixMicro())
			}
			if _, err := tx.Exec(q, args...); err != nil {
				tx.Rollback()
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
}

// Benchmarks runs every store benchmark against the stores open returns
// (a fresh one per call): CreateVisits and the plain-SQL baseline RawInsert
// with the same rows in batches of 1 and 100, so that their rows/s compare
// the store's overhead (idempotency, audit) with plain SQL; PurgeExpired
// (100,000 expired visits, or REGISTRY_BENCH_PURGE_ROWS, next to 10,000
// current ones); and PurgeHourly, the hourly purge of a busy city hall (150
// expired visits next to 100,000 current ones, 28 days of about 3,500 a day).
func Benchmarks(b *testing.B, open func(b *testing.B) (registry.Store, *sqlx.DB)) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("CreateVisits/batch=%d", batch), func(b *testing.B) {
			s, _ := open(b)
			BenchCreateVisits(b, s, batch)
		})
		b.Run(fmt.Sprintf("RawInsert/batch=%d", batch), func(b *testing.B) {
			s, db := open(b)
			now := time.Now().UTC()
			prepareDays(b, s, now, now.Add(24*time.Hour)) // the store makes them on its own inserts
			BenchRawInsert(b, db, batch)
		})
	}
	b.Run("PurgeExpired", func(b *testing.B) {
		BenchPurge(b, BenchPurgeRows(b), 10_000, func() (registry.Store, *sqlx.DB) { return open(b) })
	})
	b.Run("PurgeHourly", func(b *testing.B) {
		BenchPurge(b, 150, 100_000, func() (registry.Store, *sqlx.DB) { return open(b) })
	})
}
