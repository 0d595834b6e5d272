package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/retention"
)

// metrics counts requests and errors for GET /metrics. Label values are
// route patterns, status codes and error codes only: bounded sets, nothing
// a client can choose freely.
type metrics struct {
	mu       sync.Mutex
	requests map[requestKey]uint64
	errors   map[string]uint64
	limited  map[string]uint64
}

type requestKey struct {
	route  string
	status int
}

func newMetrics() *metrics {
	return &metrics{requests: map[requestKey]uint64{}, errors: map[string]uint64{}, limited: map[string]uint64{}}
}

func (m *metrics) countRequest(route string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{route, status}]++
}

// countLimited counts a request refused by a limit (client, site, total,
// pages, auth_failures) or a connection that waited (connections).
func (m *metrics) countLimited(limit string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limited[limit]++
}

func (m *metrics) countError(code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors[code]++
}

// handleMetrics serves GET /metrics in the Prometheus text format 0.0.4.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	s.metrics.write(&b)
	writeIntakeStats(&b, s.cfg.Intake.Stats())
	if s.cfg.PurgeStatus != nil {
		writePurgeStatus(&b, s.cfg.PurgeStatus())
	}
	s.writeOccupancy(r.Context(), &b)
	io.WriteString(w, b.String())
}

// writeOccupancy writes the open visits and capacities per site and
// configured area (visits of other areas count under area=""), so that
// the labels are a bounded set IT configured. A database that does not
// answer leaves them out (the request metrics still come).
func (s *Server) writeOccupancy(ctx context.Context, b *strings.Builder) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sites, err := s.cfg.Store.Sites(ctx)
	if err != nil {
		return
	}
	occ, err := s.occupancy(ctx)
	if err != nil {
		return
	}
	header(b, "registry_open_visits", "gauge", "Open visits (checked in, not out, within the longest stay) per site and configured area; area=\"\" for the rest.")
	for _, site := range sites {
		rest := occ.site(site.Code)
		for _, a := range site.Areas {
			n := occ.area(site.Code, a.Name)
			rest -= n
			fmt.Fprintf(b, "registry_open_visits{site=%s,area=%s} %d\n", label(site.Code), label(a.Name), n)
		}
		fmt.Fprintf(b, "registry_open_visits{site=%s,area=\"\"} %d\n", label(site.Code), rest)
	}
	header(b, "registry_site_capacity", "gauge", "Configured capacity per site (area=\"\") and area; 0: no limit.")
	for _, site := range sites {
		fmt.Fprintf(b, "registry_site_capacity{site=%s,area=\"\"} %d\n", label(site.Code), site.Capacity)
		for _, a := range site.Areas {
			fmt.Fprintf(b, "registry_site_capacity{site=%s,area=%s} %d\n", label(site.Code), label(a.Name), a.Capacity)
		}
	}
}

func (m *metrics) write(b *strings.Builder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	header(b, "registry_http_requests_total", "counter", "HTTP requests by route pattern and status.")
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b requestKey) int {
		return strings.Compare(fmt.Sprintf("%s %03d", a.route, a.status), fmt.Sprintf("%s %03d", b.route, b.status))
	})
	for _, k := range keys {
		fmt.Fprintf(b, "registry_http_requests_total{route=%s,status=\"%d\"} %d\n", label(k.route), k.status, m.requests[k])
	}
	header(b, "registry_http_errors_total", "counter", "Error answers by error code.")
	codes := make([]string, 0, len(m.errors))
	for c := range m.errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(b, "registry_http_errors_total{code=%s} %d\n", label(c), m.errors[c])
	}
	header(b, "registry_http_limited_total", "counter", "Requests refused with 429 by a limit, and connections that waited for a free slot (limit=connections).")
	limits := make([]string, 0, len(m.limited))
	for l := range m.limited {
		limits = append(limits, l)
	}
	slices.Sort(limits)
	for _, l := range limits {
		fmt.Fprintf(b, "registry_http_limited_total{limit=%s} %d\n", label(l), m.limited[l])
	}
}

func writeIntakeStats(b *strings.Builder, st intake.Stats) {
	counter(b, "registry_registrations_total", "Visits newly stored.", st.Registered)
	counter(b, "registry_registrations_replayed_total", "Registrations whose Idempotency-Key was stored before.", st.Replayed)
	counter(b, "registry_registrations_failed_total", "Registrations the committer could not store.", st.Failed)
	counter(b, "registry_intake_batches_retried_total", "Group commits that failed and were stored visit by visit.", st.BatchesRetried)
	header(b, "registry_intake_batch_size", "histogram", "Visits per group-commit transaction.")
	var cum uint64
	for i, n := range st.BatchSizes {
		cum += n
		le := "+Inf"
		if i < len(intake.BatchSizeBounds) {
			le = strconv.Itoa(intake.BatchSizeBounds[i])
		}
		fmt.Fprintf(b, "registry_intake_batch_size_bucket{le=\"%s\"} %d\n", le, cum)
	}
	fmt.Fprintf(b, "registry_intake_batch_size_sum %d\nregistry_intake_batch_size_count %d\n", st.BatchSizeSum, st.Batches)
}

func writePurgeStatus(b *strings.Builder, st retention.Status) {
	gauge := func(name, help string, v float64) {
		header(b, name, "gauge", help)
		fmt.Fprintf(b, "%s %g\n", name, v)
	}
	last := 0.0
	if !st.LastSuccess.IsZero() {
		last = float64(st.LastSuccess.Unix())
	}
	gauge("registry_purge_last_success_timestamp_seconds", "When the last purge completed (unix seconds; 0: none since start).", last)
	gauge("registry_purge_refused", "1 while the last purge was refused by the clock guard.", b2f(st.Refused))
	gauge("registry_purge_failed", "1 while the last purge failed.", b2f(st.Failed))
	gauge("registry_purge_suspicious", "1 when the last purge ran after an unusual pause of the clock.", b2f(st.Suspicious))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func header(b *strings.Builder, name, typ, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func counter(b *strings.Builder, name, help string, v uint64) {
	header(b, name, "counter", help)
	fmt.Fprintf(b, "%s %d\n", name, v)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// label quotes a label value as the text format requires.
func label(v string) string { return `"` + labelEscaper.Replace(v) + `"` }
