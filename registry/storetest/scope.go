package storetest

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// exportIDs approves r and exports it with maxStay, returning the ids build
// received in order.
func exportIDs(t *testing.T, s registry.Store, r *registry.TraceRequest, maxStay time.Duration) []string {
	t.Helper()
	approve(t, s, r.ID, t0, t0.Add(72*time.Hour))
	rec := &recorder{}
	if _, err := s.ExportTraceRequest(context.Background(), office, r.ID, t0, maxStay, nil, rec.build); err != nil {
		t.Fatalf("ExportTraceRequest() = %v", err)
	}
	ids := []string{}
	for _, v := range rec.visits {
		ids = append(ids, v.ID)
	}
	return ids
}

func testExportScope(t *testing.T, s registry.Store) {
	const maxStay = 12 * time.Hour
	from, to := t0.Add(-48*time.Hour), t0.Add(-46*time.Hour)
	in := func(v *registry.Visit, out time.Time) *registry.Visit { v.CheckOut = &out; return v }
	type visitCase struct {
		name    string
		v       *registry.Visit
		inScope bool
	}
	cases := []visitCase{
		{"check-in at to", in(newVisit("rathaus", "", to), to.Add(time.Hour)), false},
		{"check-in 1s before to", in(newVisit("rathaus", "", to.Add(-time.Second)), to.Add(time.Hour)), true},
		{"check-out at from", in(newVisit("rathaus", "", from.Add(-time.Hour)), from), false},
		{"check-out 1s after from", in(newVisit("rathaus", "", from.Add(-time.Hour)), from.Add(time.Second)), true},
		{"inside window", in(newVisit("rathaus", "", from.Add(time.Minute)), from.Add(2*time.Minute)), true},
		{"spanning window", in(newVisit("rathaus", "", from.Add(-time.Hour)), to.Add(time.Hour)), true},
		{"open, max stay ends at from", newVisit("rathaus", "", from.Add(-maxStay)), false},
		{"open, max stay ends 1s after from", newVisit("rathaus", "", from.Add(-maxStay+time.Second)), true},
		{"open, inside", newVisit("rathaus", "", from.Add(time.Hour)), true},
		{"other site", in(newVisit("museum", "", from.Add(time.Minute)), from.Add(2*time.Minute)), false},
		{"second site", in(newVisit("bibliothek", "x", from.Add(time.Minute)), from.Add(3*time.Minute)), true},
	}
	var want []string
	for _, c := range cases {
		createVisits(t, s, c.v)
	}
	for _, c := range sortedByCheckIn(cases, func(c visitCase) *registry.Visit { return c.v }) {
		if c.inScope {
			want = append(want, c.v.ID)
		}
	}
	r := newRequest(t, s, "office", t0, from, to, []string{"rathaus", "bibliothek"}, nil)
	got := exportIDs(t, s, r, maxStay)
	if !reflect.DeepEqual(got, want) {
		names := map[string]string{}
		for _, c := range cases {
			names[c.v.ID] = c.name
		}
		t.Errorf("scope = %v,\nwant %v", namesOf(got, names), namesOf(want, names))
	}
}

func testExportAreas(t *testing.T, s registry.Store) {
	from, to := t0.Add(-2*time.Hour), t0
	a := newVisit("rathaus", "buergerbuero", from.Add(time.Minute))
	b := newVisit("rathaus", "standesamt", from.Add(2*time.Minute))
	c := newVisit("rathaus", "", from.Add(3*time.Minute))
	d := newVisit("bibliothek", "buergerbuero", from.Add(4*time.Minute))
	e := newVisit("rathaus", "buergerbuero", from.Add(time.Minute)) // same check-in as a: ordered by id
	createVisits(t, s, a, b, c, d, e)
	first, second := a.ID, e.ID
	if second < first {
		first, second = second, first
	}
	tests := []struct {
		name  string
		sites []string
		areas []string
		want  []string
	}{
		{"one area", []string{"rathaus"}, []string{"buergerbuero"}, []string{first, second}},
		{"two areas", []string{"rathaus"}, []string{"buergerbuero", "standesamt"}, []string{first, second, b.ID}},
		{"all areas", []string{"rathaus"}, nil, []string{first, second, b.ID, c.ID}},
		{"area of other site", []string{"bibliothek"}, []string{"buergerbuero"}, []string{d.ID}},
		{"unknown area", []string{"rathaus"}, []string{"keller"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, s, "office", t0, from, to, tt.sites, tt.areas)
			if got := exportIDs(t, s, r, time.Hour); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("scope = %v, want %v", got, tt.want)
			}
		})
	}
}

// sortedByCheckIn returns the items ordered by the check-in and id of their
// visits, the order exports use.
func sortedByCheckIn[T any](items []T, visit func(T) *registry.Visit) []T {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b T) int {
		va, vb := visit(a), visit(b)
		if c := va.CheckIn.Compare(vb.CheckIn); c != 0 {
			return c
		}
		return strings.Compare(va.ID, vb.ID)
	})
	return out
}

func namesOf(ids []string, names map[string]string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = names[id]
	}
	return out
}
