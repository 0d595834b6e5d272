package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cityhall/registry/registry"
)

// EnsureKeys makes sure that today, the Policy.KeysAhead-1 days after it
// and the days back to registry.MaxCheckInAge before it (a paper form typed
// in later names them; on a new installation they have no key yet) have
// epoch keys: for a day without either half it creates the private key in
// the key store and adds the public half to the store; for a day whose key
// file exists but whose public half is missing in the database it adds the
// public half derived from the file (a repair). All new public halves are
// added with one audit event by actor. It never recreates a day whose key
// was destroyed, and never creates one for a day whose key would already
// be expired.
//
// Several processes sharing the database and the key store may run it at
// once: a key file another process just created is used as it is, and when
// another process added a day's public half first, EnsureKeys reads the
// state again and retries.
//
// created lists the days whose public half was added, repairs included.
// covered counts the consecutive days from today on that have a usable key
// (public half in the database, matching private half in the key store);
// below Policy.KeysWarn it logs a warning. A day whose database key has no
// matching private half cannot be repaired here (its records could never be
// exported): EnsureKeys still handles the other days and then returns an
// ECONFLICT error naming it. EINVALID for an invalid policy, EINTERNAL
// without a store or key store.
func (p *Purger) EnsureKeys(ctx context.Context, actor registry.Actor) (created []registry.Day, covered int, err error) {
	if err := p.check(); err != nil {
		return nil, 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for attempt := 1; ; attempt++ {
		created, covered, err = p.ensureKeys(ctx, actor, now)
		if registry.ErrorCode(err) != registry.ECONFLICT || attempt == 3 || !errors.Is(err, errRaced) {
			return created, covered, err
		}
	}
}

// DayRecipient returns the public epoch key ("age1…") of day, creating
// the day's key pair (with one audit event by actor) when it has none yet:
// an appointment's note is sealed with the key of the appointment's day,
// which may lie months beyond the days EnsureKeys keeps ready. ENOTFOUND
// when the day's key was destroyed or would already be expired, ECONFLICT
// when its stored key has no matching private half.
func (p *Purger) DayRecipient(ctx context.Context, actor registry.Actor, day registry.Day) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	// The common case, a day whose key exists, needs no lock: a booking
	// does not wait for a purge that is running.
	if k, err := p.Store.EpochKey(ctx, day); err == nil && k.DestroyedAt == nil && !p.Policy.KeyExpired(day, p.now()) && p.matches(k) {
		return k.Recipient, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.Policy.KeyExpired(day, now) {
		return "", registry.Errorf(registry.ENOTFOUND, "the epoch key of %s has expired", day)
	}
	for attempt := 1; ; attempt++ {
		st, err := p.keyState(ctx)
		if err != nil {
			return "", err
		}
		add, broken, err := p.missingKeys(st, []registry.Day{day}, now)
		switch {
		case err != nil:
			return "", err
		case len(broken) > 0:
			return "", brokenError(broken)
		case st.usable[day]:
			return st.stored[day].Recipient, nil
		case len(add) == 0:
			return "", registry.Errorf(registry.ENOTFOUND, "the epoch key of %s was destroyed", day)
		}
		err = p.Store.AddEpochKeys(ctx, actorOr(actor), add)
		if registry.ErrorCode(err) == registry.ECONFLICT && attempt < 3 {
			continue // another process added it first: read it
		} else if err != nil {
			return "", fmt.Errorf("add epoch key: %w", err)
		}
		p.logger().Info("epoch key added ahead for an appointment", "day", string(day))
		return add[0].Recipient, nil
	}
}

// errRaced marks an AddEpochKeys that lost to another process.
var errRaced = errors.New("another process added epoch keys at the same time")

func (p *Purger) ensureKeys(ctx context.Context, actor registry.Actor, now time.Time) (created []registry.Day, covered int, err error) {
	st, err := p.keyState(ctx)
	if err != nil {
		return nil, 0, err
	}
	days := p.aheadDays(now)
	add, broken, err := p.missingKeys(st, append(p.pastDays(now), days...), now)
	if err != nil {
		return nil, 0, err
	}
	if len(add) > 0 {
		err := p.Store.AddEpochKeys(ctx, actorOr(actor), add)
		if registry.ErrorCode(err) == registry.ECONFLICT {
			return nil, 0, fmt.Errorf("add epoch keys: %w", errors.Join(err, errRaced))
		} else if err != nil {
			return nil, 0, fmt.Errorf("add epoch keys: %w", err)
		}
		for _, k := range add {
			created = append(created, k.Day)
			st.usable[k.Day] = true
		}
		p.logger().Info("epoch keys added", "days", len(created), "first", string(created[0]), "last", string(created[len(created)-1]))
	}
	covered = st.covered(days)
	if covered < p.Policy.KeysWarn {
		p.logger().Warn("epoch keys cover too few days ahead: intake fails on a day without a key",
			"covered_days", covered, "warn_below", p.Policy.KeysWarn)
	}
	return created, covered, brokenError(broken)
}

// keyState is what the store and the key store hold.
type keyState struct {
	stored map[registry.Day]*registry.EpochKey
	files  map[registry.Day]bool
	usable map[registry.Day]bool
}

func (p *Purger) keyState(ctx context.Context) (*keyState, error) {
	stored, err := p.Store.EpochKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list epoch keys: %w", err)
	}
	files, err := p.Keys.Days()
	if err != nil {
		return nil, fmt.Errorf("list epoch key files: %w", err)
	}
	st := &keyState{stored: map[registry.Day]*registry.EpochKey{}, files: map[registry.Day]bool{}, usable: map[registry.Day]bool{}}
	for _, k := range stored {
		st.stored[k.Day] = k
	}
	for _, d := range files {
		st.files[d] = true
	}
	return st, nil
}

