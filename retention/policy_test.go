package retention_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

func TestDefaultPolicy(t *testing.T) {
	p := retention.DefaultPolicy()
	want := retention.Policy{
		Retention: 28 * 24 * time.Hour, MaxStay: 12 * time.Hour, KeyGrace: 24 * time.Hour,
		MaxClockJump: 7 * 24 * time.Hour, KeysAhead: 14, KeysWarn: 7, StaffRetention: 365 * 24 * time.Hour,
	}
	if p != want {
		t.Errorf("DefaultPolicy() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("DefaultPolicy().Validate() = %v, want nil", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*retention.Policy)
		word   string // in the message; "" for valid
	}{
		{"default", func(p *retention.Policy) {}, ""},
		{"retention 1 day", func(p *retention.Policy) { p.Retention = 24 * time.Hour }, ""},
		{"retention under 1 day", func(p *retention.Policy) { p.Retention = 24*time.Hour - time.Second }, "retention"},
		{"retention 366 days", func(p *retention.Policy) { p.Retention = 366 * 24 * time.Hour }, ""},
		{"retention over 366 days", func(p *retention.Policy) { p.Retention = 366*24*time.Hour + time.Second }, "retention"},
		{"max stay zero", func(p *retention.Policy) { p.MaxStay = 0 }, "maximum stay"},
		{"max stay negative", func(p *retention.Policy) { p.MaxStay = -time.Hour }, "maximum stay"},
		{"max stay 72h", func(p *retention.Policy) { p.MaxStay = 72 * time.Hour }, ""},
		{"max stay over 72h", func(p *retention.Policy) { p.MaxStay = 72*time.Hour + time.Second }, "maximum stay"},
		{"key grace zero", func(p *retention.Policy) { p.KeyGrace = 0 }, ""},
		{"key grace negative", func(p *retention.Policy) { p.KeyGrace = -time.Second }, "key grace"},
		{"key grace 7 days", func(p *retention.Policy) { p.KeyGrace = 7 * 24 * time.Hour }, ""},
		{"key grace over 7 days", func(p *retention.Policy) { p.KeyGrace = 7*24*time.Hour + time.Second }, "key grace"},
		{"clock jump 1h", func(p *retention.Policy) { p.MaxClockJump = time.Hour }, ""},
		{"clock jump under 1h", func(p *retention.Policy) { p.MaxClockJump = time.Hour - time.Second }, "clock jump"},
		{"keys ahead zero", func(p *retention.Policy) { p.KeysAhead, p.KeysWarn = 0, 0 }, "keys ahead"},
		{"keys ahead 367", func(p *retention.Policy) { p.KeysAhead = 367 }, "keys ahead"},
		{"keys warn equals ahead", func(p *retention.Policy) { p.KeysWarn = p.KeysAhead }, ""},
		{"keys warn above ahead", func(p *retention.Policy) { p.KeysWarn = p.KeysAhead + 1 }, "keys warning"},
		{"keys warn negative", func(p *retention.Policy) { p.KeysWarn = -1 }, "keys warning"},
		{"zero policy", func(p *retention.Policy) { *p = retention.Policy{} }, "retention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := retention.DefaultPolicy()
			tt.change(&p)
			err := p.Validate()
			if tt.word == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if got := registry.ErrorCode(err); got != registry.EINVALID {
				t.Fatalf("Validate() code = %q (%v), want %q", got, err, registry.EINVALID)
			}
			if msg := registry.ErrorMessage(err); !strings.Contains(msg, tt.word) {
				t.Errorf("Validate() message = %q, want it to mention %q", msg, tt.word)
			}
		})
	}
}

func TestPolicyCutoffAndPlan(t *testing.T) {
	p := retention.DefaultPolicy()
	now := time.Date(2026, 4, 30, 10, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	want := time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC)
	if got := p.Cutoff(now); !got.Equal(want) {
		t.Errorf("Cutoff(%s) = %s, want %s", now, got, want)
	}
	plan := p.Plan(now)
	if !plan.Now.Equal(now) || plan.Now.Location() != time.UTC {
		t.Errorf("Plan.Now = %s, want %s in UTC", plan.Now, now)
	}
	if !plan.Cutoff.Equal(want) {
		t.Errorf("Plan.Cutoff = %s, want %s", plan.Cutoff, want)
	}
	if stale := now.Add(-12 * time.Hour); !plan.StaleBefore.Equal(stale) {
		t.Errorf("Plan.StaleBefore = %s, want %s", plan.StaleBefore, stale)
	}
	if plan.MaxStay != 12*time.Hour || plan.DryRun || plan.Destroyed != nil {
		t.Errorf("Plan = %+v, want MaxStay 12h, no dry run, nothing destroyed", plan)
	}
}

func TestPolicyKeyExpired(t *testing.T) {
	day := registry.Day("2026-03-02")
	// The day's last check-in is just before 2026-03-03T00:00Z; 28 days of
	// retention and 1 day of grace later the key goes.
	boundary := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		policy retention.Policy
		now    time.Time
		want   bool
	}{
		{"one second before", retention.DefaultPolicy(), boundary.Add(-time.Second), false},
		{"at the boundary", retention.DefaultPolicy(), boundary, true},
		{"one second after", retention.DefaultPolicy(), boundary.Add(time.Second), true},
		{"day itself", retention.DefaultPolicy(), day.Start(), false},
		{"no grace, one second before", noGrace(), boundary.Add(-24*time.Hour - time.Second), false},
		{"no grace, at retention end", noGrace(), boundary.Add(-24 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.KeyExpired(day, tt.now); got != tt.want {
				t.Errorf("KeyExpired(%s, %s) = %v, want %v", day, tt.now, got, tt.want)
			}
		})
	}
}

func noGrace() retention.Policy {
	p := retention.DefaultPolicy()
	p.KeyGrace = 0
	return p
}
