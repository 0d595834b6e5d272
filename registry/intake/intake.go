// Package intake turns registrations into sealed, stored visits.
//
// A Service validates a registration, seals its contact data with the day's
// epoch key around the health office's recipients (package crypto), and hands
// the party (the visitor and their companions) to one committer goroutine.
// The committer batches whatever is queued into one Store.CreateParties
// transaction (group commit: one fsync per batch, not per visit) and answers
// every caller only after the commit, so a successful Register is a promise
// that the visits are durable.
//
// RegisterGroup registers a visitor with up to MaxCompanions companions (a
// household): each person becomes a visit of its own, and the committer
// treats the group as one unit, which is committed whole or not at all.
package intake

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// DefaultMaxBatch is the default upper bound of visits per transaction.
const DefaultMaxBatch = 256

// Store is what the intake service needs of a store: it writes visits and
// reads the public halves of the epoch keys and the sites.
type Store interface {
	registry.VisitStore
	EpochKey(ctx context.Context, day registry.Day) (*registry.EpochKey, error)
	Site(ctx context.Context, code string) (*registry.Site, error)
	FindAppointment(ctx context.Context, site string, day registry.Day, code string) (*registry.Appointment, error)
}

// Service turns registrations into sealed, stored visits. Set the optional
// fields before Start; do not change them afterwards.
type Service struct {
	Store  Store
	Sealer *crypto.Sealer
	// Secret derives checkout tokens, idempotency records and keyed visit
	// ids (see crypto.Secret).
	Secret *crypto.Secret
	// OnArrival, when set, is called after a registration for an expected
	// appointment is stored (the host's notification); it must not block.
	OnArrival func(a *registry.Appointment, at time.Time)
	// Now is the clock; it defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// MaxBatch caps the visits of one group commit (default DefaultMaxBatch).
	MaxBatch int
	// Sealers is how many registrations are sealed at once (default
	// GOMAXPROCS at Start; see SpareProc).
	Sealers int

	mu      sync.RWMutex // guards queue against sends after Close
	queue   chan *pending
	closed  bool
	started bool
	done    chan struct{}

	// sealing admits at most Sealers callers to Seal at a time. Without
	// it, dozens of sealing goroutines keep the committer waiting for a
	// CPU after each of its system calls; with it, 64 callers on 2 cores
	// register 2.3 times as fast (BenchmarkRegister).
	sealing   chan struct{}
	keys      keyCache
	siteCache siteCache
	stats     statsRecorder
}

// SpareProc gives the committer a processor beside the sealers: unless
// the GOMAXPROCS environment variable sets it, it raises GOMAXPROCS by one
// over the processors Go would use and returns that former number, the
// Sealers to set, and a function that restores GOMAXPROCS. Call it once,
// from main, before Start.
//
// With as many Ps as cores, the Sealers occupy every P, and the committer,
// back from an fsync or a database round trip, waits in the run queue
// behind them: a sealer that finishes hands its P to the next sealer it
// let in before the queue gets a turn. With one P more, the committer runs
// at once, and the kernel, which favours a thread that sleeps over one
// that computes, shares the cores between it and the sealers. Measured on
// 2 cores with SQLite (docs/capacity.md, "Intake against its ceiling"):
// the machine's cores in use rise from about 1.78 to 1.85-1.90 and intake
// by 11 to 16 % in four of five interleaved runs; with PostgreSQL, whose
// server process takes the rest of the cores, it changes nothing.
func SpareProc() (sealers int, restore func()) {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" {
		return n, func() {}
	}
	runtime.GOMAXPROCS(n + 1)
	return n, func() { runtime.GOMAXPROCS(n) }
}

// New returns a Service over the store, sealer and server secret. Call
// Start before Register.
func New(store Store, sealer *crypto.Sealer, secret *crypto.Secret, logger *slog.Logger) *Service {
	return &Service{Store: store, Sealer: sealer, Secret: secret, Logger: logger}
}

// Start starts the committer goroutine. Store calls of the committer use a
// context derived from ctx without its cancellation: visits already queued
// are committed even while the server shuts down; Close ends the committer.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = DefaultMaxBatch
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Sealers <= 0 {
		s.Sealers = runtime.GOMAXPROCS(0)
	}
	s.started = true
	s.sealing = make(chan struct{}, s.Sealers)
	s.queue = make(chan *pending, s.MaxBatch)
	s.done = make(chan struct{})
	go s.run(context.WithoutCancel(ctx))
}

// Close stops accepting registrations (they then fail with EUNAVAILABLE),
// commits and answers everything already queued, and waits for the
// committer to end. It is safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if !s.started || s.closed {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	<-s.done
	return nil
}

// Running reports whether the service accepts registrations: started and
// not closed.
func (s *Service) Running() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.started && !s.closed
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
