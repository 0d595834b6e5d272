package httpapi_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
	"github.com/cityhall/registry/registry/storetest"
	"github.com/cityhall/registry/retention"
)

// benchKept is REGISTRY_BENCH_KEPT, the visits kept in the purge-stall
// benchmark: 100,000 by default, 1,000,000 in make bench-large.
func benchKept(b *testing.B) int {
	if s := os.Getenv("REGISTRY_BENCH_KEPT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("REGISTRY_BENCH_KEPT=%q", s)
		}
		return n
	}
	return 100_000
}

// BenchmarkPurgeStall measures how long intake stands still while the
// hourly purge runs: registrations arrive open-loop at 200 a second into a
// store of benchKept visits spread over the retention period, and the
// purge deletes the hour that expired (and, on PostgreSQL, the day whose
// partition it drops). It reports the longest time with no registration
// answered during the purge (goal: under 100 ms), beside the same for an
// equally long stretch of the same load without a purge, and the purge's
// duration.
func BenchmarkPurgeStall(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres-durable"} {
		b.Run(store, func(b *testing.B) {
			var st registry.Store
			var db *sqlx.DB
			if store == "sqlite" {
				s, _ := sqliteStore(b)
				st, db = s, sqlx.NewDb(s.DB().DB, "sqlite")
			} else {
				c := pgtest.OwnCluster(b, true)
				s, err := postgres.Open(context.Background(), c.DSN)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				st, db = s, s.DB()
			}
			s := newServer(b, st, serverOptions{})
			now := s.Clock.Now()
			retentionPeriod := 28 * 24 * time.Hour
			cutoff := now.Add(-retentionPeriod)
			// A day and an hour that expire now, the rest kept.
			storetest.BulkInsertVisits(b, st, db, benchKept(b)/28, cutoff.Add(-25*time.Hour), cutoff)
			storetest.BulkInsertVisits(b, st, db, benchKept(b), cutoff, now.Add(-time.Hour))
			// A large city hall's appointments: 500 a day, every tenth
			// with a sealed note, the day that expires included.
			storetest.BulkInsertAppointments(b, db, 500, cutoff.Add(-25*time.Hour), now)
			purger := &retention.Purger{Store: st, Keys: s.Keys, Policy: retention.DefaultPolicy(), Now: s.Clock.Now}
			base, _ := loadDuring(b, s, func() { time.Sleep(2 * time.Second) })
			var took time.Duration
			stall, n := loadDuring(b, s, func() {
				start := time.Now()
				if _, err := purger.Purge(context.Background(), retention.Options{AllowClockJump: true}); err != nil {
					b.Error(err)
				}
				took = time.Since(start)
			})
			if store != "sqlite" {
				// A registration with an appointment code waits for the
				// rewrite of the appointments table (the others do not
				// touch it): time it on its own.
				start := time.Now()
				if _, err := db.Exec(`VACUUM (FULL) appointments`); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start))/float64(time.Millisecond), "appointments-rewrite-ms")
			}
			b.ReportMetric(float64(stall)/float64(time.Millisecond), "max-gap-ms")
			b.ReportMetric(float64(base)/float64(time.Millisecond), "baseline-max-gap-ms")
			b.ReportMetric(took.Seconds(), "purge-s")
			b.ReportMetric(float64(n), "registrations")
		})
	}
}

// loadDuring runs an open-loop load of 200 registrations a second while
// work runs, and returns the longest time between two answers (or between
// the start and the first, the last and the end) and how many were
// answered.
func loadDuring(b *testing.B, s *testServer, work func()) (time.Duration, int) {
	c := benchClient(b, 64)
	body := []byte(validBody)
	var mu sync.Mutex
	var answered []time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * 5 * time.Millisecond)
			select {
			case <-stop:
				return
			case <-time.After(time.Until(at)):
			}
			wg.Go(func() {
				if registerOnce(b, c, s, body) {
					mu.Lock()
					answered = append(answered, time.Now())
					mu.Unlock()
				}
			})
		}
	})
	time.Sleep(200 * time.Millisecond)
	from := time.Now()
	work()
	to := time.Now()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	slices.SortFunc(answered, func(a, b time.Time) int { return a.Compare(b) })
	gap, prev := time.Duration(0), from
	for _, t := range answered {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			gap = max(gap, t.Sub(prev))
			break
		}
		gap, prev = max(gap, t.Sub(prev)), t
	}
	return gap, len(answered)
}
