package intake_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/sqlite"
)

// newSQLite opens a store on a fresh file, closed at cleanup.
func newSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// countingStore records every CreateParties call: the visits of each
// batch and the actor of its first party. With gate set, the first call
// signals entered and waits for gate to close, so that tests can queue
// visits behind it. fail, when set, fails every batch holding a visit it
// picks (an injected fault for the one-by-one retry).
type countingStore struct {
	registry.Store
	gate    chan struct{}
	entered chan struct{}
	fail    func(*registry.Visit) bool

	mu     sync.Mutex
	sizes  []int
	actors []registry.Actor
}

func (s *countingStore) CreateParties(ctx context.Context, parties []*registry.Party) error {
	n := 0
	for _, p := range parties {
		n += len(p.Visits)
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, n)
	s.actors = append(s.actors, parties[0].Actor)
	first := len(s.sizes) == 1
	s.mu.Unlock()
	if first && s.gate != nil {
		close(s.entered)
		<-s.gate
	}
	for _, p := range parties {
		for _, v := range p.Visits {
			if s.fail != nil && s.fail(v) {
				return errors.New("injected fault")
			}
		}
	}
	return s.Store.CreateParties(ctx, parties)
}

func (s *countingStore) calls() ([]int, []registry.Actor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...), append([]registry.Actor(nil), s.actors...)
}

// gated returns a countingStore whose first CreateParties waits for
// release.
func gated(store registry.Store) *countingStore {
	return &countingStore{Store: store, gate: make(chan struct{}), entered: make(chan struct{})}
}

// waitQueued waits until n visits wait for the committer.
func waitQueued(t *testing.T, s *intake.Service, n int) {
	t.Helper()
	for s.Queued() < n {
		if t.Context().Err() != nil {
			t.Fatalf("queued = %d, want %d", s.Queued(), n)
		}
		runtime.Gosched()
	}
}

func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	if got := registry.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if got := registry.ErrorField(err); got != field {
		t.Errorf("error field = %q, want %q", got, field)
	}
}

func wantVisits(t *testing.T, store registry.Store, want int64) {
	t.Helper()
	if got := intaketest.CountVisits(t, store); got != want {
		t.Errorf("stored visits = %d, want %d", got, want)
	}
}

func ncpu() int { return runtime.GOMAXPROCS(0) }
