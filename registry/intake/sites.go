package intake

import (
	"context"
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
)

// siteTTL is how long the service trusts a site's configuration it read:
// a change by `registry sites set` applies on every node within it.
const siteTTL = 5 * time.Second

// siteCache holds the sites' configurations for siteTTL, so that a
// registration does not read the sites table.
type siteCache struct {
	mu    sync.Mutex
	sites map[string]siteEntry
}

type siteEntry struct {
	site *registry.Site // nil: there is no such site
	read time.Time
}

// Site returns the configured site of the code (from a cache of at most
// siteTTL), or ENOTFOUND. The caller must not change it.
func (s *Service) Site(ctx context.Context, code string) (*registry.Site, error) {
	now := s.now()
	c := &s.siteCache
	c.mu.Lock()
	e, ok := c.sites[code]
	c.mu.Unlock()
	if ok && now.Sub(e.read) < siteTTL && !now.Before(e.read) {
		if e.site == nil {
			return nil, registry.Errorf(registry.ENOTFOUND, "There is no site %s.", code)
		}
		return e.site, nil
	}
	site, err := s.Store.Site(ctx, code)
	if err != nil && registry.ErrorCode(err) != registry.ENOTFOUND {
		return nil, err
	}
	c.mu.Lock()
	if c.sites == nil || len(c.sites) > 1000 {
		c.sites = map[string]siteEntry{}
	}
	c.sites[code] = siteEntry{site: site, read: now}
	c.mu.Unlock()
	return site, err
}

// ForgetSites empties the cache of sites, for callers that just changed
// one and need the change at once (tests, the demo).
func (s *Service) ForgetSites() {
	s.siteCache.mu.Lock()
	s.siteCache.sites = nil
	s.siteCache.mu.Unlock()
}
