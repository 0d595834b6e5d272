package export

import (
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// TestIndexRole: each row of an index scope says why it is there and how
// long it was together with the index case.
func TestIndexRole(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	out := func(m int) *time.Time { o := at(m); return &o }
	req := &registry.TraceRequest{From: at(-120), To: at(120), Index: []string{"K7QD2M"}, IndexVisits: []string{"i"},
		IndexStays: []registry.IndexStay{{ID: "i", Site: "rathaus", Area: "Saal 1", Party: "i", CheckIn: at(0), CheckOut: out(60)}}}
	tests := []struct {
		name      string
		v         registry.Visit
		wholeSite string
		role      string
		minutes   int
	}{
		{"the index visit", registry.Visit{ID: "i", Site: "rathaus", Area: "Saal 1", Party: "i", CheckIn: at(0), CheckOut: out(60)}, "", RoleIndex, 60},
		{"its companion", registry.Visit{ID: "c", Site: "rathaus", Area: "Foyer", Party: "i", CheckIn: at(0), CheckOut: out(45)}, "", RoleCompanion, 45},
		{"a contact of 10 minutes", registry.Visit{ID: "k", Site: "rathaus", Area: "Saal 1", Party: "k", CheckIn: at(50), CheckOut: out(80)}, "", RoleContact, 10},
		{"an open contact", registry.Visit{ID: "o", Site: "rathaus", Area: "Saal 1", Party: "o", CheckIn: at(30)}, "", RoleContact, 30},
		{"another area", registry.Visit{ID: "f", Site: "rathaus", Area: "Foyer", Party: "f", CheckIn: at(0), CheckOut: out(60)}, "", RoleContact, 0},
		{"another area, whole site", registry.Visit{ID: "f", Site: "rathaus", Area: "Foyer", Party: "f", CheckIn: at(0), CheckOut: out(60)}, "Lüftung", RoleContact, 60},
	}
	for _, tt := range tests {
		r := *req
		r.WholeSite = tt.wholeSite
		role, minutes := indexRole(&tt.v, &r, 12*time.Hour)
		if role != tt.role || minutes != tt.minutes {
			t.Errorf("%s: %s, %d minutes; want %s, %d", tt.name, role, minutes, tt.role, tt.minutes)
		}
	}
}
