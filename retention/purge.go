package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Purger runs purges and keeps epoch keys ready. Set Store, Keys and
// Policy; the other fields are optional. Purges and key runs of one Purger
// are serialized; purges of several processes are serialized by the
// store's transaction.
type Purger struct {
	Store  registry.Store
	Keys   *crypto.KeyStore
	Policy Policy
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives what the purger did, never contact data (default:
	// discard).
	Logger *slog.Logger
	// Tick, when set, drives Run instead of a ticker of its interval.
	Tick <-chan time.Time
	// AfterCycle, when set, is called after every cycle of Run with the
	// purge's report and error (for metrics and tests).
	AfterCycle func(*registry.PurgeReport, error)
	// Interval is how often Run purges (default DefaultInterval); the
	// clock guard calls a longer pause suspicious.
	Interval time.Duration

	mu     sync.Mutex
	status statusRecorder
}

// Options adjust one purge.
type Options struct {
	// DryRun counts what the purge would do and changes nothing: no key
	// is destroyed, no row touched; the audit log records the dry run
	// (AuditPurgeDryRun), which is no purge for the clock guard.
	DryRun bool
	// Actor is recorded in the audit log (default registry.ActorSystem).
	Actor registry.Actor
	// AllowClockJump runs a purge although the clock moved further than
	// Policy.MaxClockJump since the last purge. It never allows a clock
	// that reads earlier than the last purge.
	AllowClockJump bool
}

// Purge deletes what the policy no longer allows at Now():
//
//  1. Clock guard: it refuses (an ECONFLICT error for which IsClockRefusal
//     is true, nothing changed) when Now() lies before the last purge
//     recorded in the audit log, or more than Policy.MaxClockJump after it
//     unless o.AllowClockJump. The first purge has no guard.
//  2. It destroys the private halves of expired epoch keys (see
//     Policy.KeyExpired) in the key store.
//  3. It calls Store.Purge with the policy's plan and the destroyed days,
//     which deletes expired visits, closes stale open ones, expires trace
//     requests, marks the keys destroyed and appends the audit event.
//
// The returned report lists the destroyed days in KeysDestroyed. With
// o.DryRun nothing is destroyed or changed, and the report tells what a
// real run would do. A key that cannot be destroyed does not stop the
// deletion of visits: Purge then returns the report together with an
// error naming the day; so does a purge whose store committed but could
// not erase the deleted bytes afterwards. A second purge right after a
// first changes nothing. EINVALID for an invalid policy, EINTERNAL without a store or
// key store.
func (p *Purger) Purge(ctx context.Context, o Options) (*registry.PurgeReport, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	suspicious, err := p.checkClock(ctx, now, o.AllowClockJump)
	if err != nil {
		p.record(now, o, nil, err, "")
		return nil, err
	}
	expired, err := p.expiredDays(ctx, now)
	if err != nil {
		return nil, err
	}
	destroyed, keyErr := expired, error(nil)
	if !o.DryRun {
		destroyed, keyErr = p.destroy(expired)
	}
	plan := p.Policy.Plan(now)
	plan.Destroyed, plan.DryRun = destroyed, o.DryRun
	r, err := p.Store.Purge(ctx, actorOr(o.Actor), plan)
	if r == nil {
		return nil, errors.Join(fmt.Errorf("purge store: %w", err), keyErr)
	}
	// A report with an error: the purge committed, but a step after it
	// failed; the report is what was done.
	r.KeysDestroyed = append([]registry.Day{}, destroyed...)
	p.logReport(r)
	if o.DryRun {
		ev, aerr := registry.NewAuditEvent(now, actorOr(o.Actor), "", registry.PurgeDryRun{PurgeReport: *r})
		if aerr == nil {
			aerr = p.Store.AppendAudit(ctx, ev)
		}
		if aerr != nil {
			return nil, fmt.Errorf("record the dry run: %w", aerr)
		}
	}
	if err != nil {
		err = fmt.Errorf("purge store: %w", err)
	}
	err = errors.Join(err, keyErr)
	if suspicious != "" && !o.DryRun {
		p.logger().Warn("purge ran after an unusual pause: " + suspicious)
	}
	p.record(now, o, r, err, suspicious)
	return r, err
}

// Clock guard tolerances.
const (
	// clockSkew is how far the clock may read behind the newest stored time
	// (another node's clock, a paper form's check-in a few minutes ahead).
	clockSkew = 5 * time.Minute
	// earlyTolerance is how much earlier than the last good purge implies
	// a purge may delete visits before it refuses.
	earlyTolerance = fullDay
	// dbClockAgreement is how closely the database server's clock must
	// agree with the host's to vouch for it.
	dbClockAgreement = time.Minute
)

// checkClock is the clock guard of Purge. The reference is the last purge
// or, before the first one, the newest time the database holds (a
// check-in, a registration, an audit event). It refuses, whatever the
// override:
//
//   - a clock that reads earlier than the last purge, or more than
//     clockSkew earlier than the newest stored time;
//
// and, unless allowJump (the DPO checked the clock):
//
//   - a clock more than Policy.MaxClockJump after the reference;
//   - a purge that would delete visits more than a day younger than the
//     retention period as measured from the reference: a clock that runs
//     days fast would delete data days early. The database server's own
//     clock (PostgreSQL), when it agrees with the host's within a minute,
//     vouches for the host clock and lifts this refusal.
//
// A purge after more than twice the purge interval without one runs, but
// counts as suspicious in Status.
func (p *Purger) checkClock(ctx context.Context, now time.Time, allowJump bool) (suspicious string, err error) {
	ref, first, err := p.reference(ctx, now)
	if err != nil {
		return "", err
	}
	if ref.IsZero() {
		return "", nil // an empty registry
	}
	at, refAt := stamp(now), stamp(ref)
	what := "the last purge at " + refAt
	if first {
		what = "the newest data stored, at " + refAt
	}
	jump := now.Sub(ref)
	switch {
	case !first && jump < 0:
		return "", clockRefusal("the clock reads %s, earlier than %s; check the system clock (timedatectl) before purging; if it is right, the purge ran with a clock ahead: registry purge --reset-clock", at, what)
	case first && jump < -clockSkew:
		return "", clockRefusal("the clock reads %s, %s before %s; check the system clock (timedatectl) before purging; if it is right, the stored times came from a clock running ahead: registry purge --reset-clock", at, span(-jump), what)
	case jump > p.Policy.MaxClockJump && !allowJump:
		return "", clockRefusal("the clock reads %s, %s after %s (more than the %s allowed); a forward jump of %s would delete data the health office may still need; if the clock is right, rerun with --allow-clock-jump",
			at, span(jump), what, span(p.Policy.MaxClockJump), span(jump))
	case jump > p.Policy.MaxClockJump:
		p.logger().Warn("purging after a clock jump allowed by the operator", "reference", refAt, "jump", span(jump))
		return "", nil
	}
	if err := p.checkEarly(ctx, now, ref, what, allowJump); err != nil {
		return "", err
	}
	if !first && !allowJump && jump > 2*p.interval()+10*time.Minute {
		return fmt.Sprintf("%s passed since the last purge at %s (purges run every %s): check that the clock is right", span(jump), refAt, span(p.interval())), nil
	}
	return "", nil
}

// clockState is what the clock guard measures against: the last purge,
// the last clock reset (and its payload) and the newest stored times.
type clockState struct {
	purge, reset *registry.AuditEvent
	resetP       registry.ClockReset
	newest       time.Time
	dbNow        *time.Time
}

func (p *Purger) clockState(ctx context.Context) (*clockState, error) {
	h, err := p.Store.Horizon(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the newest stored times: %w", err)
	}
	st := &clockState{newest: latest(h.NewestCheckIn, h.NewestWrite), dbNow: h.DatabaseNow}
	for _, x := range []struct {
		action string
		ev     **registry.AuditEvent
	}{{registry.AuditPurge, &st.purge}, {registry.AuditClockReset, &st.reset}} {
		ev, err := p.Store.LastAudit(ctx, x.action)
		switch {
		case registry.ErrorCode(err) == registry.ENOTFOUND:
		case err != nil:
			return nil, fmt.Errorf("read the last %s: %w", x.action, err)
		default:
			*x.ev = ev
		}
	}
	if st.reset != nil {
		if err := json.Unmarshal([]byte(st.reset.Details), &st.resetP); err != nil {
			return nil, fmt.Errorf("read the last clock reset: %w", err)
		}
		// Times the clock stamped while it ran ahead are no evidence
		// that it is behind now.
		if !st.newest.After(st.resetP.Newest) {
			st.newest = st.reset.Time
		}
	}
	return st, nil
}

// reference returns the time of the last purge or clock reset, whichever
// came later, or, when there was neither, the newest time the database
// holds (first = true); zero when it holds nothing. A clock behind the
// newest stored time is refused here.
func (p *Purger) reference(ctx context.Context, now time.Time) (ref time.Time, first bool, err error) {
	st, err := p.clockState(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	last := st.purge
	if st.reset != nil && (last == nil || st.reset.Seq > last.Seq) {
		last = st.reset
	}
	switch {
	case last == nil:
		return st.newest, true, nil
	case now.Before(st.newest.Add(-clockSkew)):
		return time.Time{}, false, clockRefusal("the clock reads %s, %s before the newest data stored, at %s; check the system clock (timedatectl) before purging; if it is right, the stored times came from a clock running ahead: registry purge --reset-clock",
			stamp(now), span(st.newest.Sub(now)), stamp(st.newest))
	}
	return last.Time, false, nil
}

// ClockResetPlan is what a clock reset would record (see ResetClock).
type ClockResetPlan struct {
	registry.ClockReset
	// Now is the host's clock, which the reset declares right;
	// DatabaseNow the database server's clock (PostgreSQL), nil without
	// one: a second opinion for the person who confirms.
	Now         time.Time
	DatabaseNow *time.Time
}

// ResetClock is the way out after the clock ran ahead: the last purge
// (or the newest data) carries a time after the clock's now, so the guard
// refuses every purge until real time catches up, and data stays past
// the statutory period. The DPO checks the clock and resets: confirm
// sees the plan and returns nil to go ahead. The reset appends an
// AuditClockReset event; from it on the guard measures from the reset's
// time. EINVALID when nothing lies ahead of the clock (a refused forward
// jump needs AllowClockJump instead), or confirm's error, with nothing
// recorded.
func (p *Purger) ResetClock(ctx context.Context, actor registry.Actor, confirm func(*ClockResetPlan) error) (*ClockResetPlan, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	st, err := p.clockState(ctx)
	if err != nil {
		return nil, err
	}
	plan := &ClockResetPlan{Now: now, DatabaseNow: st.dbNow, ClockReset: registry.ClockReset{Newest: st.newest}}
	if st.purge != nil {
		plan.Reference = st.purge.Time
	}
	if st.reset != nil && (st.purge == nil || st.reset.Seq > st.purge.Seq) {
		plan.Reference = st.reset.Time
	}
	if !plan.Reference.After(now) && !st.newest.After(now.Add(clockSkew)) {
		return nil, registry.Errorf(registry.EINVALID, "nothing to reset: the last purge (%s) and the newest data (%s) lie before the clock's %s; a purge refused for a forward jump runs with --allow-clock-jump once the clock is checked",
			dashStamp(plan.Reference), dashStamp(st.newest), stamp(now))
	}
	if plan.Ahead, err = p.Store.CountVisits(ctx, now, now.AddDate(100, 0, 0)); err != nil {
		return nil, fmt.Errorf("count visits: %w", err)
	}
	if err := confirm(plan); err != nil {
		return nil, err
	}
	ev, err := registry.NewAuditEvent(now, actorOr(actor), "", plan.ClockReset)
	if err != nil {
		return nil, err
	}
	if err := p.Store.AppendAudit(ctx, ev); err != nil {
		return nil, fmt.Errorf("record the clock reset: %w", err)
	}
	p.logger().Warn("clock reference reset by the operator", "reference", stamp(plan.Reference), "newest", stamp(plan.Newest), "ahead", plan.Ahead)
	return plan, nil
}

func dashStamp(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return stamp(t)
}

// checkEarly refuses a purge that would delete visits checked in after
// ref + earlyTolerance - Retention: younger than the retention period as
// measured from the reference.
func (p *Purger) checkEarly(ctx context.Context, now, ref time.Time, what string, allowJump bool) error {
	cutoff := p.Policy.Cutoff(now)
	from := ref.Add(earlyTolerance - p.Policy.Retention)
	if allowJump || !from.Before(cutoff) || p.databaseVouches(ctx, now) {
		return nil
	}
	n, err := p.Store.CountVisits(ctx, from, cutoff)
	if err != nil {
		return fmt.Errorf("count visits: %w", err)
	}
	if n == 0 {
		return nil
	}
	return clockRefusal("the clock reads %s, %s after %s: this purge would delete %d visits checked in from %s on, which by %s are not yet %s old; if the clock is right, rerun with --allow-clock-jump",
		stamp(now), span(now.Sub(ref)), what, n, stamp(from), what, span(p.Policy.Retention))
}

// databaseVouches reports whether the database server's clock agrees with
// now.
func (p *Purger) databaseVouches(ctx context.Context, now time.Time) bool {
	h, err := p.Store.Horizon(ctx)
	if err != nil || h.DatabaseNow == nil {
		return false
	}
	d := h.DatabaseNow.Sub(now)
	return d < dbClockAgreement && d > -dbClockAgreement
}

func latest(ts ...*time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t != nil && t.After(l) {
			l = *t
		}
	}
	return l
}

func (p *Purger) interval() time.Duration {
	if p.Interval > 0 {
		return p.Interval
	}
	return DefaultInterval
}

// expiredDays lists the days whose private key must be gone at now: expired
// days with a key file or a leftover temporary file of one, and expired days the database does not yet know as
// destroyed (a previous run destroyed the file but failed to record it).
// The latter only when the key store holds the database's current keys, so
// that a wrong key store directory is never recorded as destruction.
func (p *Purger) expiredDays(ctx context.Context, now time.Time) ([]registry.Day, error) {
	files, err := p.Keys.Days()
	if err != nil {
		return nil, fmt.Errorf("list epoch key files: %w", err)
	}
	leftovers, err := p.Keys.LeftoverDays()
	if err != nil {
		return nil, fmt.Errorf("list epoch key files: %w", err)
	}
	stored, err := p.Store.EpochKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list epoch keys: %w", err)
	}
	var days []registry.Day
	for _, d := range append(slices.Clone(files), leftovers...) {
		if p.Policy.KeyExpired(d, now) {
			days = append(days, d)
		}
	}
	unmarked := p.unmarked(stored, files, now)
	if len(unmarked) > 0 && !p.keyStoreMatches(stored, files, now) {
		p.logger().Warn("expired epoch keys without key file not marked destroyed: the key store holds none of the current keys; check the key store directory",
			"days", len(unmarked))
		unmarked = nil
	}
	days = append(days, unmarked...)
	slices.Sort(days)
	return slices.Compact(days), nil
}

