package sqlite_test

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlite"
)

// BenchmarkDisclosureSize measures how many visits a request discloses on
// a realistic day: 600 visitors at one site between 08:00 and 18:00 in 5
// areas, stays of 5 to 90 minutes, one in five with a companion. For 20
// index cases it files the scope a health office would without an index
// (the index case's day part: two hours before and after its stay) and
// the index scope (same area, 5 minutes tolerance), and reports the mean
// visits each discloses. Sizes, not speed: ns/op is the count's cost.
func BenchmarkDisclosureSize(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "registry.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := mrand.New(mrand.NewPCG(2026, 12))
	day := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC) // 08:00 German time
	areas := []string{"Bürgerbüro", "Standesamt", "Bauamt", "Kasse", "Foyer"}
	var visits []*registry.Visit
	var parties []*registry.Party
	for len(visits) < 600 {
		in := day.Add(time.Duration(rng.IntN(10*60)) * time.Minute)
		out := in.Add(time.Duration(5+rng.IntN(86)) * time.Minute)
		area := areas[rng.IntN(len(areas))]
		n := 1
		if rng.IntN(5) == 0 {
			n = 2
		}
		var party []*registry.Visit
		for range n {
			sealed := make([]byte, 64)
			rand.Read(sealed)
			o := out
			v := &registry.Visit{ID: registry.NewVisitID(in), Site: "rathaus", Area: area, CheckIn: in, CheckOut: &o, Epoch: registry.DayOf(in), Sealed: sealed, CreatedAt: in}
			party = append(party, v)
			visits = append(visits, v)
		}
		parties = append(parties, &registry.Party{Actor: "token:intake", Visits: party})
	}
	if err := s.CreateParties(ctx, parties); err != nil {
		b.Fatal(err)
	}
	var window, index float64
	const cases = 20
	for b.Loop() {
		window, index = 0, 0
		for i := range cases {
			iv := visits[(i*37)%len(visits)]
			base := &registry.TraceRequest{From: iv.CheckIn.Add(-2 * time.Hour), To: iv.CheckOut.Add(2 * time.Hour), Sites: []string{"rathaus"}}
			w, err := s.ScopeSummary(ctx, base, 12*time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			ix := *base
			ix.Index, ix.IndexVisits, ix.Tolerance = []string{"K7QD2M"}, []string{iv.ID}, registry.DefaultTolerance
			n, err := s.ScopeSummary(ctx, &ix, 12*time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			window += float64(registry.CountScope(w))
			index += float64(registry.CountScope(n))
		}
	}
	b.ReportMetric(window/cases, "window_visits")
	b.ReportMetric(index/cases, "index_visits")
	b.ReportMetric(100*index/window, "index_%_of_window")
}
