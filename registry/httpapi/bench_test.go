package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/storetest"
)

// BenchmarkHTTPRegister measures registrations end to end over loopback
// HTTP on a SQLite file: strict decoding, auth, sealing, group commit.
func BenchmarkHTTPRegister(b *testing.B) {
	s, _ := newSQLiteServer(b, serverOptions{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	// Connections the transport dialed but never used count as new, not
	// idle, for the server's graceful shutdown: close them before it.
	b.Cleanup(client.CloseIdleConnections)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", s.url+"/v1/visits", strings.NewReader(validBody))
			req.Header.Set("Authorization", "Bearer "+s.intake)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprint("bench-", n.Add(1)))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
}

// BenchmarkHTTPTraceExport measures one export of 1,000 visits end to end
// over loopback HTTP on a SQLite file: ownership check, the export
// transaction (scope query, outer layer removed per record, bundle sealed
// to the office, audit entry), and streaming the bundle. Each iteration
// files and approves a fresh request outside the timer.
func BenchmarkHTTPTraceExport(b *testing.B) {
	const visits = 1000
	s, _ := newSQLiteServer(b, serverOptions{})
	secret, office := s.Token(b, registry.RoleHealthOffice, "")
	_, intakeTok := s.Token(b, registry.RoleIntake, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < visits; i += 8 {
				reg := intaketest.Registration(fmt.Sprint("b", i))
				in := windowFrom.Add(time.Duration(i) * time.Second)
				reg.CheckIn = &in
				if _, err := s.Service.Register(ctx, intakeTok, reg, "", nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var bytes int64
	signer := storetest.FirstSigner(b, s.Store, s.Clock.Now())
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		id := benchApprovedRequest(b, s, office, signer)
		b.StartTimer()
		req, _ := http.NewRequest("GET", s.url+"/v1/trace-requests/"+id+"/export", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		bytes = n
	}
	b.ReportMetric(float64(b.N*visits)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(bytes), "bundle-bytes")
}

// benchApprovedRequest files a request for traceInput's window as office
// and approves it with the signer's key.
func benchApprovedRequest(b *testing.B, s *testServer, office *registry.Token, signer *storetest.Signer) string {
	b.Helper()
	ctx := context.Background()
	in := traceInput()
	in.Areas = nil
	r, err := registry.NewTraceRequest(in, office.Actor(), office.ID, s.Clock.Now(), testRetention)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Store.CreateTraceRequest(ctx, office.Actor(), r); err != nil {
		b.Fatal(err)
	}
	storetest.Approve(b, s.Store, r.ID, s.Clock.Now(), s.Clock.Now().Add(time.Hour), signer)
	return r.ID
}
