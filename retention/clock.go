package retention

import (
	"errors"
	"fmt"
	"time"

	"github.com/cityhall/registry/registry"
)

// clockError is the clock guard's refusal: an ECONFLICT *registry.Error
// that IsClockRefusal recognises.
type clockError struct{ err *registry.Error }

func (e *clockError) Error() string { return e.err.Error() }
func (e *clockError) Unwrap() error { return e.err }

func clockRefusal(format string, args ...any) error {
	return &clockError{registry.Errorf(registry.ECONFLICT, format, args...)}
}

// IsClockRefusal reports whether err is a purge refused by the clock guard
// (see Purger.Purge). Its message tells the operator what to check.
func IsClockRefusal(err error) bool {
	var c *clockError
	return errors.As(err, &c)
}

// stamp formats t for people: UTC, RFC 3339.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// span formats a duration for people in days, hours, minutes and
// seconds, leaving out zero parts: "9d3h", "7d1s", "45m".
func span(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return d.String()
	}
	var s string
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{fullDay, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			s += fmt.Sprintf("%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return s
}
