package retention_test

import (
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
		name    string
		after   time.Duration // since the last purge
		allow   bool
		refused []string // words of the refusal; nil when the purge runs
	}{
		{"one second earlier", -time.Second, false, []string{"earlier than the last purge", "timedatectl"}},
		{"earlier, jump allowed", -time.Second, true, []string{"earlier than the last purge"}},
		{"same time", 0, false, nil},
		{"an hour later", time.Hour, false, nil},
		{"exactly the maximum jump", week, false, nil},
		{"one second beyond the maximum jump", week + time.Second, false, []string{"7d1s after the last purge", "--allow-clock-jump", "health office"}},
		{"beyond the maximum jump, allowed", week + time.Second, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seed(t, openSQLite(t))
			// The first purge happens with the clock a week and a second
			// back: nothing of the scenario expires yet.
			last := s.now.Add(-week - time.Second)
			s.purge(last, retention.Options{})
			before := s.snapshot()
			s.clock.Set(last.Add(tt.after))
			r, err := s.purger.Purge(s.ctx, retention.Options{AllowClockJump: tt.allow})
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("Purge: %v, want it to run", err)
				}
				if tt.after == week+time.Second && r.VisitsDeleted != 1 {
					t.Errorf("allowed jump deleted %d visits, want 1", r.VisitsDeleted)
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
			if after := s.snapshot(); !after.equal(before) {
				t.Errorf("refused purge changed the registry: before %+v, after %+v", before, after)
			}
		})
	}
}

// TestClockGuardFirstPurge: without an earlier purge there is nothing to
// compare the clock with.
func TestClockGuardFirstPurge(t *testing.T) {
	s := seed(t, openSQLite(t))
	if r := s.purge(s.now, retention.Options{}); r.VisitsDeleted != 1 {
		t.Errorf("first purge deleted %d visits, want 1", r.VisitsDeleted)
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
