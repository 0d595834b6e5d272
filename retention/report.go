package retention

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// WriteReport writes a purge report for the data-protection officer to
// file: as aligned "key: value" lines in English with times in UTC RFC 3339
// followed by a one-line summary, or with asJSON as JSON indented by two
// spaces (times in UTC, keys_destroyed always a list).
func WriteReport(w io.Writer, r *registry.PurgeReport, asJSON bool) error {
	c := normalized(r)
	if asJSON {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return fmt.Errorf("encode purge report: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	return writeText(w, c)
}

// normalized returns a copy of r in UTC with a non-nil KeysDestroyed.
func normalized(r *registry.PurgeReport) *registry.PurgeReport {
	c := *r
	c.RanAt, c.Cutoff = c.RanAt.UTC(), c.Cutoff.UTC()
	if c.OldestCheckIn != nil {
		t := c.OldestCheckIn.UTC()
		c.OldestCheckIn = &t
	}
	c.KeysDestroyed = append([]registry.Day{}, r.KeysDestroyed...)
	return &c
}

func writeText(w io.Writer, r *registry.PurgeReport) error {
	lines := [][2]string{
		{"ran at", stamp(r.RanAt)},
		{"dry run", yesNo(r.DryRun)},
		{"cutoff", stamp(r.Cutoff)},
		{"visits deleted", fmt.Sprint(r.VisitsDeleted)},
		{"epoch keys destroyed", keyList(r.KeysDestroyed)},
		{"visits auto-checked-out", fmt.Sprint(r.VisitsAutoCheckedOut)},
		{"trace requests expired", fmt.Sprint(r.RequestsExpired)},
		{"appointments deleted", fmt.Sprint(r.AppointmentsDeleted)},
		{"staff data erased", fmt.Sprintf("%d requests, %d actor names", r.StaffRequestsErased, r.StaffNamesErased)},
		{"visits remaining", fmt.Sprint(r.VisitsRemaining)},
		{"oldest remaining check-in", optStamp(r.OldestCheckIn)},
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0])+1)
	}
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%-*s %s\n", width, l[0]+":", l[1])
	}
	fmt.Fprintf(&b, "summary: %s\n", summary(r))
	_, err := io.WriteString(w, b.String())
	return err
}

// summary is one sentence saying what the purge did or, in a dry run,
// would do.
func summary(r *registry.PurgeReport) string {
	s := fmt.Sprintf("deleted %s checked in before %s, destroyed %s, closed %s, expired %s; %s",
		count(r.VisitsDeleted, "visit"), stamp(r.Cutoff), count(int64(len(r.KeysDestroyed)), "epoch key"),
		count(r.VisitsAutoCheckedOut, "stale visit"), count(r.RequestsExpired, "trace request"),
		remain(r.VisitsRemaining))
	if r.DryRun {
		s = "dry run, nothing changed: would have " + s
	}
	return s + "."
}

func count(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func remain(n int64) string {
	if n == 1 {
		return "1 visit remains"
	}
	return fmt.Sprintf("%d visits remain", n)
}

func keyList(days []registry.Day) string {
	if len(days) == 0 {
		return "none"
	}
	s := make([]string, len(days))
	for i, d := range days {
		s[i] = string(d)
	}
	return strings.Join(s, ", ")
}

func optStamp(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return stamp(*t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
