package sqlite_test

import (
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/storetest"
)

// BenchmarkCreateVisits and BenchmarkRawInsert run the same rows, so their
// rows/s compare the store's overhead (idempotency, audit) with plain SQL.
func BenchmarkCreateVisits(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			storetest.BenchCreateVisits(b, open(b), batch)
		})
	}
}

func BenchmarkRawInsert(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			storetest.BenchRawInsert(b, open(b).DB(), batch)
		})
	}
}

// BenchmarkPurgeExpired deletes 100,000 expired visits (or
// REGISTRY_BENCH_PURGE_ROWS) next to 10,000 current ones.
func BenchmarkPurgeExpired(b *testing.B) {
	storetest.BenchPurge(b, storetest.BenchPurgeRows(b), 10_000, func() (registry.Store, *sqlx.DB) {
		s := open(b)
		return s, s.DB()
	})
}

// BenchmarkPurgeHourly is the hourly purge of a busy city hall: 150 expired
// visits next to 100,000 current ones (28 days of about 3,500 a day).
func BenchmarkPurgeHourly(b *testing.B) {
	storetest.BenchPurge(b, 150, 100_000, func() (registry.Store, *sqlx.DB) {
		s := open(b)
		return s, s.DB()
	})
}
