package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

var now = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func validRegistration() *registry.Registration {
	return &registry.Registration{
		Site: "rathaus", GivenName: "Erika", FamilyName: "Mustermann", Street: "Heidestraße",
		HouseNumber: "17", Postcode: "51147", City: "Köln", Phone: "+49 221 1234567",
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(r *registry.Registration)
		wantField string // "" for valid
	}{
		{"valid", func(r *registry.Registration) {}, ""},
		{"all optional fields", func(r *registry.Registration) {
			r.Area, r.Email, r.Host, r.Appointment = "Bürgerbüro", "erika@example.org", "Frau Amt", "T-1"
		}, ""},
		{"missing site", func(r *registry.Registration) { r.Site = "" }, "site"},
		{"uppercase site", func(r *registry.Registration) { r.Site = "Rathaus" }, "site"},
		{"site with leading dash", func(r *registry.Registration) { r.Site = "-x" }, "site"},
		{"blank given name", func(r *registry.Registration) { r.GivenName = "   " }, "given_name"},
		{"long family name", func(r *registry.Registration) { r.FamilyName = strings.Repeat("ä", 101) }, "family_name"},
		{"100 runes are fine", func(r *registry.Registration) { r.FamilyName = strings.Repeat("ä", 100) }, ""},
		{"control character", func(r *registry.Registration) { r.City = "Köln\x07" }, "city"},
		{"newline inside", func(r *registry.Registration) { r.Street = "Heide\nstraße" }, "street"},
		{"invalid UTF-8", func(r *registry.Registration) { r.Host = "\xff" }, "host"},
		{"phone with letters", func(r *registry.Registration) { r.Phone = "0221 CALLME" }, "phone"},
		{"phone too short", func(r *registry.Registration) { r.Phone = "1234" }, "phone"},
		{"phone plus inside", func(r *registry.Registration) { r.Phone = "0221+1234567" }, "phone"},
		{"phone with separators", func(r *registry.Registration) { r.Phone = "(0221) 123-45/67" }, ""},
		{"postcode with symbol", func(r *registry.Registration) { r.Postcode = "511$7" }, "postcode"},
		{"foreign postcode", func(r *registry.Registration) { r.Postcode = "SW1A 1AA" }, ""},
		{"email without at", func(r *registry.Registration) { r.Email = "erika.example.org" }, "email"},
		{"email without domain dot", func(r *registry.Registration) { r.Email = "erika@localhost" }, "email"},
		{"formula name is data, not an error", func(r *registry.Registration) { r.GivenName = "=HYPERLINK(\"x\")" }, ""},
		{"check-out a minute after check-in", func(r *registry.Registration) {
			in, out := now.Add(-time.Hour), now.Add(-59*time.Minute)
			r.CheckIn, r.CheckOut = &in, &out
		}, ""},
		{"check-out at check-in", func(r *registry.Registration) {
			in := now.Add(-time.Hour)
			r.CheckIn, r.CheckOut = &in, &in
		}, "check_out"},
		{"check-out a microsecond before check-in", func(r *registry.Registration) {
			in, out := now.Add(-time.Hour), now.Add(-time.Hour-time.Microsecond)
			r.CheckIn, r.CheckOut = &in, &out
		}, "check_out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRegistration()
			tt.edit(r)
			err := r.Normalize(now)
			if got := registry.ErrorField(err); got != tt.wantField || (tt.wantField == "") != (err == nil) {
				t.Fatalf("Normalize() = %v; want field %q", err, tt.wantField)
			}
			if err != nil && registry.ErrorCode(err) != registry.EINVALID {
				t.Errorf("code = %s, want %s", registry.ErrorCode(err), registry.EINVALID)
			}
		})
	}
}

func TestNormalizeNeverEchoesValues(t *testing.T) {
	r := validRegistration()
	r.Phone = "SECRET-CANARY"
	err := r.Normalize(now)
	if err == nil || strings.Contains(err.Error(), "SECRET-CANARY") {
		t.Fatalf("Normalize() = %v; want an error without the value", err)
	}
}

func TestNormalizeCheckIn(t *testing.T) {
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	tests := []struct {
		name    string
		checkIn *time.Time
		want    time.Time
		wantErr bool
	}{
		{"default is now", nil, now, false},
		{"paper form from yesterday", at(-24 * time.Hour), now.Add(-24 * time.Hour), false},
		{"exactly the oldest allowed", at(-registry.MaxCheckInAge), now.Add(-registry.MaxCheckInAge), false},
		{"a second too old", at(-registry.MaxCheckInAge - time.Second), time.Time{}, true},
		{"clock skew allowed", at(registry.MaxCheckInSkew), now.Add(registry.MaxCheckInSkew), false},
		{"a second too far ahead", at(registry.MaxCheckInSkew + time.Second), time.Time{}, true},
		{"other zone becomes UTC", func() *time.Time {
			t := now.In(time.FixedZone("CET", 3600)).Add(-time.Hour)
			return &t
		}(), now.Add(-time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRegistration()
			r.CheckIn = tt.checkIn
			err := r.Normalize(now)
			if tt.wantErr {
				if registry.ErrorField(err) != "check_in" {
					t.Fatalf("Normalize() = %v; want a check_in error", err)
				}
				return
			}
			if err != nil || !r.CheckIn.Equal(tt.want) || r.CheckIn.Location() != time.UTC {
				t.Fatalf("Normalize() = %v, check_in %v; want %v UTC", err, r.CheckIn, tt.want)
			}
		})
	}
}

func TestContactBinding(t *testing.T) {
	r := validRegistration()
	if err := r.Normalize(now); err != nil {
		t.Fatal(err)
	}
	id := registry.NewID()
	c := r.Contact(id)
	if err := c.CheckBinding(id, "rathaus", now); err != nil {
		t.Fatalf("CheckBinding(own row) = %v", err)
	}
	for name, check := range map[string]func() error{
		"other visit":    func() error { return c.CheckBinding(registry.NewID(), "rathaus", now) },
		"other site":     func() error { return c.CheckBinding(id, "bauamt", now) },
		"other check-in": func() error { return c.CheckBinding(id, "rathaus", now.Add(time.Second)) },
	} {
		if err := check(); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("CheckBinding(%s) = %v; want EINVALID", name, err)
		}
	}
	if s := c.String(); strings.Contains(s, "Erika") {
		t.Errorf("Contact.String() = %q leaks the name", s)
	}
}
