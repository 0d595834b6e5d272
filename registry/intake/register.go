package intake

import (
	"context"
	"crypto/hmac"
	"fmt"
	"strings"
	"time"

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
	// visit id and the server secret, never stored.
	CheckoutToken string
}

// Register registers one visitor: RegisterGroup without companions.
func (s *Service) Register(ctx context.Context, who registry.Registrant, reg *registry.Registration, idemKey string, body []byte) (*Result, error) {
	return s.RegisterGroup(ctx, who, reg, nil, idemKey, body)
}

// RegisterGroup validates reg (reg.Normalize with the service clock) and
// each companion (the same rules, see Companion), seals each person's
// contact data to the epoch key of the check-in's day as a visit of its
// own, and returns once all of them are committed, together, in one
// transaction: all or nothing. reg is normalised in place.
//
// With an idempotency key the party carries an idempotency record (an
// HMAC of the token id and the key, and an HMAC binding the key to body,
// both under the server secret), and its visit ids are derived from the
// key (crypto.Secret.KeyedVisitID). A key already stored for the token
// returns the stored visits with Replayed set, or ECONFLICT when body
// differs from the first request's (also when the first request had
// another number of companions: nothing of the second is stored).
//
// The site must be configured (Service.Sites) and the area, when the site
// lists areas, one of them.
//
// Errors: EUNAUTHORIZED or EFORBIDDEN from who.Registrar(), EFORBIDDEN
// (field "site") for a site the registrar may not register for, EINVALID
// (naming every field at fault; "companions/1/phone" for a companion's)
// for a bad registration, an unknown site or area, or more than
// MaxCompanions companions,
// EUNAVAILABLE when the day has no epoch key, the service is not running
// or the database does not answer, ECONFLICT as above. Nothing is stored
// when an error is returned, except when ctx ends after the visits were
// queued: they are then still committed (retry with the same key).
func (s *Service) RegisterGroup(ctx context.Context, who registry.Registrant, reg *registry.Registration, companions []Companion, idemKey string, body []byte) (*Result, error) {
	now := s.now()
	if !s.Running() {
		return nil, errNotRunning
	}
	rr, err := who.Registrar()
	if err != nil {
		return nil, err
	}
	if !rr.MaySite(reg.Site) {
		return nil, &registry.Error{Code: registry.EFORBIDDEN, Field: "site", Message: "You may not register visits for this site."}
	}
	// The appointment fills in host and area before the companions take
	// them; its field errors are reported with all the others.
	// The site is read once (cached) for the appointment and the area.
	site, siteErr := s.Site(ctx, reg.Site)
	var appt *registry.Appointment
	var walkIn string
	var apptErr error
	if siteErr == nil {
		appt, walkIn, apptErr = s.checkAppointment(ctx, rr, site, reg, now)
	}
	regs, err := groupRegistrations(reg, companions, now)
	if err := registry.Invalid(apptErr, err); err != nil {
		return nil, err
	}
	if err := checkSite(site, siteErr, reg); err != nil {
		return nil, err
	}
	party := &registry.Party{Actor: rr.Actor, Visits: make([]*registry.Visit, len(regs)), WalkIn: walkIn}
	if appt != nil {
		party.Appointment = appt.ID
	}
	checkIn := *reg.CheckIn
	if idemKey != "" {
		party.Key = &registry.IdempotencyKey{
			Hash: s.Secret.IdempotencyHash(rr.Scope, idemKey), RequestMAC: s.Secret.RequestMAC(idemKey, body),
			CheckIn: checkIn, Visits: len(regs),
		}
	}
	for i, r := range regs {
		id := registry.NewVisitID(checkIn)
		if idemKey != "" {
			id = s.Secret.KeyedVisitID(checkIn, rr.Scope, idemKey, i)
		}
		if party.Visits[i], err = s.seal(ctx, r, id, now); err != nil {
			return nil, err
		}
	}
	if err := s.commit(ctx, party); err != nil {
		return nil, err
	}
	if party.Replay != nil {
		return s.replay(ctx, rr.Scope, idemKey, party)
	}
	if appt != nil && appt.Status == registry.AppointmentExpected && s.OnArrival != nil {
		s.OnArrival(appt, checkIn)
	}
	return s.result(party.Visits, false), nil
}

// replay answers a registration whose idempotency key was stored before:
// with the visits stored then, when the body is the same.
func (s *Service) replay(ctx context.Context, scope, idemKey string, party *registry.Party) (*Result, error) {
	stored := party.Replay
	if !hmac.Equal(stored.RequestMAC, party.Key.RequestMAC) || stored.Visits != len(party.Visits) {
		return nil, errKeyReused
	}
	visits := make([]*registry.Visit, stored.Visits)
	for i := range visits {
		id := s.Secret.KeyedVisitID(stored.CheckIn, scope, idemKey, i)
		v, err := s.Store.FindVisit(ctx, id)
		if registry.ErrorCode(err) == registry.ENOTFOUND {
			// Checked out and purged since, or never stored under this
			// key's day: the first registration is over.
			return nil, registry.Errorf(registry.ECONFLICT, "Idempotency-Key belongs to a registration that is no longer stored.")
		} else if err != nil {
			return nil, fmt.Errorf("read replayed visit: %w", err)
		}
		v.Sealed = nil
		visits[i] = v
	}
	return s.result(visits, true), nil
}

