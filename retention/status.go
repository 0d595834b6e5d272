package retention

import (
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
)

// Status is what the purges of a Purger came to, for /readyz and
// /metrics: a refused, failed or suspicious purge leaves intake running
// but must be seen.
type Status struct {
	// LastRun is when the last real purge was tried; zero before the first.
	LastRun time.Time
	// LastSuccess is when a real purge last completed without error.
	LastSuccess time.Time
	// Refused is set while the last real purge was refused by the clock
	// guard; Problem says why.
	Refused bool
	// Failed is set while the last real purge failed otherwise (or
	// committed but could not finish, for example the erasure).
	Failed bool
	// Suspicious is set when the last purge ran after an unusual pause.
	Suspicious bool
	// Problem describes the refusal, failure or suspicion, for people; it
	// holds no personal data.
	Problem string
}

// Degraded reports whether the status calls for an operator.
func (s Status) Degraded() bool { return s.Refused || s.Failed || s.Suspicious }

type statusRecorder struct {
	mu sync.Mutex
	s  Status
}

// Status returns the purger's status.
func (p *Purger) Status() Status {
	p.status.mu.Lock()
	defer p.status.mu.Unlock()
	return p.status.s
}

// record notes the outcome of a purge; dry runs change nothing.
func (p *Purger) record(now time.Time, o Options, _ *registry.PurgeReport, err error, suspicious string) {
	if o.DryRun {
		return
	}
	p.status.mu.Lock()
	defer p.status.mu.Unlock()
	s := Status{LastRun: now, LastSuccess: p.status.s.LastSuccess}
	switch {
	case IsClockRefusal(err):
		s.Refused, s.Problem = true, "purge refused: "+registry.ErrorMessage(err)
	case err != nil:
		s.Failed, s.Problem = true, "purge failed: "+err.Error()
	case suspicious != "":
		s.Suspicious, s.Problem, s.LastSuccess = true, "purge suspicious: "+suspicious, now
	default:
		s.LastSuccess = now
	}
	p.status.s = s
}
