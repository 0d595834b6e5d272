package retention

import (
	"context"
	"time"

	"github.com/cityhall/registry/registry"
)

// DefaultInterval is how often Run purges when given no positive interval.
const DefaultInterval = time.Hour

// Run keeps epoch keys ready and purges: once at the start and then every
// interval (or on every value from p.Tick, when set) until ctx is done.
// Each cycle calls EnsureKeys and then Purge as registry.ActorSystem.
// Errors are logged and do not stop the loop; a purge refused by the clock
// guard is logged as an error asking the operator to check the clock and
// run `registry purge` by hand. Run returns when ctx is done.
func (p *Purger) Run(ctx context.Context, interval time.Duration) {
	tick := p.Tick
	if tick == nil {
		if interval <= 0 {
			interval = DefaultInterval
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	p.cycle(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			p.cycle(ctx)
		}
	}
}

// cycle is one round of Run.
func (p *Purger) cycle(ctx context.Context) {
	log := p.logger()
	if _, _, err := p.EnsureKeys(ctx, registry.ActorSystem); err != nil && ctx.Err() == nil {
		log.Error("epoch key maintenance failed", "err", err)
	}
	r, err := p.Purge(ctx, Options{Actor: registry.ActorSystem})
	switch {
	case ctx.Err() != nil:
	case IsClockRefusal(err):
		log.Error("scheduled purge refused because the clock looks wrong: check the system clock, then run `registry purge` by hand (add --allow-clock-jump only if the clock is right)",
			"reason", registry.ErrorMessage(err))
	case err != nil:
		log.Error("scheduled purge failed", "err", err)
	}
	if p.AfterCycle != nil {
		p.AfterCycle(r, err)
	}
}