// result builds the answer from the visits of a party.
func (s *Service) result(visits []*registry.Visit, replayed bool) *Result {
	res := &Result{Replayed: replayed}
	for i, v := range visits {
		st := Stored{Visit: v, CheckoutToken: s.Secret.CheckoutToken(v.ID)}
		if i == 0 {
			res.Stored = st
		} else {
			res.Companions = append(res.Companions, st)
		}
	}
	return res
}

var (
	errNotRunning = registry.Errorf(registry.EUNAVAILABLE, "The intake service is not running.")
	errKeyReused  = registry.Errorf(registry.ECONFLICT, "Idempotency-Key was used for a different request.")
)

// checkSite returns EINVALID unless reg's site is configured (site, err
// as Service.Site returned them) and its area, when the site lists areas,
// is one of them.
func checkSite(site *registry.Site, err error, reg *registry.Registration) error {
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return registry.FieldError("site", "There is no site of this code; 'registry sites list' shows the configured ones.")
	} else if err != nil {
		return err
	}
	if reg.Area != "" && len(site.Areas) > 0 && !site.HasArea(reg.Area) {
		return registry.FieldError("area", "The site has no area of this name.")
	}
	return nil
}

// checkAppointment checks the registration's appointment code against the
// site's appointments of the check-in day and fills in the appointment's
// host and area when the registration leaves them out; it returns the
// appointment's id. At a site that requires appointments a registration
// without one needs a walk-in reason (registrars that may give one) and
// returns it. Field errors name "appointment" or "walk_in".
func (s *Service) checkAppointment(ctx context.Context, rr *registry.Registrar, site *registry.Site, reg *registry.Registration, now time.Time) (appt *registry.Appointment, walkIn string, err error) {
	day := registry.LocalDay(now)
	if reg.CheckIn != nil {
		day = registry.LocalDay(*reg.CheckIn)
	}
	walk := strings.TrimSpace(reg.WalkIn)
	raw := strings.TrimSpace(reg.Appointment)
	switch {
	case raw != "":
		code := registry.NormalizeCode(raw)
		if code == "" {
			return nil, "", registry.FieldError("appointment", "appointment must be an appointment code like T-4711, as the service line gave it.")
		}
		a, err := s.Store.FindAppointment(ctx, site.Code, day, code)
		if registry.ErrorCode(err) == registry.ENOTFOUND {
			return nil, "", registry.FieldError("appointment", "There is no appointment %s at this site on %s.", code, day)
		} else if err != nil {
			return nil, "", err
		}
		if a.Status == registry.AppointmentCancelled {
			return nil, "", registry.FieldError("appointment", "The appointment %s was cancelled.", code)
		}
		reg.Appointment = code
		if reg.Host == "" {
			reg.Host = a.Host
		}
		if reg.Area == "" {
			reg.Area = a.Area
		}
		return a, "", nil
	case !site.RequiresAppointment:
		if walk != "" {
			return nil, "", registry.FieldError("walk_in", "This site admits visitors without an appointment; leave walk_in out.")
		}
		return nil, "", nil
	case !rr.MayWalkIn:
		return nil, "", registry.FieldError("appointment", "This site admits visitors by appointment only: enter the code of your appointment (T-4711), or ask at the desk.")
	case walk == "":
		return nil, "", registry.FieldError("appointment", "This site admits visitors by appointment only: give the appointment's code, or admit the visitor as a walk-in with a reason (walk_in).")
	case !registry.ValidWalkInReason(walk):
		return nil, "", registry.FieldError("walk_in", "walk_in must be one of the listed reasons (%s).", walkInCodes())
	}
	reg.WalkIn = walk
	return nil, walk, nil
}

func walkInCodes() string {
	var codes []string
	for _, r := range registry.WalkInReasons {
		codes = append(codes, r.Code)
	}
	return strings.Join(codes, ", ")
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
	v := &registry.Visit{
		ID: id, Site: reg.Site, Area: reg.Area, CheckIn: *reg.CheckIn,
		Epoch: day, Sealed: sealed, CreatedAt: now.UTC().Truncate(time.Microsecond),
	}
	if reg.CheckOut != nil { // typed in afterwards: the reception recorded the departure
		out := *reg.CheckOut
		v.CheckOut, v.CheckoutReason = &out, registry.CheckoutDesk
	}
	return v, nil
}

// commit queues the party for the committer and waits for its answer. When
// ctx ends after it was queued, it is still committed but commit returns
// at once.
func (s *Service) commit(ctx context.Context, party *registry.Party) error {
	p := &pending{party: party, done: make(chan error, 1)}
	if err := s.enqueue(ctx, p); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("wait for commit: %w", ctx.Err())
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
