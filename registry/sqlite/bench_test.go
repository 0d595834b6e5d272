package sqlite_test

import (
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/storetest"
)

// BenchmarkStore runs the store benchmarks, each beside its plain-SQL
// baseline; see storetest.Benchmarks.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmarks(b, func(b *testing.B) (registry.Store, *sqlx.DB) {
		s := open(b)
		return s, s.DB()
	})
}
