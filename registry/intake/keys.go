package intake

import (
	"context"
	"sync"

	"github.com/cityhall/registry/registry"
)

// maxCachedEpochs bounds the epoch key cache; registrations reach back at
// most registry.MaxCheckInAge, so a handful of days are live at a time.
const maxCachedEpochs = 16

// keyCache caches the public epoch keys by day. Only usable keys are
// cached: a missing key is looked up again next time, so a key created by
// the operator takes effect at once.
type keyCache struct {
	mu     sync.Mutex
	epochs map[registry.Day]string
}

func (c *keyCache) epochRecipient(ctx context.Context, store Store, day registry.Day) (string, error) {
	c.mu.Lock()
	r, ok := c.epochs[day]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	k, err := store.EpochKey(ctx, day)
	if err != nil {
		return "", err
	}
	if k.DestroyedAt != nil {
		return "", registry.Errorf(registry.ENOTFOUND, "epoch key of %s was destroyed", day)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epochs == nil || len(c.epochs) >= maxCachedEpochs {
		c.epochs = make(map[registry.Day]string)
	}
	c.epochs[day] = k.Recipient
	return k.Recipient, nil
}
