package httpapi

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
)

// tokenTTL is how long a token look-up is reused: a revoked token stops
// working within this time on every node.
const tokenTTL = time.Second

// maxCachedTokens bounds the cache; unknown tokens are cached too (so that
// guessing costs no query), and a flood of them only empties the cache.
const maxCachedTokens = 10_000

// tokenCache answers token look-ups from memory for up to tokenTTL, so that
// a request costs no database query for its token, and sees a revocation
// within tokenTTL.
type tokenCache struct {
	find func(ctx context.Context, hash []byte) (*registry.Token, error)
	now  func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	tok *registry.Token // nil: no such token
	at  time.Time
}

// lookup returns the token with the hash, or ENOTFOUND.
func (c *tokenCache) lookup(ctx context.Context, hash []byte) (*registry.Token, error) {
	var key [sha256.Size]byte
	copy(key[:], hash)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) >= tokenTTL || now.Before(e.at) {
		tok, err := c.find(ctx, hash)
		switch {
		case registry.ErrorCode(err) == registry.ENOTFOUND:
			tok = nil
		case err != nil:
			return nil, err
		}
		e = cachedToken{tok: tok, at: now}
		c.mu.Lock()
		if c.entries == nil || len(c.entries) >= maxCachedTokens {
			c.entries = map[[sha256.Size]byte]cachedToken{}
		}
		c.entries[key] = e
		c.mu.Unlock()
	}
	if e.tok == nil {
		return nil, registry.Errorf(registry.ENOTFOUND, "Token not found.")
	}
	return e.tok, nil
}
