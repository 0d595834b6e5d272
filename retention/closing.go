package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/cityhall/registry/registry"
)

// ClosingStore is what the closing job needs of a store.
type ClosingStore interface {
	Sites(ctx context.Context) ([]*registry.Site, error)
	CloseVisits(ctx context.Context, actor registry.Actor, site string, from, at time.Time) (int, error)
}

// closingDays is how many local days back the closing job looks: a
// server that was down at closing time catches up within the longest
// stay.
const closingDays = int(registry.MaxStayLimit/(24*time.Hour)) + 1

// Closer checks out the visits still open when their site closes, at the
// closing time and flagged as automatic (registry.CheckoutClosing): a
// visit checked in on a local day before that day's closing time is
// closed then. Visits checked in after closing time stay open until the
// purge's maximum stay.
type Closer struct {
	Store  ClosingStore
	Now    func() time.Time
	Logger *slog.Logger
}

// Close runs one round: for every site with a closing time and each of
// the last closingDays local days whose closing time has passed, it checks
// out that day's open visits checked in before closing. It returns how
// many it checked out.
func (c *Closer) Close(ctx context.Context) (int, error) {
	sites, err := c.Store.Sites(ctx)
	if err != nil {
		return 0, err
	}
	now, total := c.Now(), 0
	for _, site := range sites {
		for back := closingDays; back >= 0; back-- {
			day := registry.LocalMidnight(now).AddDate(0, 0, -back)
			closing, ok := site.ClosingOn(day.Add(12 * time.Hour)) // noon: never the neighbouring day, DST or not
			if !ok || closing.After(now) {
				continue
			}
			n, err := c.Store.CloseVisits(ctx, registry.ActorSystem, site.Code, registry.LocalMidnight(closing), closing)
			if err != nil {
				return total, err
			}
			if n > 0 {
				c.logger().Info("checked out visits still open at closing time", "site", site.Code, "count", n, "closing", closing.Format(time.RFC3339))
			}
			total += n
		}
	}
	return total, nil
}

// Run calls Close every interval (a minute when 0) until ctx ends; errors
// are logged.
func (c *Closer) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := c.Close(ctx); err != nil && ctx.Err() == nil {
			c.logger().Error("closing-time check-out failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Closer) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
