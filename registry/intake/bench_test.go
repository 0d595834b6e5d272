package intake_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/sqlite"
)

// BenchmarkRegister measures registrations through the whole service on a
// SQLite file (synchronous=FULL): validation, two age layers, group commit.
// Compare with BenchmarkBaselineInsert, the same file's single-row insert
// rate.
func BenchmarkRegister(b *testing.B) {
	for _, callers := range []int{1, 8, 64} {
		b.Run(fmt.Sprint("callers=", callers), func(b *testing.B) {
			env := intaketest.New(b, newSQLite(b), intaketest.Options{})
			_, tok := env.Token(b, registry.RoleIntake, "")
			var n atomic.Int64
			b.SetParallelism(max(1, callers/ncpu()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					reg := intaketest.Registration(fmt.Sprint("b", i))
					if _, err := env.Service.Register(context.Background(), tok, reg, fmt.Sprint("k", i), []byte("body")); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := env.Service.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
			b.ReportMetric(float64(st.BatchSizeSum)/float64(max(1, st.Batches)), "visits/batch")
		})
	}
}

// BenchmarkBaselineInsert measures plain transactions of one visit row as
// large as the service's (a sealed contact is about 700 bytes) and its
// idempotency record in a store file, through database/sql on one
// connection with the store's pragmas: no sealing, no audit, no batching.
func BenchmarkBaselineInsert(b *testing.B) {
	path := filepath.Join(b.TempDir(), "baseline.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	sealed := make([]byte, sealedSize(b))
	now := time.Now().UnixMicro()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A visit and its idempotency record, as the service writes them
		// (without audit), in one transaction.
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		id := registry.NewID()
		if _, err := tx.Exec(`INSERT INTO visits (id, site, area, check_in, epoch, sealed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, "rathaus", "Saal 1", now, "2025-03-04", sealed, now); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO idempotency (hash, check_in, request_mac, visits) VALUES (?, ?, ?, ?)`,
			[]byte(registry.NewID()+registry.NewID()), now, []byte(registry.NewID()+registry.NewID()), 1); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// sealedSize returns the size of one sealed test registration.
func sealedSize(b *testing.B) int {
	env := intaketest.New(b, newSQLite(b), intaketest.Options{})
	_, tok := env.Token(b, registry.RoleIntake, "")
	res, err := env.Service.Register(context.Background(), tok, intaketest.Registration("size"), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	return len(res.Visit.Sealed)
}
