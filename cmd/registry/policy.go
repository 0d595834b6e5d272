package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cityhall/registry/retention"
)

// days is a duration flag that also takes whole days ("28d"), because the
// statutory periods are written in days.
type days struct{ d *time.Duration }

func (v days) String() string {
	if *v.d%(24*time.Hour) == 0 && *v.d != 0 {
		return strconv.Itoa(int(*v.d/(24*time.Hour))) + "d"
	}
	return v.d.String()
}

func (v days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 {
			return fmt.Errorf("%q is not a number of days like 28d", s)
		}
		*v.d = time.Duration(i) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 28d, 12h or 90m", s)
	}
	*v.d = d
	return nil
}

func (v days) Type() string { return "duration" }

// policyFlags adds the retention policy's flags, with their defaults.
func policyFlags(fs *pflag.FlagSet, p *retention.Policy) {
	*p = retention.DefaultPolicy()
	fs.Var(days{&p.Retention}, "retention", "statutory retention period, counted from check-in")
	fs.Var(days{&p.MaxStay}, "max-stay", "open visits are checked out automatically after this long")
	fs.Var(days{&p.KeyGrace}, "key-grace", "how long after its last record expired a day's key is destroyed")
	fs.Var(days{&p.MaxClockJump}, "max-clock-jump", "a purge refuses to run when the clock moved further than this since the last purge")
	fs.IntVar(&p.KeysAhead, "keys-ahead", p.KeysAhead, "create epoch keys this many days in advance")
	fs.IntVar(&p.KeysWarn, "keys-warn", p.KeysWarn, "warn when fewer future days than this have epoch keys")
	fs.Var(days{&p.StaffRetention}, "staff-retention", "staff personal data (request contacts and notes, audit actor names) is erased this long after it was recorded or the request closed")
	fs.Var(&p.DayKeys, "day-keys", "kind of the epoch keys created from now on: hybrid (post-quantum, ML-KEM-768 + X25519) or x25519 (classic); existing keys keep theirs")
	settings(fs, "retention", "max-stay", "key-grace", "max-clock-jump", "keys-ahead", "keys-warn", "staff-retention", "day-keys")
}
