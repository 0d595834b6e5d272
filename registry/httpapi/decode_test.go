package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cityhall/registry/registry"
)

var registrationKeys = map[string]bool{
	"site": true, "area": true, "given_name": true, "family_name": true, "street": true, "house_number": true,
	"postcode": true, "city": true, "phone": true, "email": true, "host": true, "appointment": true, "check_in": true,
}

// FuzzDecodeRegistration checks that the strict decoder never panics and
// that whatever it accepts is one JSON object of known, unique keys with
// control-free strings, which encoding/json decodes to the same value.
func FuzzDecodeRegistration(f *testing.F) {
	for _, seed := range []string{
		`{"site":"rathaus","given_name":"Max","family_name":"Muster","street":"Markt","house_number":"1","postcode":"59494","city":"Soest","phone":"+49 2921 1234"}`,
		`{"site":"rathaus","check_in":"2025-03-04T10:15:00+01:00"}`,
		`{"check_in":null}`, `{}`, `[]`, `null`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `{"site":"a","site":"b"}`,
		`{"Site":"x"}`, `{"site":"a"} {}`, "{\"site\":\"\xff\"}", `{"site":"\u0000"}`, `{"\u0073ite":"x"}`,
		`{"site":1e999}`, `{"check_in":"2025-13-01T00:00:00Z"}`, `{"site":"x",}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got registry.Registration
		if err := decodeStrict(body, &got); err != nil {
			if registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted invalid input %q", body)
		}
		keys := topLevelKeys(t, body)
		for k, n := range keys {
			if n != 1 || !registrationKeys[k] {
				t.Fatalf("accepted key %q %d times in %q", k, n, body)
			}
		}
		var want registry.Registration
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json refuses accepted %q: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v, encoding/json %+v", got, want)
		}
		for _, s := range []string{got.Site, got.Area, got.GivenName, got.FamilyName, got.Street, got.HouseNumber,
			got.Postcode, got.City, got.Phone, got.Email, got.Host, got.Appointment} {
			if strings.IndexFunc(s, unicode.IsControl) >= 0 {
				t.Fatalf("accepted control character in %q", s)
			}
		}
	})
}

// topLevelKeys counts the keys of the object in body, independently of
// decodeStrict.
func topLevelKeys(t *testing.T, body []byte) map[string]int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("accepted %q, which is not an object", body)
	}
	keys := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys[tok.(string)]++
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestDecodeStrictPaths(t *testing.T) {
	tests := []struct{ body, field string }{
		{`{"site":"a","site":"b"}`, "site"},
		{`{"area":{"x":{"y":1,"y":2}}}`, "area/x/y"},
		{`{"area":[0,[1,{"k":1,"k":2}]]}`, "area/1/1/k"},
		{`{"area":{"a/b":1,"a/b":2}}`, "area/a~1b"},
		{`{"area":{"a~b":1,"a~b":2}}`, "area/a~0b"},
		{`{"unknown/key":1}`, "unknown~1key"},
		{`{"area":"x","nope":{"a":1,"a":2}}`, "nope/a"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var r registry.Registration
			err := decodeStrict([]byte(tt.body), &r)
			if got := registry.ErrorField(err); got != tt.field {
				t.Errorf("field = %q (%v), want %q", got, err, tt.field)
			}
		})
	}
}
