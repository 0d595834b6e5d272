package retention

import (
	"fmt"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// fullDay is 24 hours, the unit of the statutory periods.
const fullDay = 24 * time.Hour

// Limits of a valid Policy.
const (
	MinRetention = fullDay
	MaxRetention = 366 * fullDay
	MaxMaxStay   = registry.MaxStayLimit
	MaxKeyGrace  = 7 * fullDay
	MaxKeysAhead = 366
)

// Policy is the statutory retention policy. DefaultPolicy returns the
// values of the German pandemic rules; Validate checks any other.
type Policy struct {
	// Retention is the statutory period, counted from check-in: a visit
	// whose check-in lies further back is deleted (default 28 days).
	Retention time.Duration
	// MaxStay closes an open visit automatically: its check-out becomes
	// check-in + MaxStay, flagged as automatic (default 12 h).
	MaxStay time.Duration
	// KeyGrace is how long an epoch key outlives the last record it
	// sealed before the purge destroys it (default 24 h, at most 7 days:
	// until then old backups of the day stay readable).
	KeyGrace time.Duration
	// MaxClockJump is the longest time since the last purge that a purge
	// accepts without an explicit override (default 7 days).
	MaxClockJump time.Duration
	// KeysAhead is how many days, from today on, get epoch keys in
	// advance (default 14).
	KeysAhead int
	// KeysWarn: EnsureKeys logs a warning when fewer future days than
	// this are covered by usable keys (default 7).
	KeysWarn int
	// StaffRetention is how long the personal data of staff is kept: the
	// contact person, notes and deciding actors of a trace request after
	// it closed, and the names behind the audit log's actors (default one
	// year). The audit chain keeps verifying after the erasure.
	StaffRetention time.Duration
	// DayKeys is the kind of the epoch keys created from now on (default
	// crypto.Hybrid, post-quantum). Keys made before keep their kind: a
	// change takes effect at the first day that has no key yet, and nothing
	// is sealed again.
	DayKeys crypto.KeyKind
}

// DefaultPolicy returns the policy of the German pandemic rules: four
// weeks of retention counted from check-in.
func DefaultPolicy() Policy {
	return Policy{
		Retention:      28 * fullDay,
		MaxStay:        12 * time.Hour,
		KeyGrace:       fullDay,
		MaxClockJump:   7 * fullDay,
		KeysAhead:      14,
		KeysWarn:       7,
		StaffRetention: 365 * fullDay,
	}
}

// Validate returns an EINVALID *registry.Error naming the first setting
// out of range, or nil.
func (p Policy) Validate() error {
	switch {
	case p.Retention < MinRetention || p.Retention > MaxRetention:
		return registry.Errorf(registry.EINVALID, "retention must lie between 1 and 366 days, not %s", days(p.Retention))
	case p.MaxStay <= 0 || p.MaxStay > MaxMaxStay:
		return registry.Errorf(registry.EINVALID, "maximum stay must be positive and at most 72h, not %s", p.MaxStay)
	case p.KeyGrace < 0:
		return registry.Errorf(registry.EINVALID, "key grace must not be negative, not %s", p.KeyGrace)
	case p.KeyGrace > MaxKeyGrace:
		return registry.Errorf(registry.EINVALID, "key grace must be at most 7 days (backups stay readable until the key is destroyed), not %s", days(p.KeyGrace))
	case p.MaxClockJump < time.Hour:
		return registry.Errorf(registry.EINVALID, "maximum clock jump must be at least 1h (purges run hourly), not %s", p.MaxClockJump)
	case p.KeysAhead < 1 || p.KeysAhead > MaxKeysAhead:
		return registry.Errorf(registry.EINVALID, "keys ahead must lie between 1 and %d days, not %d", MaxKeysAhead, p.KeysAhead)
	case p.StaffRetention < 30*fullDay || p.StaffRetention > 3660*fullDay:
		return registry.Errorf(registry.EINVALID, "staff retention must lie between 30 days and 10 years, not %s", days(p.StaffRetention))
	case p.KeysWarn < 0 || p.KeysWarn > p.KeysAhead:
		return registry.Errorf(registry.EINVALID, "keys warning threshold must lie between 0 and keys ahead (%d), not %d", p.KeysAhead, p.KeysWarn)
	}
	return nil
}

// Cutoff returns the oldest check-in the policy still keeps at now: visits
// with an earlier check-in are deleted.
func (p Policy) Cutoff(now time.Time) time.Time { return now.Add(-p.Retention) }

// KeyExpired reports whether the day's epoch key must be destroyed at now:
// the retention of the day's last possible check-in has ended and the key
// grace has passed, that is now >= day.End() + Retention + KeyGrace.
func (p Policy) KeyExpired(day registry.Day, now time.Time) bool {
	return !now.Before(day.End().Add(p.Retention + p.KeyGrace))
}

// Plan returns what a purge at now removes: visits checked in before the
// cutoff, and open visits checked in more than MaxStay ago are closed.
// The caller fills in Destroyed and DryRun.
func (p Policy) Plan(now time.Time) registry.PurgePlan {
	now = now.UTC()
	return registry.PurgePlan{
		Now:         now,
		Cutoff:      p.Cutoff(now),
		StaleBefore: now.Add(-p.MaxStay),
		MaxStay:     p.MaxStay,
		StaffBefore: now.Add(-p.StaffRetention),
	}
}

// days formats d in days when it is a whole number of them.
func days(d time.Duration) string {
	if d%fullDay == 0 && d != 0 {
		if d == fullDay {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/fullDay)
	}
	return d.String()
}
