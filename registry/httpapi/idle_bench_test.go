package httpapi_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/httpapi"
)

// BenchmarkIdleConnectionFlood measures the legitimate registrations'
// p99 latency (4 clients, a new connection per request, as visitors'
// phones and desks come and go) while one address (127.0.0.2) holds
// 3,000 idle connections and reopens every one the server closes, beside
// the same load without the flood in the same run: with the per-client
// cap (the default, 64) and, for comparison, without it (the release
// before it; fewer samples, since each takes seconds).
func BenchmarkIdleConnectionFlood(b *testing.B) {
	for _, tt := range []struct {
		name string
		cap  int
	}{{"per-client-cap", httpapi.DefaultLimits().PerClientConns}, {"no-per-client-cap", 0}} {
		b.Run(tt.name, func(b *testing.B) {
			l := httpapi.DefaultLimits()
			l.PerClient, l.PerClientConns = httpapi.Rate{}, tt.cap
			s, _ := newSQLiteServer(b, serverOptions{limits: &l})
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
			var seq atomic.Int64
			normal := func(n int) []time.Duration {
				var mu sync.Mutex
				var lat []time.Duration
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for range n / 4 {
							start := time.Now()
							if status := post(b, client, s.url+"/v1/visits", s.intake, validBody, fmt.Sprint("idle", seq.Add(1))); status != 201 {
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
			n := 400
			if tt.cap == 0 {
				n = 40 // each takes seconds: a longer run says no more
			}
			normal(100) // warm up
			base := normal(n)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			addr := strings.TrimPrefix(s.url, "http://")
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			for range 3000 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						c, err := d.Dial("tcp", addr)
						if err != nil {
							time.Sleep(10 * time.Millisecond)
							continue
						}
						done := make(chan struct{})
						go func() { c.Read(make([]byte, 1)); close(done) }() // until the server closes it
						select {
						case <-done:
						case <-stop:
						}
						c.Close()
					}
				})
			}
			time.Sleep(time.Second) // the flood is in place
			b.ResetTimer()
			attacked := normal(n)
			close(stop)
			wg.Wait()
			b.ReportMetric(p99(attacked), "p99-ms")
			b.ReportMetric(p99(base), "baseline-p99-ms")
			b.ReportMetric(p99(attacked)/p99(base), "p99-ratio")
		})
	}
}
