package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// testIndexScope: a request scoped to an index case holds the index
// visit, its companion and the visits that overlapped it in the same area
// (within the tolerance, for the minimum contact), not the visitor in
// another area at the same time nor the one who left an hour before;
// widened to the whole site with a reason it holds the other area too.
// The preview's count and the export agree, and the index scope is part
// of what the approver signs.
func testIndexScope(t *testing.T, s registry.Store) {
	const maxStay = 12 * time.Hour
	at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }
	stay := func(area string, in, out int) *registry.Visit {
		v := newVisit("rathaus", area, at(in))
		o := at(out)
		v.CheckOut = &o
		return v
	}
	index := stay("Saal 1", -120, -60)
	companion := stay("Saal 1", -120, -60)
	contact := stay("Saal 1", -70, -50)      // 10 minutes with the index case
	nearMiss := stay("Saal 1", -57, -40)     // came 3 minutes after it left
	otherArea := stay("Foyer", -120, -60)    // same time, another area
	leftBefore := stay("Saal 1", -240, -180) // left an hour before it came
	createParties(t, s, party("token:intake", nil, index, companion))
	createVisits(t, s, contact, nearMiss, otherArea, leftBefore)
	names := map[string]string{index.ID: "index", companion.ID: "companion", contact.ID: "contact", nearMiss.ID: "near miss",
		otherArea.ID: "other area", leftBefore.ID: "left before"}

	ordered := func(vs ...*registry.Visit) []string {
		out := []string{}
		for _, v := range sortedByCheckIn(vs, func(v *registry.Visit) *registry.Visit { return v }) {
			out = append(out, v.ID)
		}
		return out
	}
	tests := []struct {
		name       string
		tolerance  int
		minContact int
		wholeSite  string
		want       []string
	}{
		{"tolerance 5", 5, 0, "", ordered(index, companion, contact, nearMiss)},
		{"no tolerance", 0, 0, "", ordered(index, companion, contact)},
		{"at least 15 minutes", 5, 15, "", ordered(index, companion)},
		{"whole site", 5, 0, "Lüftung verbindet Foyer und Saal 1", ordered(index, companion, contact, nearMiss, otherArea)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &registry.TraceRequest{ID: registry.NewID(), CaseRef: "GA-2026-0099", Office: "Gesundheitsamt Musterstadt", LegalBasis: "§ 25 IfSG",
				Contact: "Frau Beispiel", From: at(-300), To: t0, Sites: []string{"rathaus"}, OwnerToken: "office", CreatedBy: registry.TokenActor("office"),
				CreatedAt: t0, Index: []string{"K7QD2M"}, IndexVisits: []string{index.ID}, Tolerance: tt.tolerance, MinContact: tt.minContact, WholeSite: tt.wholeSite}
			if err := s.CreateTraceRequest(context.Background(), registry.TokenActor("office"), r); err != nil {
				t.Fatal(err)
			}
			stored, err := s.FindTraceRequest(context.Background(), r.ID)
			if err != nil || !reflect.DeepEqual(stored.IndexVisits, r.IndexVisits) || stored.Tolerance != tt.tolerance || stored.MinContact != tt.minContact || stored.WholeSite != tt.wholeSite {
				t.Fatalf("stored index scope = %+v, %v", stored, err)
			}
			counts, err := s.ScopeSummary(context.Background(), stored, maxStay)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range counts {
				n += c.Visits
			}
			got := exportIDs(t, s, stored, maxStay)
			if !reflect.DeepEqual(got, tt.want) || n != len(tt.want) {
				t.Errorf("scope = %v (preview %d),\nwant %v", namesOf(got, names), n, namesOf(tt.want, names))
			}
		})
	}
	// Without the index scope the window holds everyone.
	r := newRequest(t, s, "office", t0, at(-300), t0, []string{"rathaus"}, nil)
	if got := exportIDs(t, s, r, maxStay); len(got) != 6 {
		t.Errorf("the window scope holds %d visits, want 6", len(got))
	}
}
