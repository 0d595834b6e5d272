package retention_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

func sampleReport() *registry.PurgeReport {
	cest := time.FixedZone("CEST", 2*3600)
	oldest := time.Date(2026, 4, 2, 10, 0, 1, 0, cest)
	return &registry.PurgeReport{
		RanAt:                time.Date(2026, 4, 30, 12, 0, 0, 0, cest),
		Cutoff:               time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC),
		VisitsDeleted:        1,
		KeysDestroyed:        []registry.Day{"2026-03-30", "2026-03-31"},
		VisitsAutoCheckedOut: 3,
		VisitsRemaining:      2,
		OldestCheckIn:        &oldest,
	}
}

func TestWriteReportText(t *testing.T) {
	tests := []struct {
		name   string
		report func() *registry.PurgeReport
		want   string
	}{
		{"purge", sampleReport, `ran at:                    2026-04-30T10:00:00Z
dry run:                   no
cutoff:                    2026-04-02T10:00:00Z
visits deleted:            1
epoch keys destroyed:      2026-03-30, 2026-03-31
visits auto-checked-out:   3
trace requests expired:    0
appointments deleted:      0
staff data erased:         0 requests, 0 actor names
visits remaining:          2
oldest remaining check-in: 2026-04-02T08:00:01Z
summary: deleted 1 visit checked in before 2026-04-02T10:00:00Z, destroyed 2 epoch keys, closed 3 stale visits, expired 0 trace requests; 2 visits remain.
`},
		{"empty dry run", func() *registry.PurgeReport {
			return &registry.PurgeReport{RanAt: time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC), DryRun: true,
				Cutoff: time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC), VisitsRemaining: 1, RequestsExpired: 1}
		}, `ran at:                    2026-04-30T10:00:00Z
dry run:                   yes
cutoff:                    2026-04-02T10:00:00Z
visits deleted:            0
epoch keys destroyed:      none
visits auto-checked-out:   0
trace requests expired:    1
appointments deleted:      0
staff data erased:         0 requests, 0 actor names
visits remaining:          1
oldest remaining check-in: none
summary: dry run, nothing changed: would have deleted 0 visits checked in before 2026-04-02T10:00:00Z, destroyed 0 epoch keys, closed 0 stale visits, expired 1 trace request; 1 visit remains.
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := retention.WriteReport(&b, tt.report(), false); err != nil {
				t.Fatalf("WriteReport: %v", err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("WriteReport text =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteReportJSON(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := retention.WriteReport(&b, r, true); err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	out := b.String()
	for _, want := range []string{"{\n  \"ran_at\": \"2026-04-30T10:00:00Z\",\n", "\"oldest_remaining_check_in\": \"2026-04-02T08:00:01Z\"", "\n}\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON report lacks %q:\n%s", want, out)
		}
	}
	var got registry.PurgeReport
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	if !got.RanAt.Equal(r.RanAt) || !got.Cutoff.Equal(r.Cutoff) || !got.OldestCheckIn.Equal(*r.OldestCheckIn) ||
		got.VisitsDeleted != 1 || got.VisitsAutoCheckedOut != 3 || got.VisitsRemaining != 2 ||
		strings.Join(dayStrings(got.KeysDestroyed), ",") != "2026-03-30,2026-03-31" {
		t.Errorf("decoded report = %+v, want %+v", got, *r)
	}
	if r.RanAt.Location() == time.UTC {
		t.Errorf("WriteReport changed the caller's report")
	}
}

func TestWriteReportJSONEmptyKeys(t *testing.T) {
	var b bytes.Buffer
	r := &registry.PurgeReport{RanAt: time.Unix(0, 0), Cutoff: time.Unix(0, 0)}
	if err := retention.WriteReport(&b, r, true); err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	if want := `"keys_destroyed": []`; !strings.Contains(b.String(), want) {
		t.Errorf("JSON report = %s, want it to contain %s", b.String(), want)
	}
}

func dayStrings(days []registry.Day) []string {
	s := make([]string, len(days))
	for i, d := range days {
		s[i] = string(d)
	}
	return s
}
