package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Result is the answer to a registration.
type Result struct {
	// Stored is the registrant's visit and its checkout token.
	Stored
	// Companions are the companions' visits, in the order of the request.
	Companions []Stored
	// Replayed is true when the idempotency key was seen before with the
	// same request body; nothing new was stored.
	Replayed bool
}

// Stored is one stored visit and its checkout token.
type Stored struct {
	// Visit is the stored visit; on a replay, the one stored first, without
	// Sealed.
	Visit *registry.Visit
	// CheckoutToken lets its holder end the visit. It is derived from the
	// visit id and the store's checkout key, never stored.
	CheckoutToken string
}

// Register registers one visitor: RegisterGroup without companions.
func (s *Service) Register(ctx context.Context, tok *registry.Token, reg *registry.Registration, idemKey string, body []byte) (*Result, error) {
	return s.RegisterGroup(ctx, tok, reg, nil, idemKey, body)
}

// RegisterGroup validates reg (reg.Normalize with the service clock) and
// each companion (the same rules, see Companion), seals each person's
// contact data to the epoch key of the check-in's day as a visit of its
// own, and returns once all of them are committed, together, in one
// transaction: all or nothing. reg is normalised in place.
//
// With an idempotency key, the visits carry IdempotencyHash(tok.ID, idemKey)
// (companions: a hash of the key and their index) and RequestMAC(idemKey,
// body); a key already stored for the token returns the stored visits with
// Replayed set, or ECONFLICT when body differs from the first request's.
//
// Errors: EUNAUTHORIZED without a valid token, EFORBIDDEN for a token that is
// not an intake token or is bound to another site (field "site"), EINVALID
// (with the field; "companions/1/phone" for a companion's) for a bad
// registration or more than MaxCompanions companions, EUNAVAILABLE when the
// day has no epoch key or the service is not running, ECONFLICT as above.
// Nothing is stored when an error is returned, except when ctx ends after
// the visits were queued: they are then still committed (retry with the
// same key).
func (s *Service) RegisterGroup(ctx context.Context, tok *registry.Token, reg *registry.Registration, companions []Companion, idemKey string, body []byte) (*Result, error) {
	now := s.now()
	if !s.Running() {
		return nil, errNotRunning
	}
	if err := checkIntakeToken(tok); err != nil {
		return nil, err
	}
	regs, err := groupRegistrations(reg, companions, now)
	if err != nil {
		return nil, err
	}
	if tok.Site != "" && reg.Site != tok.Site {
		return nil, &registry.Error{Code: registry.EFORBIDDEN, Field: "site", Message: "This token may only register visits for its own site."}
	}
	key, err := s.keys.checkoutKey(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	if idemKey != "" && len(companions) > 0 {
		if err := s.checkGroupKey(ctx, keyedVisitID(key, tok.ID, idemKey), crypto.RequestMAC(idemKey, body)); err != nil {
			return nil, err
		}
	}
	visits, err := s.sealGroup(ctx, regs, tok.ID, key, idemKey, body, now)
	if err != nil {
		return nil, err
	}
	stored, err := s.commit(ctx, tok.Actor(), visits)
	if err != nil {
		return nil, err
	}
	return s.result(stored, visits[0].RequestMAC, key)
}

// sealGroup seals each registration into a visit; with an idempotency key
// they are keyed (see keyVisits) and the main visit's id is keyedVisitID.
func (s *Service) sealGroup(ctx context.Context, regs []*registry.Registration, tokenID string, checkoutKey []byte, idemKey string, body []byte, now time.Time) ([]*registry.Visit, error) {
	visits := make([]*registry.Visit, len(regs))
	for i, reg := range regs {
		id := registry.NewID()
		if i == 0 && idemKey != "" {
			id = keyedVisitID(checkoutKey, tokenID, idemKey)
		}
		v, err := s.seal(ctx, reg, id, now)
		if err != nil {
			return nil, err
		}
		visits[i] = v
	}
	if idemKey != "" {
		keyVisits(visits, tokenID, idemKey, body)
	}
	return visits, nil
}

// result builds the answer from the committed visits.
func (s *Service) result(stored []*registry.Visit, mac, checkoutKey []byte) (*Result, error) {
	replayed, err := s.replayed(stored, mac)
	if err != nil {
		return nil, err
	}
	res := &Result{Replayed: replayed}
	for i, v := range stored {
		if replayed {
			v.Sealed = nil // this request's ciphertext was not stored
		}
		st := Stored{Visit: v, CheckoutToken: crypto.CheckoutToken(checkoutKey, v.ID)}
		if i == 0 {
			res.Stored = st
		} else {
			res.Companions = append(res.Companions, st)
		}
	}
	return res, nil
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

// seal builds visit id of a normalised registration, its contact sealed to
// the epoch key of the check-in's day.
func (s *Service) seal(ctx context.Context, reg *registry.Registration, id string, now time.Time) (*registry.Visit, error) {
	day := registry.DayOf(*reg.CheckIn)
	rcpt, err := s.keys.epochRecipient(ctx, s.Store, day)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		s.Logger.Error("refusing registration: no usable epoch key for the check-in day; create the day's key (registry serve creates keys ahead of time) and check the key store",
			"day", string(day))
		return nil, registry.Errorf(registry.EUNAVAILABLE, "no epoch key for %s", day)
	} else if err != nil {
		return nil, fmt.Errorf("read epoch key: %w", err)
	}
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

// commit queues the visits of one registration for the committer and
// waits for its answer: the stored visits, in order. When ctx ends after
// they were queued, they are still committed but commit returns at once.
func (s *Service) commit(ctx context.Context, actor registry.Actor, visits []*registry.Visit) ([]*registry.Visit, error) {
	p := &pending{actor: actor, visits: make([]registry.Visit, len(visits)), done: make(chan answer, 1)}
	for i, v := range visits {
		p.visits[i] = *v
	}
	if err := s.enqueue(ctx, p); err != nil {
		return nil, err
	}
	select {
	case a := <-p.done:
		return a.visits, a.err
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
