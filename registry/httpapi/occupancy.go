package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
)

// occupancyTTL is how long a count of open visits is reused: the public
// form and /metrics may lag a few seconds; the desk's own changes clear
// it at once.
const occupancyTTL = 5 * time.Second

// occupancy is a count of the open visits per site and area, from the
// plaintext times alone.
type occupancy struct {
	at   time.Time
	rows []registry.Occupancy
}

// site returns the open visits of a site.
func (o *occupancy) site(code string) int {
	n := 0
	for _, r := range o.rows {
		if r.Site == code {
			n += r.Open
		}
	}
	return n
}

// area returns the open visits of a site's area.
func (o *occupancy) area(code, area string) int {
	for _, r := range o.rows {
		if r.Site == code && r.Area == area {
			return r.Open
		}
	}
	return 0
}

// occupancyCache holds the last count.
type occupancyCache struct {
	mu   sync.Mutex
	last *occupancy
}

// occupancy returns the open visits checked in within the longest stay
// (older ones are about to be checked out automatically), from a count at
// most occupancyTTL old.
func (s *Server) occupancy(ctx context.Context) (*occupancy, error) {
	now := s.cfg.Now()
	s.occ.mu.Lock()
	last := s.occ.last
	s.occ.mu.Unlock()
	if last != nil && now.Sub(last.at) < occupancyTTL && !now.Before(last.at) {
		return last, nil
	}
	rows, err := s.cfg.Store.Occupancy(ctx, now.Add(-s.cfg.MaxStay))
	if err != nil {
		return nil, err
	}
	o := &occupancy{at: now, rows: rows}
	s.occ.mu.Lock()
	s.occ.last = o
	s.occ.mu.Unlock()
	return o, nil
}

// forgetOccupancy drops the cached count after a change at the desk.
func (s *Server) forgetOccupancy() {
	s.occ.mu.Lock()
	s.occ.last = nil
	s.occ.mu.Unlock()
}

// occupancyRow is one line of the desk's occupancy table.
type occupancyRow struct {
	Name           string
	Open, Capacity int
	Full           bool
}

// occupancyRows are the desk's table: the whole site, then each
// configured area, then visits of areas the site does not list.
func occupancyRows(o *occupancy, site *registry.Site, t map[string]string) []occupancyRow {
	whole := occupancyRow{Name: t["whole_site"], Open: o.site(site.Code), Capacity: site.Capacity}
	rows := []occupancyRow{whole}
	for _, a := range site.Areas {
		rows = append(rows, occupancyRow{Name: a.Name, Open: o.area(site.Code, a.Name), Capacity: a.Capacity})
	}
	for _, r := range o.rows {
		if r.Site == site.Code && r.Area != "" && !site.HasArea(r.Area) {
			rows = append(rows, occupancyRow{Name: r.Area, Open: r.Open})
		}
	}
	for i := range rows {
		rows[i].Full = rows[i].Capacity > 0 && rows[i].Open >= rows[i].Capacity
	}
	return rows
}
