// Package httpapi is the registry's HTTP API and its web pages: visitor
// intake and checkout for reception desks and kiosks (JSON), trace
// requests and their exports for health offices, health and readiness
// probes, Prometheus metrics, the visitors' own check-in pages at
// /checkin/{site} (for the sites that allow self check-in), and the
// reception desk's pages at /desk (HTML, German and English; see
// pages.go).
//
// Input is strict: JSON bodies with unknown or duplicate fields, wrong
// types, invalid UTF-8, control characters or trailing data are refused
// with an RFC 9457 problem document, and nothing is stored. Errors map from
// registry error codes to HTTP status in one place (statusOf). Nothing
// personal is logged: the access log holds the method, the route pattern,
// the status and the duration.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/checks"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/retention"
)

// Server limits. Timeouts are always set, so that slow clients cannot hold
// connections open. DefaultMaxBodyBytes (16 KiB) holds the largest
// registration: ten people (intake.MaxCompanions companions) with every
// field at its maximal length take about 9 KiB of ASCII JSON
// (TestLargestGroupFitsBodyLimit); a typical family takes well under 2 KiB.
const (
	DefaultMaxBodyBytes = 16 << 10
	readHeaderTimeout   = 5 * time.Second
	readTimeout         = 15 * time.Second
	writeTimeout        = 30 * time.Second
	idleTimeout         = 60 * time.Second
	maxHeaderBytes      = 16 << 10
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on, for example "127.0.0.1:8080";
	// port 0 picks a free port (see Server.URL).
	Addr string
	// Store answers token look-ups and readiness checks. Required.
	Store registry.Store
	// Intake registers and checks out visits. Required; started by the
	// caller.
	Intake *intake.Service
	// Booking stores appointments and seals their notes for the health
	// office. Nil books with Store and Intake's sealer, taking notes
	// only for days whose epoch key exists.
	Booking *intake.Booking
	// Logger receives the access log and internal errors (never personal
	// data, tokens or bodies). Nil discards.
	Logger *slog.Logger
	// AccessLog is which requests get an access log line (the zero
	// value: AccessLogSampled).
	AccessLog AccessLog
	// Now is the clock for readiness checks; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes caps request bodies (default DefaultMaxBodyBytes);
	// larger ones are refused with 413.
	MaxBodyBytes int64
	// ReadTimeout bounds reading a whole request, body included; a body
	// that stalls longer is answered 408 (default 15 s).
	ReadTimeout time.Duration
	// RequestTimeout bounds every request but the export download; a
	// request that takes longer is answered 503 with Retry-After (default
	// DefaultRequestTimeout).
	RequestTimeout time.Duration

	// Collectors are more metrics for /metrics (the arrival webhooks').
	Collectors []prometheus.Collector
	// MetricsAddr, when not "", serves GET /metrics on a listener of its
	// own (for example 10.0.0.5:9090, reachable by the monitoring network
	// only) instead of the main one, which then answers it 404.
	MetricsAddr string
	// Keys is the epoch key store whose private day keys remove the outer
	// layer of the visits an export holds (*crypto.KeyStore). Required but
	// on an intake-only node.
	Keys export.Keys
	// Instance is the registry instance's signing key
	// (crypto.KeyStore.InstanceKey): it signs every export bundle.
	// Required but on an intake-only node.
	Instance *crypto.SigningKey
	// Anchors keeps the instance's note of the audit log's head in the
	// key store (crypto.KeyStore.Anchors): every export checks the log
	// against it. Nil checks without one.
	Anchors export.Anchors
	// IntakeOnly marks a node without key store: it registers and checks
	// out, files and shows trace requests, but answers exports 503 (the
	// node that holds the key store serves them), and /readyz says so.
	IntakeOnly bool
	// PurgeStatus reports the purges of this node (a primary node); nil
	// on intake-only nodes. A refused, failed or suspicious purge shows in
	// /readyz as degraded (still 200: intake goes on) and in /metrics.
	PurgeStatus func() retention.Status
	// OnTraceRequest, when set, is called after a trace request was
	// filed (the alerts look at once).
	OnTraceRequest func()
	// Checks, when set, returns the last report of the hourly checks,
	// for the DPO's page.
	Checks func() *checks.Report
	// Recipients are the health office's recipients, to which export
	// bundles are sealed. Required.
	Recipients *crypto.Recipients
	// Retention is the statutory period (retention.Policy.Retention): a
	// trace request whose window starts before now - Retention is refused,
	// since those records are deleted. Required (> 0).
	Retention time.Duration
	// MaxStay is the retention policy's maximum stay: an open visit counts
	// as present until check-in + MaxStay when scoping an export. Required
	// (> 0).
	MaxStay time.Duration
	// Scratch holds export bundles while they are sent (a private
	// directory; see crypto.ScratchDir). Required but on an intake-only
	// node.
	Scratch *crypto.ScratchDir

	// Secret is the server secret; its form key signs the check-in form's
	// nonces. Required.
	Secret *crypto.Secret
	// Limits bound the public pages and failed authentications; nil means
	// DefaultLimits.
	Limits *Limits

	// PublicURL is the URL visitors reach the server at, for example
	// "https://besuch.musterstadt.de": the check-out links and the QR codes
	// of slips and posters point there, and an https URL makes every
	// cookie Secure. "" takes the scheme and host of each request.
	PublicURL string
}

