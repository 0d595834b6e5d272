package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

// groupBody is a registration with companions, as a client sends it.
type groupBody struct {
	registry.Registration
	Companions []intake.Companion `json:"companions"`
}

// groupCreated is the body of a 201 for a group.
type groupCreated struct {
	created
	Companions []struct {
		ID            string `json:"id"`
		CheckoutToken string `json:"checkout_token"`
	} `json:"companions"`
}

// newFamily is a registrant and two companions: the first shares the
// household's address and phone, the second has a phone and email of
// their own.
func newFamily(tag string) groupBody {
	return groupBody{
		Registration: *registryWithTag(tag),
		Companions: []intake.Companion{
			{GivenName: "Jörg" + tag, FamilyName: "Müller" + tag},
			{GivenName: "Änne" + tag, FamilyName: "Schmidt" + tag, Phone: "+49 170 5550123", Email: "a." + tag + "@example.org"},
		},
	}
}

func (g groupBody) json(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (r *response) groupCreated(t *testing.T) groupCreated {
	t.Helper()
	var c groupCreated
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return c
}

// registerFamily registers a family over HTTP and checks that every
// person's visit opens to that person, with the household's shared fields
// filled in and bound to its own row.
func registerFamily(t *testing.T, s *testServer, tag, idemKey string) (groupBody, groupCreated) {
	t.Helper()
	fam := newFamily(tag)
	r := s.register(t, fam.json(t), idemKey)
	wantStatus(t, r, 201)
	got := r.groupCreated(t)
	if len(got.Companions) != len(fam.Companions) {
		t.Fatalf("answer has %d companions, want %d", len(got.Companions), len(fam.Companions))
	}
	checkStored(t, s, sent{reg: fam.Registration, answer: got.created})
	for i, c := range fam.Companions {
		reg := fam.Registration
		reg.GivenName, reg.FamilyName, reg.Email = c.GivenName, c.FamilyName, c.Email
		if c.Phone != "" {
			reg.Phone = c.Phone
		}
		ans := created{ID: got.Companions[i].ID, CheckoutToken: got.Companions[i].CheckoutToken, CheckIn: got.CheckIn}
		checkStored(t, s, sent{reg: reg, answer: ans})
	}
	return fam, got
}

func TestRegisterGroupSQLite(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	_, fam := registerFamily(t, s, "Fm1", "family-1")
	if n := countVisits(t, s); n != 3 {
		t.Fatalf("stored visits = %d, want 3", n)
	}
	t.Run("companion checks out with its own token", func(t *testing.T) {
		c := fam.Companions[1]
		r := s.do(t, request{method: "POST", path: "/v1/visits/" + c.ID + "/checkout", header: hdr("Authorization", "Bearer "+fam.CheckoutToken)})
		wantStatus(t, r, 401)
		r = s.do(t, request{method: "POST", path: "/v1/visits/" + c.ID + "/checkout", header: hdr("Authorization", "Bearer "+c.CheckoutToken)})
		wantStatus(t, r, 204)
		for _, id := range []string{fam.ID, fam.Companions[0].ID, c.ID} {
			v, _, err := s.Open(t, id)
			if got, want := v.CheckOut != nil, id == c.ID; err != nil || got != want {
				t.Errorf("visit %s checked out = %v (%v), want %v", id, got, err, want)
			}
		}
	})
	t.Run("replay", func(t *testing.T) {
		body := newFamily("Fm1").json(t)
		r := s.register(t, body, "family-1")
		wantStatus(t, r, 200)
		if got := r.groupCreated(t); fmt.Sprint(got) != fmt.Sprint(fam) {
			t.Errorf("replay = %+v, want %+v", got, fam)
		}
		bigger := newFamily("Fm1")
		bigger.Companions = append(bigger.Companions, intake.Companion{GivenName: "Extra", FamilyName: "Person"})
		r = s.register(t, bigger.json(t), "family-1")
		wantStatus(t, r, 409)
		if n := countVisits(t, s); n != 3 {
			t.Errorf("stored visits = %d, want 3", n)
		}
	})
}

func TestRegisterGroupRefusesSQLite(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	valid := newFamily("Ref").json(t)
	tests := []struct {
		name, body, field string
	}{
		{"companion without given name", strings.Replace(valid, `"given_name":"JörgRef"`, `"given_name":"  "`, 1), "companions/0/given_name"},
		{"companion with a bad phone", strings.Replace(valid, `"phone":"+49 170 5550123"`, `"phone":"ring twice"`, 1), "companions/1/phone"},
		{"unknown companion field", strings.Replace(valid, `"given_name":"ÄnneRef"`, `"given_name":"ÄnneRef","nickname":"x"`, 1), "companions/1/nickname"},
		{"case-folded companion field", strings.Replace(valid, `"given_name":"JörgRef"`, `"Given_Name":"JörgRef"`, 1), "companions/0/Given_Name"},
		{"duplicate companion field", strings.Replace(valid, `"given_name":"JörgRef"`, `"given_name":"JörgRef","given_name":"X"`, 1), "companions/0/given_name"},
		{"companion of the wrong type", strings.Replace(valid, `"given_name":"JörgRef"`, `"given_name":7`, 1), "companions/0/given_name"},
		{"companion is null", strings.Replace(valid, `"companions":[`, `"companions":[null,`, 1), "companions/0"},
		{"companion is a string", strings.Replace(valid, `"companions":[`, `"companions":["x",`, 1), "companions/0"},
		{"companions is an object", withMember(t, `"companions":{"given_name":"A","family_name":"B"}`), "companions"},
		{"companions is null", withMember(t, `"companions":null`), "companions"},
		{"control character", strings.Replace(valid, `"given_name":"JörgRef"`, `"given_name":"J\u0007"`, 1), "companions/0/given_name"},
		{"ten companions", tenCompanions(t), "companions"},
		// Refused at the tenth element, before any work on the rest.
		{"5,000 empty companions", withMember(t, `"companions":[`+strings.Repeat(`{},`, 4999)+`{}]`), "companions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.register(t, tt.body, "")
			wantStatus(t, r, 400)
			p := r.problem(t)
			if p.Field != tt.field || len(p.Errors) != 1 || p.Errors[0].Pointer != "#/"+tt.field {
				t.Errorf("problem names field %q, errors %+v; want %q", p.Field, p.Errors, tt.field)
			}
			for _, secret := range []string{"ring twice", "JörgRef"} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("problem %s echoes %q", r.body, secret)
				}
			}
		})
	}
	if n := countVisits(t, s); n != 0 {
		t.Errorf("stored visits = %d, want 0", n)
	}
}

