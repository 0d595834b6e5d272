package export

import (
	"bufio"
	"bytes"
	"io"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/internal/memwatch"
)

// BenchmarkStreaming exports benchRecords records (REGISTRY_BENCH_RECORDS;
// 100,000 in make bench, 1,000,000 in make bench-large) into a bundle file
// and decrypts it to CSV, reporting the peak resident memory of each
// (goal: under 100 MB whatever the count) and the decryption rate beside
// its baseline from the same run: raw age.Decrypt of inner ciphertexts on
// GOMAXPROCS goroutines (goal: a ratio of 0.8).
func BenchmarkStreaming(b *testing.B) {
	n := benchRecords(b)
	f := newFixture(b)
	from := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	req := testRequest(from, from.Add(5*24*time.Hour), "rathaus")
	for d := range 5 {
		f.epoch(b, registry.DayOf(from.Add(time.Duration(d)*24*time.Hour)))
	}
	path := filepath.Join(b.TempDir(), "bundle.age")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var exportPeak int64
	bw := bufio.NewWriter(out)
	watch(b, &exportPeak, func() {
		if _, err := Write(bw, f.sign(req), n, sealedVisits(b, f, from, n), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: 12 * time.Hour, Now: testNow}); err != nil {
			b.Fatal(err)
		}
	})
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	out.Close()

	raw := rawInnerRate(b, f)
	decrypt := func(write func(io.Writer, Source) error) (peak int64, took time.Duration) {
		watch(b, &peak, func() {
			in, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			start := time.Now()
			s, err := Open(bufio.NewReaderSize(in, 1<<20), f.office, f.trust)
			if err != nil {
				b.Fatal(err)
			}
			if err := write(io.Discard, s); err != nil {
				b.Fatal(err)
			}
			took = time.Since(start)
		})
		return peak, took
	}
	decryptPeak, took := decrypt(func(w io.Writer, s Source) error { return WriteCSV(w, s, ';') })
	rate := float64(n) / took.Seconds()
	// The workbook (the default of decrypt) beside it: streamed, spilling
	// into a private directory, under the soft memory limit decrypt sets.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(96 << 20))
	xlsxPeak, xlsxTook := decrypt(func(w io.Writer, s Source) error { return WriteXLSX(w, s, testNow, b.TempDir()) })
	b.ReportMetric(float64(xlsxPeak)/(1<<20), "xlsx-peak-rss-MB")
	b.ReportMetric(float64(n)/xlsxTook.Seconds(), "xlsx-records/s")
	b.ReportMetric(float64(exportPeak)/(1<<20), "export-peak-rss-MB")
	b.ReportMetric(float64(decryptPeak)/(1<<20), "decrypt-peak-rss-MB")
	b.ReportMetric(rate, "decrypt-records/s")
	b.ReportMetric(raw, "baseline-inner-decrypt/s")
	b.ReportMetric(rate/raw, "decrypt-ratio")
}

// sealedVisits yields n real sealed visits spread over five days, sealing
// them in parallel chunks as they are asked for, so that the producer
// holds one chunk at a time.
func sealedVisits(b *testing.B, f *fixture, from time.Time, n int) iter.Seq2[*registry.Visit, error] {
	return func(yield func(*registry.Visit, error) bool) {
		const chunk = 512
		step := 5 * 24 * time.Hour / time.Duration(n)
		buf := make([]*registry.Visit, chunk)
		for start := 0; start < n; start += chunk {
			k := min(chunk, n-start)
			forEach(k, func(i int) {
				in := from.Add(time.Duration(start+i) * step)
				buf[i], _ = f.visit(b, "rathaus", "Bürgerbüro", in, ptr(in.Add(45*time.Minute)), "Anna")
			})
			for _, v := range buf[:k] {
				if !yield(v, nil) {
					return
				}
			}
		}
	}
}

// rawInnerRate is the rate of plain age.Decrypt of inner ciphertexts (a
// sealed contact) on GOMAXPROCS goroutines.
func rawInnerRate(b *testing.B, f *fixture) float64 {
	var inner bytes.Buffer
	w, err := age.Encrypt(&inner, f.to.List()...)
	if err != nil {
		b.Fatal(err)
	}
	io.WriteString(w, strings.Repeat("x", 300))
	w.Close()
	ct := inner.Bytes()
	var count atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				r, err := age.Decrypt(bytes.NewReader(ct), f.office...)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, r)
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds()
}

// watch runs work and records the peak resident set size while it runs.
func watch(b *testing.B, peak *int64, work func()) {
	debug.FreeOSMemory()
	n, err := memwatch.Peak(work)
	if err != nil {
		b.Fatal(err)
	}
	*peak = n
}