// Server is the HTTP API server.
type Server struct {
	cfg     Config
	http    *http.Server
	ln      net.Listener
	handler http.Handler
	metrics *metrics
	// metricsHTTP serves /metrics on Config.MetricsAddr.
	metricsHTTP *http.Server
	metricsLn   net.Listener
	served      chan error

	limits  *limits
	tokens  *tokenCache
	sampled atomic.Uint64 // requests the sampled access log passed over
	formKey []byte
	pages   pages
	occ     occupancyCache
	views   viewLog

	closeOnce sync.Once
	closeErr  error
}

// New checks cfg, fills in defaults and builds the server. It does not
// listen yet; see Open.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Booking == nil {
		cfg.Booking = &intake.Booking{Store: cfg.Store, Sealer: cfg.Intake.Sealer, Secret: cfg.Secret}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = readTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	if cfg.Limits == nil {
		l := DefaultLimits()
		cfg.Limits = &l
	}
	s := &Server{cfg: cfg, metrics: newMetrics(), pages: pages,
		limits: newLimits(*cfg.Limits), formKey: cfg.Secret.FormKey(),
		tokens: &tokenCache{find: cfg.Store.FindTokenByHash, now: cfg.Now}}
	s.registerCollectors()
	s.handler = s.routes()
	s.http = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: min(readHeaderTimeout, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// check refuses a config without the required fields. The trace routes are
// always served, so their keys are required too: better no server than one
// that accepts requests it cannot answer.
func (cfg *Config) check() error {
	switch {
	case cfg.Store == nil || cfg.Intake == nil || cfg.Secret == nil:
		return errors.New("httpapi: Config.Store, Config.Intake and Config.Secret are required")
	case cfg.Recipients == nil || (cfg.Keys == nil || cfg.Scratch == nil || cfg.Instance == nil) && !cfg.IntakeOnly:
		return errors.New("httpapi: Config.Keys, Config.Instance and Config.Scratch (but on an intake-only node) and Config.Recipients are required for trace-request exports")
	case cfg.Retention <= 0 || cfg.MaxStay <= 0:
		return errors.New("httpapi: Config.Retention and Config.MaxStay must be positive")
	}
	if u := cfg.PublicURL; u != "" && !validPublicURL(u) {
		return fmt.Errorf("httpapi: Config.PublicURL %q must be an absolute http or https URL without path, query or fragment", u)
	}
	return nil
}

// validPublicURL reports whether u is scheme and host only.
func validPublicURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" &&
		strings.TrimSuffix(p.Path, "/") == "" && p.RawQuery == "" && p.Fragment == "" && p.User == nil
}

// Handler returns the server's handler with all middleware, for tests and
// for embedding behind another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Open listens on Config.Addr and serves in a goroutine. A bind error is
// returned at once.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.served = make(chan error, 1)
	ln = newLimitListener(ln, s.limits, func() { s.metrics.countLimited("connections") }, func() { s.metrics.countLimited("client_connections") })
	go func() { s.served <- s.http.Serve(ln) }()
	if s.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			s.http.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", s.handleMetrics)
		s.metricsHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
		s.metricsLn = mln
		go s.metricsHTTP.Serve(mln)
	}
	return nil
}

// MetricsURL is the base URL of the metrics listener, "" without one.
func (s *Server) MetricsURL() string {
	if s.metricsLn == nil {
		return ""
	}
	return "http://" + s.metricsLn.Addr().String()
}

// URL returns the base URL of the listening server, for example
// "http://127.0.0.1:8080". It is "" before Open.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting connections and waits for running requests until
// ctx ends; then it closes the remaining connections and returns ctx's
// error. Later calls return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown(ctx) })
	return s.closeErr
}

func (s *Server) shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	if s.metricsHTTP != nil {
		s.metricsHTTP.Close()
	}
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