// withMember is a valid registration with one more member.
func withMember(t *testing.T, member string) string {
	js := regJSON(t, registryWithTag("Mem"))
	return js[:len(js)-1] + "," + member + "}"
}

func tenCompanions(t *testing.T) string {
	fam := newFamily("Ten")
	for len(fam.Companions) < intake.MaxCompanions+1 {
		fam.Companions = append(fam.Companions, intake.Companion{GivenName: "Kid", FamilyName: "Ten"})
	}
	return fam.json(t)
}

// TestLargestGroupFitsBodyLimit registers ten people whose every field has
// its maximal length: the default body limit holds them.
func TestLargestGroupFitsBodyLimit(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	long := func(n int) string { return strings.Repeat("x", n) }
	email := long(254-len("@example.org")) + "@example.org"
	phone := "+49 " + strings.Repeat("1 ", 18) + strings.Repeat("-", 40-4-36)
	s.PutSite(t, &registry.Site{Code: long(64), Name: long(120)})
	reg := registry.Registration{Site: long(64), Area: long(64), GivenName: long(100), FamilyName: long(100),
		Street: long(120), HouseNumber: long(20), Postcode: long(12), City: long(100), Phone: phone,
		Email: email, Host: long(120)}
	body := groupBody{Registration: reg}
	for range intake.MaxCompanions {
		body.Companions = append(body.Companions, intake.Companion{GivenName: long(100), FamilyName: long(100),
			Street: long(120), HouseNumber: long(20), Postcode: long(12), City: long(100), Phone: phone, Email: email})
	}
	js := body.json(t)
	t.Logf("largest group: %d bytes of %d", len(js), httpapi.DefaultMaxBodyBytes)
	if len(js) > httpapi.DefaultMaxBodyBytes {
		t.Fatalf("largest group is %d bytes, more than the limit %d", len(js), httpapi.DefaultMaxBodyBytes)
	}
	r := s.register(t, js, "")
	wantStatus(t, r, 201)
	if got := r.groupCreated(t); len(got.Companions) != intake.MaxCompanions {
		t.Errorf("answer has %d companions, want %d", len(got.Companions), intake.MaxCompanions)
	}
}

func TestRegisterGroupPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	s := newServer(t, store, serverOptions{})
	fam, got := registerFamily(t, s, "Pg1", "family-pg")
	r := s.register(t, fam.json(t), "family-pg")
	wantStatus(t, r, 200)
	if again := r.groupCreated(t); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("replay = %+v, want %+v", again, got)
	}
	c := got.Companions[0]
	r = s.do(t, request{method: "POST", path: "/v1/visits/" + c.ID + "/checkout", header: hdr("Authorization", "Bearer "+c.CheckoutToken)})
	wantStatus(t, r, 204)
	if n := countVisits(t, s); n != 3 {
		t.Errorf("stored visits = %d, want 3", n)
	}
}
