package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
)

// metrics are the server's Prometheus metrics (github.com/prometheus/
// client_golang), in a registry of the server's own. Label values are
// route patterns, status codes, error codes, limit names and configured
// site and area names only: bounded sets, nothing a client can choose
// freely, no personal data.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	limited  *prometheus.CounterVec
	handler  http.Handler // serves reg
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registry_http_requests_total",
			Help: "HTTP requests by route pattern and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "registry_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registry_http_errors_total",
			Help: "Error answers by error code."}, []string{"code"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registry_http_limited_total",
			Help: "Requests refused with 429 by a limit, and connections that waited for a free slot (limit=connections)."}, []string{"limit"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.errors, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

func (m *metrics) countRequest(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
}

// countLimited counts a request refused by a limit (client, site, total,
// pages, auth_failures) or a connection that waited (connections).
func (m *metrics) countLimited(limit string) { m.limited.WithLabelValues(limit).Inc() }

func (m *metrics) countError(code string) { m.errors.WithLabelValues(code).Inc() }

// registerCollectors adds the collectors that read the server's state at each
// scrape: intake, purge, epoch keys and occupancy.
func (s *Server) registerCollectors() {
	s.metrics.reg.MustRegister(&stateCollector{s: s})
	s.metrics.reg.MustRegister(s.cfg.Collectors...)
}

// handleMetrics serves GET /metrics (the Prometheus text format).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.handler.ServeHTTP(w, r)
}

// stateCollector reports what the server holds at scrape time.
type stateCollector struct{ s *Server }

var (
	descRegistered  = prometheus.NewDesc("registry_registrations_total", "Visits newly stored.", nil, nil)
	descReplayed    = prometheus.NewDesc("registry_registrations_replayed_total", "Registrations whose Idempotency-Key was stored before.", nil, nil)
	descFailed      = prometheus.NewDesc("registry_registrations_failed_total", "Registrations the committer could not store.", nil, nil)
	descRetried     = prometheus.NewDesc("registry_intake_batches_retried_total", "Group commits that failed and were stored visit by visit.", nil, nil)
	descBatch       = prometheus.NewDesc("registry_intake_batch_size", "Visits per group-commit transaction.", nil, nil)
	descPurgeLast   = prometheus.NewDesc("registry_purge_last_success_timestamp_seconds", "When the last purge completed (unix seconds; 0: none since start).", nil, nil)
	descPurgeRef    = prometheus.NewDesc("registry_purge_refused", "1 while the last purge was refused by the clock guard.", nil, nil)
	descPurgeFail   = prometheus.NewDesc("registry_purge_failed", "1 while the last purge failed.", nil, nil)
	descPurgeSusp   = prometheus.NewDesc("registry_purge_suspicious", "1 when the last purge ran after an unusual pause of the clock.", nil, nil)
	descKeysAhead   = prometheus.NewDesc("registry_epoch_keys_ahead_days", "Days after today with an epoch key in the key store (the purge node only).", nil, nil)
	descOpenVisits  = prometheus.NewDesc("registry_open_visits", "Open visits (checked in, not out, within the longest stay) per site and configured area; area=\"\" for the rest.", []string{"site", "area"}, nil)
	descSiteCap     = prometheus.NewDesc("registry_site_capacity", "Configured capacity per site (area=\"\") and area; 0: no limit.", []string{"site", "area"}, nil)
	stateCollectors = []*prometheus.Desc{descRegistered, descReplayed, descFailed, descRetried, descBatch, descPurgeLast,
		descPurgeRef, descPurgeFail, descPurgeSusp, descKeysAhead, descOpenVisits, descSiteCap}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range stateCollectors {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.cfg.Intake.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descRegistered, st.Registered)
	counter(descReplayed, st.Replayed)
	counter(descFailed, st.Failed)
	counter(descRetried, st.BatchesRetried)
	buckets := map[float64]uint64{}
	var cum uint64
	for i, n := range st.BatchSizes {
		cum += n
		if i < len(intake.BatchSizeBounds) {
			buckets[float64(intake.BatchSizeBounds[i])] = cum
		}
	}
	ch <- prometheus.MustNewConstHistogram(descBatch, st.Batches, float64(st.BatchSizeSum), buckets)
	if s.cfg.PurgeStatus != nil {
		ps := s.cfg.PurgeStatus()
		last := 0.0
		if !ps.LastSuccess.IsZero() {
			last = float64(ps.LastSuccess.Unix())
		}
		gauge(descPurgeLast, last)
		gauge(descPurgeRef, b2f(ps.Refused))
		gauge(descPurgeFail, b2f(ps.Failed))
		gauge(descPurgeSusp, b2f(ps.Suspicious))
	}
	if s.cfg.Keys != nil && !s.cfg.IntakeOnly {
		gauge(descKeysAhead, float64(s.keysAhead()))
	}
	s.collectOccupancy(gauge)
}

// keysAhead counts the days after today with an epoch key, up to 60.
func (s *Server) keysAhead() int {
	day := registry.DayOf(s.cfg.Now())
	n := 0
	for ; n < 60; n++ {
		day = day.AddDays(1)
		if _, err := s.cfg.Keys.Identity(day); err != nil {
			break
		}
	}
	return n
}

// collectOccupancy reports the open visits and capacities per site and
// configured area (visits of other areas count under area=""), so that
// the labels are a bounded set IT configured. A database that does not
// answer leaves them out (the request metrics still come).
func (s *Server) collectOccupancy(gauge func(d *prometheus.Desc, v float64, labels ...string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sites, err := s.cfg.Store.Sites(ctx)
	if err != nil {
		return
	}
	occ, err := s.occupancy(ctx)
	if err != nil {
		return
	}
	for _, site := range sites {
		rest := occ.site(site.Code)
		for _, a := range site.Areas {
			n := occ.area(site.Code, a.Name)
			rest -= n
			gauge(descOpenVisits, float64(n), site.Code, a.Name)
		}
		gauge(descOpenVisits, float64(rest), site.Code, "")
		gauge(descSiteCap, float64(site.Capacity), site.Code, "")
		for _, a := range site.Areas {
			gauge(descSiteCap, float64(a.Capacity), site.Code, a.Name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
