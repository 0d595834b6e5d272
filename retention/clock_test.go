package retention_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

func TestClockGuard(t *testing.T) {
	const week = 7 * 24 * time.Hour
	tests := []struct {
		name       string
		after      time.Duration // since the last purge
		allow      bool
		refused    []string // words of the refusal; nil when the purge runs
		deleted    int64
		suspicious bool
	}{
		{"one second earlier", -time.Second, false, []string{"earlier than the last purge", "timedatectl"}, 0, false},
		{"earlier, jump allowed", -time.Second, true, []string{"earlier than the last purge"}, 0, false},
		{"same time", 0, false, nil, 0, false},
		{"an hour later", time.Hour, false, nil, 0, false},
		{"three hours later: suspicious", 3 * time.Hour, false, nil, 2, true},
		{"two days later: would delete young visits", 48 * time.Hour, false, []string{"would delete 1 visits", "not yet 28d old", "--allow-clock-jump"}, 0, false},
		{"two days later, allowed", 48 * time.Hour, true, nil, 3, false},
		{"one second beyond the maximum jump", week + time.Second, false, []string{"7d1s after the last purge", "--allow-clock-jump", "health office"}, 0, false},
		{"beyond the maximum jump, allowed", week + time.Second, true, nil, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seed(t, openSQLite(t))
			// The last purge ran two hours before the scenario's now and
			// deleted nothing; young is younger than the retention period
			// by 36 hours, measured from it.
			last := s.now.Add(-2 * time.Hour)
			s.purge(last, retention.Options{})
			young := s.register(last.Add(36*time.Hour-28*24*time.Hour), true)
			before := s.snapshot()
			s.clock.Set(last.Add(tt.after))
			r, err := s.purger.Purge(s.ctx, retention.Options{AllowClockJump: tt.allow})
			st := s.purger.Status()
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("Purge: %v, want it to run", err)
				}
				if r.VisitsDeleted != tt.deleted {
					t.Errorf("purge deleted %d visits, want %d", r.VisitsDeleted, tt.deleted)
				}
				if st.Suspicious != tt.suspicious || st.Refused || st.Degraded() != tt.suspicious {
					t.Errorf("Status = %+v, want suspicious %v", st, tt.suspicious)
				}
				return
			}
			if !retention.IsClockRefusal(err) || registry.ErrorCode(err) != registry.ECONFLICT {
				t.Fatalf("Purge: err = %v, want a clock refusal with code %s", err, registry.ECONFLICT)
			}
			if r != nil {
				t.Errorf("refused purge returned a report %+v", r)
			}
			msg := registry.ErrorMessage(err)
			for _, w := range tt.refused {
				if !strings.Contains(msg, w) {
					t.Errorf("refusal %q lacks %q", msg, w)
				}
			}
			if !st.Refused || !st.Degraded() || !strings.Contains(st.Problem, "refused") {
				t.Errorf("Status after a refusal = %+v", st)
			}
			if after := s.snapshot(); !after.equal(before) || s.find(young.ID) == nil {
				t.Errorf("refused purge changed the registry: before %+v, after %+v", before, after)
			}
		})
	}
}

// TestClockGuardFirstPurge: without an earlier purge the clock is checked
// against the newest data stored.
func TestClockGuardFirstPurge(t *testing.T) {
	t.Run("right clock", func(t *testing.T) {
		s := seed(t, openSQLite(t))
		if r := s.purge(s.now, retention.Options{}); r.VisitsDeleted != 1 {
			t.Errorf("first purge deleted %d visits, want 1", r.VisitsDeleted)
		}
	})
	t.Run("clock behind the newest check-in", func(t *testing.T) {
		s := seed(t, openSQLite(t))
		s.clock.Set(s.now.Add(-12 * time.Hour)) // the fresh visit checked in 11 hours before now
		_, err := s.purger.Purge(s.ctx, retention.Options{AllowClockJump: true})
		if !retention.IsClockRefusal(err) || !strings.Contains(registry.ErrorMessage(err), "before the newest data stored") {
			t.Errorf("Purge = %v, want a refusal naming the newest data", err)
		}
	})
	t.Run("clock far after the newest data", func(t *testing.T) {
		s := seed(t, openSQLite(t))
		s.clock.Set(s.now.Add(10 * 24 * time.Hour))
		_, err := s.purger.Purge(s.ctx, retention.Options{})
		if !retention.IsClockRefusal(err) || !strings.Contains(registry.ErrorMessage(err), "after the newest data stored") {
			t.Errorf("Purge = %v, want a refusal naming the newest data", err)
		}
	})
}

// vouchingStore reports a database clock that reads like the host's.
type vouchingStore struct {
	registry.Store
	now func() time.Time
}

func (v vouchingStore) Horizon(ctx context.Context) (*registry.Horizon, error) {
	h, err := v.Store.Horizon(ctx)
	if err == nil {
		t := v.now()
		h.DatabaseNow = &t
	}
	return h, err
}

// TestClockGuardDatabaseVouches: a database server clock that agrees with
// the host's lifts the refusal of a purge after a long pause; one that
// disagrees does not.
func TestClockGuardDatabaseVouches(t *testing.T) {
	for _, tt := range []struct {
		name   string
		offset time.Duration
		refuse bool
	}{{"agrees", 10 * time.Second, false}, {"disagrees", time.Hour, true}} {
		t.Run(tt.name, func(t *testing.T) {
			s := seed(t, openSQLite(t))
			last := s.now.Add(-2 * time.Hour)
			s.purge(last, retention.Options{})
			s.register(last.Add(36*time.Hour-28*24*time.Hour), true)
			s.purger.Store = vouchingStore{Store: s.store, now: func() time.Time { return s.clock.Now().Add(tt.offset) }}
			s.clock.Set(last.Add(48 * time.Hour))
			r, err := s.purger.Purge(s.ctx, retention.Options{})
			if got := retention.IsClockRefusal(err); got != tt.refuse {
				t.Fatalf("Purge = %v, %v; want refused %v", r, err, tt.refuse)
			}
			if !tt.refuse && r.VisitsDeleted != 3 {
				t.Errorf("purge deleted %d visits, want 3", r.VisitsDeleted)
			}
		})
	}
}

// snapshot is what a purge could change.
type snapshot struct {
	audit    int
	visits   []string
	keyFiles []registry.Day
	open     int
}

func (s *scenario) snapshot() snapshot {
	s.t.Helper()
	var sn snapshot
	sn.audit = len(s.auditActions())
	for _, v := range []*visit{s.old, s.kept, s.stale, s.fresh} {
		if got := s.find(v.ID); got != nil {
			sn.visits = append(sn.visits, v.ID)
			if got.CheckOut == nil {
				sn.open++
			}
		}
	}
	sn.keyFiles = s.keyDays()
	return sn
}

func (a snapshot) equal(b snapshot) bool {
	return a.audit == b.audit && a.open == b.open && slices.Equal(a.visits, b.visits) && slices.Equal(a.keyFiles, b.keyFiles)
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
