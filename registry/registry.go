// Package registry holds the domain of the contact-tracing visitor registry:
// visits and their sealed contacts, tokens, epoch keys, trace requests and
// the audit log, the store interfaces the adapters implement, and the one
// error type every layer speaks.
//
// It imports only the standard library. Adapters live in subpackages named
// after what they adapt (registry/sqlite, registry/postgres,
// registry/httpapi); only cmd/registry wires them together.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Actor names who did something, for the audit log and for the rule that
// the approver of a trace request differs from its creator. It is never a
// secret: "token:<token id>" for API callers, "dpo:<name>" for the CLI,
// "system" for the server's own jobs.
type Actor string

// ActorSystem is the actor of jobs the server runs on its own (hourly purge,
// epoch key creation).
const ActorSystem Actor = "system"

// ActorVisitor is the actor of check-outs by visitors themselves, with
// their checkout tokens (phone, slip, API).
const ActorVisitor Actor = "visitor"

// ActorAnonymous is the actor of what someone not signed in did (a failed
// sign-in, a download without a valid token).
const ActorAnonymous Actor = "anonymous"

// TokenActor returns the actor of an API token.
func TokenActor(tokenID string) Actor { return Actor("token:" + tokenID) }

// NewID returns a random 128-bit identifier as 32 lowercase hex digits.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// NewVisitID returns the id of a visit checked in at t: like NewID, 32
// lowercase hex digits, of which the first four are the UTC day (days
// since 1970-01-01, see VisitDay), the next five the second of that day,
// and the other 23 are 92 random bits. Ids so sort by check-in: a store
// finds a visit by its id alone in the one place where it can be (the
// PostgreSQL partition of its day), and deleting the expired visits
// removes a contiguous range of every index on the id, so that no
// expired id stays behind as a divider key of an index page.
func NewVisitID(t time.Time) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return VisitIDAt(t, hex.EncodeToString(b[:])[:23])
}

// VisitIDAt returns the prefix of a visit checked in at t followed by
// suffix, 23 lowercase hex digits.
func VisitIDAt(t time.Time, suffix string) string {
	t = t.UTC()
	day := t.Unix() / 86400
	return fmt.Sprintf("%04x%05x", day&0xffff, t.Unix()-day*86400) + suffix
}

// VisitDay returns the check-in day encoded in a visit id. ok is false
// for a malformed id.
func VisitDay(id string) (day Day, ok bool) {
	if !ValidID(id) {
		return "", false
	}
	n, err := strconv.ParseUint(id[:4], 16, 16)
	if err != nil {
		return "", false
	}
	return DayOf(time.Unix(int64(n)*86400, 0)), true
}

// ValidID reports whether s has the form NewID returns.
func ValidID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Day is a UTC calendar day in the form 2006-01-02. Each day has its own
// epoch key; a visit belongs to the day of its check-in.
type Day string

// DayLayout is the layout of a Day.
const DayLayout = "2006-01-02"

// DayOf returns the UTC day t falls on.
func DayOf(t time.Time) Day { return Day(t.UTC().Format(DayLayout)) }

// ParseDay parses a Day, returning EINVALID for anything else.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(DayLayout, s)
	if err != nil || t.Format(DayLayout) != s {
		return "", Errorf(EINVALID, "%q is not a day in the form YYYY-MM-DD.", s)
	}
	return Day(s), nil
}

// Start returns midnight UTC at the start of the day.
func (d Day) Start() time.Time {
	t, _ := time.Parse(DayLayout, string(d))
	return t
}

// End returns midnight UTC at the end of the day (the start of the next).
func (d Day) End() time.Time { return d.Start().AddDate(0, 0, 1) }

// AddDays returns the day n days later (earlier for negative n).
func (d Day) AddDays(n int) Day { return DayOf(d.Start().AddDate(0, 0, n)) }
