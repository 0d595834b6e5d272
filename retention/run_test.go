package retention_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

// cycle is what Run reported after one cycle.
type cycle struct {
	report *registry.PurgeReport
	err    error
}

// startRun runs the purger's loop on an injected ticker and returns the
// ticker, the cycles it reports and a function that stops the loop and
// waits for Run to return.
func startRun(t *testing.T, e *env) (chan<- time.Time, <-chan cycle, func()) {
	t.Helper()
	tick := make(chan time.Time)
	cycles := make(chan cycle, 16)
	e.purger.Tick = tick
	e.purger.AfterCycle = func(r *registry.PurgeReport, err error) { cycles <- cycle{r, err} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.purger.Run(ctx, time.Hour)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return tick, cycles, stop
}

func TestRun(t *testing.T) {
	s := seed(t, openSQLite(t))
	s.clock.Set(s.now)
	tick, cycles, stop := startRun(t, s.env)
	first := <-cycles
	if first.err != nil || first.report.VisitsDeleted != 1 {
		t.Fatalf("first cycle = %+v, %v; want the old visit deleted", first.report, first.err)
	}
	for i := 1; i <= 2; i++ {
		at := s.now.Add(time.Duration(i) * time.Hour)
		s.clock.Set(at)
		tick <- at
		if c := <-cycles; c.err != nil || !c.report.RanAt.Equal(at) {
			t.Fatalf("cycle after tick %d = %+v, %v; want a purge at %s", i, c.report, c.err, at)
		}
	}
	stop()
	if n := countOf(s.auditActions(), registry.AuditPurge); n != 3 {
		t.Errorf("%d purges recorded, want 3 (at start and on two ticks)", n)
	}
	// Run kept the keys ahead: the start at 10:00 created today's 14 days.
	if _, err := s.store.EpochKey(s.ctx, "2026-05-13"); err != nil {
		t.Errorf("EpochKey(2026-05-13) after Run: %v", err)
	}
	select {
	case c := <-cycles:
		t.Errorf("a cycle ran after the context was cancelled: %+v", c)
	default:
	}
}

// TestRunClockRefusal: a refused purge is logged as an error telling the
// operator what to do, and the loop goes on.
func TestRunClockRefusal(t *testing.T) {
	s := seed(t, openSQLite(t))
	s.clock.Set(s.now)
	tick, cycles, _ := startRun(t, s.env)
	if c := <-cycles; c.err != nil {
		t.Fatalf("first cycle: %v", c.err)
	}
	s.clock.Set(s.now.Add(-time.Minute))
	tick <- s.now
	if c := <-cycles; !retention.IsClockRefusal(c.err) {
		t.Fatalf("cycle with the clock set back: err = %v, want a clock refusal", c.err)
	}
	logs := s.logs.String()
	if !containsAll(logs, "level=ERROR", "registry purge", "check the system clock") {
		t.Errorf("log lacks the operator's instruction:\n%s", logs)
	}
	s.clock.Set(s.now.Add(time.Hour))
	tick <- s.now
	if c := <-cycles; c.err != nil {
		t.Errorf("cycle with the clock right again: %v", c.err)
	}
	if strings.Count(s.logs.String(), "level=ERROR") != 1 {
		t.Errorf("want exactly one error logged:\n%s", s.logs.String())
	}
}