// unmarked returns expired stored keys not marked destroyed whose key file
// is absent.
func (p *Purger) unmarked(stored []*registry.EpochKey, files []registry.Day, now time.Time) []registry.Day {
	var days []registry.Day
	for _, k := range stored {
		if k.DestroyedAt == nil && p.Policy.KeyExpired(k.Day, now) && !slices.Contains(files, k.Day) {
			days = append(days, k.Day)
		}
	}
	return days
}

// keyStoreMatches reports whether some unexpired stored key has its private
// half, with the same recipient, in the key store.
func (p *Purger) keyStoreMatches(stored []*registry.EpochKey, files []registry.Day, now time.Time) bool {
	for _, k := range stored {
		if k.DestroyedAt != nil || p.Policy.KeyExpired(k.Day, now) || !slices.Contains(files, k.Day) {
			continue
		}
		if r, err := p.Keys.Recipient(k.Day); err == nil && r == k.Recipient {
			return true
		}
	}
	return false
}

// destroy destroys the days' private keys and returns the days that are
// gone; the error names the days that could not be destroyed.
func (p *Purger) destroy(days []registry.Day) ([]registry.Day, error) {
	var gone []registry.Day
	var errs []error
	for _, d := range days {
		if _, err := p.Keys.Destroy(d); err != nil {
			p.logger().Error("cannot destroy epoch key", "day", string(d), "err", err)
			errs = append(errs, fmt.Errorf("destroy epoch key of %s: %w", d, err))
			continue
		}
		gone = append(gone, d)
	}
	return gone, errors.Join(errs...)
}

func (p *Purger) logReport(r *registry.PurgeReport) {
	msg := "purge finished"
	if r.DryRun {
		msg = "purge dry run finished"
	}
	p.logger().Info(msg, "cutoff", stamp(r.Cutoff), "visits_deleted", r.VisitsDeleted,
		"keys_destroyed", len(r.KeysDestroyed), "visits_auto_checked_out", r.VisitsAutoCheckedOut,
		"requests_expired", r.RequestsExpired, "visits_remaining", r.VisitsRemaining)
}

// check fails closed on a purger that is not set up.
func (p *Purger) check() error {
	if p.Store == nil || p.Keys == nil {
		return registry.Errorf(registry.EINTERNAL, "the purger needs a store and a key store")
	}
	return p.Policy.Validate()
}

func (p *Purger) now() time.Time {
	if p.Now == nil {
		return time.Now().UTC()
	}
	return p.Now().UTC()
}

func (p *Purger) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

func actorOr(a registry.Actor) registry.Actor {
	if a == "" {
		return registry.ActorSystem
	}
	return a
}
