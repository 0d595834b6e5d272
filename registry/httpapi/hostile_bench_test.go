package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/internal/memwatch"
)

// hostileBodies are 16 KiB bodies that cost a naive strict decoder memory
// that grows with the square of their nesting, or CPU that grows with the
// count of elements a limit refuses anyway (5,000 empty companions).
func hostileBodies() []struct{ path, body string } {
	const size = 16 << 10
	deep := func(prefix string) string { return prefix + strings.Repeat("[", size-len(prefix)-1) }
	return []struct{ path, body string }{
		{"/v1/visits", deep("")},
		{"/v1/visits", deep(`{"given_name":`)},
		{"/v1/visits", deep(`{"companions":[`)},
		{"/v1/visits", `{"x":` + strings.Repeat(`{"a":`, (size-6)/5)},
		{"/v1/visits", `{"site":"rathaus","companions":[` + strings.Repeat(`{},`, 4999) + `{}]}`},
		{"/v1/visits/00000000000000000000000000000000/checkout", deep(`{"check_out":`)},
	}
}

// BenchmarkHostileBodies measures normal registrations (p99 latency) on 4
// connections while 32 clients send hostile 16 KiB bodies as fast as they
// can, beside the same normal load without attack in the same run, and
// the process's resident memory during the attack.
func BenchmarkHostileBodies(b *testing.B) {
	unlimited := httpapi.Limits{}
	s, _ := newSQLiteServer(b, serverOptions{limits: &unlimited})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	var seq atomic.Int64
	normal := func(n int) []time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range n / 4 {
					start := time.Now()
					status := post(b, client, s.url+"/v1/visits", s.intake, validBody, fmt.Sprint("n", seq.Add(1)))
					if status != 201 {
						b.Errorf("normal registration: status %d", status)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		return lat
	}
	p99 := func(l []time.Duration) float64 { return float64(l[len(l)*99/100]) / float64(time.Millisecond) }
	const n = 800
	normal(200) // warm up
	base := normal(n)
	stop := make(chan struct{})
	var hostile atomic.Int64
	var wg sync.WaitGroup
	bodies := hostileBodies()
	for i := range 32 {
		wg.Go(func() {
			for j := i; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				h := bodies[j%len(bodies)]
				if status := post(b, client, s.url+h.path, s.intake, h.body, ""); status != 400 {
					b.Errorf("hostile body to %s: status %d, want 400", h.path, status)
					return
				}
				hostile.Add(1)
			}
		})
	}
	b.ResetTimer()
	var attacked []time.Duration
	peak, err := memwatch.Peak(func() { attacked = normal(n) })
	if err != nil {
		b.Fatal(err)
	}
	close(stop)
	wg.Wait()
	b.ReportMetric(p99(attacked), "p99-ms")
	b.ReportMetric(p99(base), "baseline-p99-ms")
	b.ReportMetric(p99(attacked)/p99(base), "p99-ratio")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
	b.ReportMetric(float64(hostile.Load())/b.Elapsed().Seconds(), "hostile-bodies/s")
	if p := p99(attacked); p > 50 {
		b.Logf("p99 under attack %.1f ms exceeds the 50 ms goal", p)
	}
}

// post sends a JSON body with the bearer token (and idempotency key) and
// returns the status.
func post(b *testing.B, c *http.Client, url, token, body, key string) int {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