// pastDays are the days before today that a registration may still name
// (registry.MaxCheckInAge) whose key is not yet expired, oldest first.
func (p *Purger) pastDays(now time.Time) []registry.Day {
	today := registry.DayOf(now)
	var days []registry.Day
	for n := int(registry.MaxCheckInAge / fullDay); n >= 1; n-- {
		if d := today.AddDays(-n); !p.Policy.KeyExpired(d, now) {
			days = append(days, d)
		}
	}
	return days
}

func (p *Purger) aheadDays(now time.Time) []registry.Day {
	today := registry.DayOf(now)
	days := make([]registry.Day, p.Policy.KeysAhead)
	for i := range days {
		days[i] = today.AddDays(i)
	}
	return days
}

// missingKeys returns the public halves to add for days, marks the usable
// days in st, and returns the days whose stored key cannot be used.
func (p *Purger) missingKeys(st *keyState, days []registry.Day, now time.Time) (add []*registry.EpochKey, broken []registry.Day, err error) {
	for _, d := range days {
		k, file := st.stored[d], st.files[d]
		switch {
		case k != nil && k.DestroyedAt != nil:
			p.logger().Warn("epoch key of a current day was destroyed; it is not recreated", "day", string(d))
		case k != nil:
			if p.matches(k) {
				st.usable[d] = true
			} else {
				broken = append(broken, d)
			}
		default:
			nk, err := p.newKey(d, file, now)
			if err != nil {
				return nil, nil, err
			}
			add = append(add, nk)
		}
	}
	return add, broken, nil
}

// matches reports whether the key store holds the private half of k.
func (p *Purger) matches(k *registry.EpochKey) bool {
	r, err := p.Keys.Recipient(k.Day)
	if err != nil {
		p.logger().Error("epoch key of a current day has no private half in the key store", "day", string(k.Day), "err", err)
		return false
	}
	if r != k.Recipient {
		p.logger().Error("epoch key file does not match the database's public key", "day", string(k.Day))
		return false
	}
	return true
}

// newKey creates the day's key pair, or, when the key file exists already
// (repair, or another process just created it), derives the public half.
func (p *Purger) newKey(d registry.Day, file bool, now time.Time) (*registry.EpochKey, error) {
	if !file {
		k, err := p.Keys.Create(d, p.Policy.DayKeys, now)
		if err == nil {
			return k, nil
		} else if registry.ErrorCode(err) != registry.ECONFLICT {
			return nil, fmt.Errorf("create epoch key: %w", err)
		}
	}
	r, err := p.Keys.Recipient(d)
	if err != nil {
		return nil, fmt.Errorf("read epoch key: %w", err)
	}
	p.logger().Info("epoch key file without public half: adding it", "day", string(d))
	return &registry.EpochKey{Day: d, Recipient: r, CreatedAt: now}, nil
}

// covered counts the consecutive usable days from the first of days.
func (st *keyState) covered(days []registry.Day) int {
	for i, d := range days {
		if !st.usable[d] {
			return i
		}
	}
	return len(days)
}

func brokenError(days []registry.Day) error {
	if len(days) == 0 {
		return nil
	}
	slices.Sort(days)
	return registry.Errorf(registry.ECONFLICT,
		"the epoch keys of %v have no matching private half in the key store: records of those days cannot be exported; check the key store directory", days)
}
