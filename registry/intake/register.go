package intake

import (
	"context"
	"crypto/hmac"
	"fmt"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Result is the answer to a registration.
type Result struct {
	// Visit is the stored visit; on a replay, the one stored first, without
	// Sealed.
	Visit *registry.Visit
	// CheckoutToken lets its holder end the visit. It is derived from the
	// visit id and the store's checkout key, never stored.
	CheckoutToken string
	// Replayed is true when the idempotency key was seen before with the
	// same request body; nothing new was stored.
	Replayed bool
}

// Register validates reg (reg.Normalize with the service clock), seals its
// contact data to the epoch key of the check-in's day, and returns once the
// visit is committed. reg is normalised in place.
//
// With an idempotency key, the visit carries IdempotencyHash(tok.ID, idemKey)
// and RequestMAC(idemKey, body); a key already stored for the token returns
// the stored visit with Replayed set, or ECONFLICT when body differs from
// the first request's.
//
// Errors: EUNAUTHORIZED without a valid token, EFORBIDDEN for a token that is
// not an intake token or is bound to another site (field "site"), EINVALID
// (with the field) for a bad registration, EUNAVAILABLE when the day has no
// epoch key or the service is not running, ECONFLICT as above. Nothing is
// stored when an error is returned, except when ctx ends after the visit was
// queued: the visit is then still committed (retry with the same key).
func (s *Service) Register(ctx context.Context, tok *registry.Token, reg *registry.Registration, idemKey string, body []byte) (*Result, error) {
	now := s.now()
	if !s.Running() {
		return nil, errNotRunning
	}
	if err := checkIntakeToken(tok); err != nil {
		return nil, err
	}
	if err := reg.Normalize(now); err != nil {
		return nil, err
	}
	if tok.Site != "" && reg.Site != tok.Site {
		return nil, &registry.Error{Code: registry.EFORBIDDEN, Field: "site", Message: "This token may only register visits for its own site."}
	}
	v, err := s.seal(ctx, reg, now)
	if err != nil {
		return nil, err
	}
	key, err := s.keys.checkoutKey(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	if idemKey != "" {
		v.IdempotencyHash = crypto.IdempotencyHash(tok.ID, idemKey)
		v.RequestMAC = crypto.RequestMAC(idemKey, body)
	}
	stored, err := s.commit(ctx, tok.Actor(), v)
	if err != nil {
		return nil, err
	}
	if stored.Replayed {
		if !hmac.Equal(stored.RequestMAC, v.RequestMAC) {
			return nil, registry.Errorf(registry.ECONFLICT, "Idempotency-Key was used for a different request.")
		}
		stored.Sealed = nil // this request's ciphertext was not stored
	}
	return &Result{Visit: stored, CheckoutToken: crypto.CheckoutToken(key, stored.ID), Replayed: stored.Replayed}, nil
}

var errNotRunning = registry.Errorf(registry.EUNAVAILABLE, "The intake service is not running.")

func checkIntakeToken(tok *registry.Token) error {
	switch {
	case tok == nil || tok.RevokedAt != nil:
		return registry.Errorf(registry.EUNAUTHORIZED, "A valid intake token is required.")
	case tok.Role != registry.RoleIntake:
		return registry.Errorf(registry.EFORBIDDEN, "Only intake tokens may register visits.")
	}
	return nil
}

// seal builds the visit of a normalised registration, its contact sealed to
// the epoch key of the check-in's day.
func (s *Service) seal(ctx context.Context, reg *registry.Registration, now time.Time) (*registry.Visit, error) {
	day := registry.DayOf(*reg.CheckIn)
	rcpt, err := s.keys.epochRecipient(ctx, s.Store, day)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		s.Logger.Error("refusing registration: no usable epoch key for the check-in day; create the day's key (registry serve creates keys ahead of time) and check the key store",
			"day", string(day))
		return nil, registry.Errorf(registry.EUNAVAILABLE, "no epoch key for %s", day)
	} else if err != nil {
		return nil, fmt.Errorf("read epoch key: %w", err)
	}
	id := registry.NewID()
	select {
	case s.sealing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to seal: %w", ctx.Err())
	}
	sealed, err := s.Sealer.Seal(reg.Contact(id), rcpt)
	<-s.sealing
	if err != nil {
		return nil, fmt.Errorf("seal contact: %w", err)
	}
	return &registry.Visit{
		ID: id, Site: reg.Site, Area: reg.Area, CheckIn: *reg.CheckIn,
		Epoch: day, Sealed: sealed, CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, nil
}

// commit queues v for the committer and waits for its answer. When ctx ends
// after v was queued, v is still committed but commit returns at once.
func (s *Service) commit(ctx context.Context, actor registry.Actor, v *registry.Visit) (*registry.Visit, error) {
	p := &pending{actor: actor, visit: *v, done: make(chan answer, 1)}
	if err := s.enqueue(ctx, p); err != nil {
		return nil, err
	}
	select {
	case a := <-p.done:
		return a.visit, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for commit: %w", ctx.Err())
	}
}

func (s *Service) enqueue(ctx context.Context, p *pending) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.started || s.closed {
		return errNotRunning
	}
	select {
	case s.queue <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue visit: %w", ctx.Err())
	}
}
