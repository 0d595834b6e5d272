package export

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// benchRecords is the number of records the benchmarks export: 10,000, or
// REGISTRY_BENCH_RECORDS (for example 100000 for a one-off measurement).
func benchRecords(b *testing.B) int {
	if s := os.Getenv("REGISTRY_BENCH_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("REGISTRY_BENCH_RECORDS=%q is not a positive number", s)
		}
		return n
	}
	return 10_000
}

// benchSet is the data of one benchmark: sealing costs two age operations
// per record and is not what the benchmarks measure. (With b.Loop a
// benchmark function runs once, so the setup does too.)
type benchSet struct {
	f      *fixture
	req    *registry.TraceRequest
	visits []*registry.Visit
	bundle []byte
}

func loadBench(b *testing.B) *benchSet {
	b.Helper()
	n := benchRecords(b)
	f := newFixture(b)
	from := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	req := testRequest(from, from.Add(5*24*time.Hour), "rathaus")
	for d := range 5 { // 5 days: 5 epoch keys, created before sealing in parallel
		f.epoch(b, registry.DayOf(from.Add(time.Duration(d)*24*time.Hour)))
	}
	visits := make([]*registry.Visit, n)
	step := 5 * 24 * time.Hour / time.Duration(n)
	forEach(n, func(i int) {
		in := from.Add(time.Duration(i) * step)
		visits[i], _ = f.visit(b, "rathaus", "Bürgerbüro", in, ptr(in.Add(45*time.Minute)), "Anna")
	})
	return &benchSet{f: f, req: req, visits: visits, bundle: f.write(b, req, visits)}
}

func BenchmarkWrite(b *testing.B) {
	s := loadBench(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Write(io.Discard, s.f.sign(s.req), len(s.visits), visitSeq(s.visits), &Sealing{Keys: s.f.keys, Recipients: s.f.to, Instance: s.f.instance, MaxStay: 12 * time.Hour, Now: testNow}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s.visits)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWriteBaseline is the age work Write cannot avoid: one OpenOuter
// per record, on one goroutine.
func BenchmarkWriteBaseline(b *testing.B) {
	s := loadBench(b)
	b.ResetTimer()
	for b.Loop() {
		for _, v := range s.visits {
			id, _ := s.f.keys.Identity(v.Epoch)
			if _, err := crypto.OpenOuter(v.Sealed, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(s.visits)*b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkRead(b *testing.B) {
	s := loadBench(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(s.bundle), s.f.office, s.f.trust); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s.visits)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadBaseline is the age work Read cannot avoid: one OpenInner
// per record, on one goroutine.
func BenchmarkReadBaseline(b *testing.B) {
	s := loadBench(b)
	inners := make([][]byte, len(s.visits))
	for i, v := range s.visits {
		id, _ := s.f.keys.Identity(v.Epoch)
		inner, err := crypto.OpenOuter(v.Sealed, id)
		if err != nil {
			b.Fatal(err)
		}
		inners[i] = inner
	}
	b.ResetTimer()
	for b.Loop() {
		for _, inner := range inners {
			if _, err := crypto.OpenInner(inner, s.f.office); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(s.visits)*b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkWriteCSV(b *testing.B) {
	s := loadBench(b)
	bundle, err := Read(bytes.NewReader(s.bundle), s.f.office, s.f.trust)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := WriteCSV(io.Discard, bundle, ';'); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s.visits)*b.N)/b.Elapsed().Seconds(), "records/s")
}
