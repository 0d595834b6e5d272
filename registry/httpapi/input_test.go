package httpapi_test

import (
	"strings"
	"testing"
)

// validBody is a registration every refusal below differs from in one
// respect.
const validBody = `{"site":"rathaus","area":"Saal 1","given_name":"Max","family_name":"Muster","street":"Markt",` +
	`"house_number":"1","postcode":"59494","city":"Soest","phone":"+49 2921 1234","email":"max@example.org"}`

// edit replaces old in validBody by new, failing when old is missing.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(validBody, old) {
		t.Fatalf("%q not in the valid body", old)
	}
	return strings.Replace(validBody, old, new, 1)
}

func TestBadInput(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	const json = "application/json"
	tests := []struct {
		name    string
		ctype   string // "-" for none
		idem    []string
		body    string
		chunked bool
		status  int
		field   string
	}{
		{name: "no content type", ctype: "-", body: validBody, status: 415},
		{name: "text/plain", ctype: "text/plain", body: validBody, status: 415},
		{name: "form", ctype: "application/x-www-form-urlencoded", body: "site=rathaus", status: 415},
		{name: "latin-1", ctype: "application/json; charset=iso-8859-1", body: validBody, status: 415},
		{name: "other parameter", ctype: "application/json; boundary=x", body: validBody, status: 415},
		{name: "json suffix type", ctype: "application/problem+json", body: validBody, status: 415},
		{name: "malformed content type", ctype: "application/json; charset", body: validBody, status: 415},
		{name: "too large", body: edit(t, `"area":"Saal 1"`, `"area":"`+strings.Repeat("x", 16<<10)+`"`), status: 413},
		{name: "too large, chunked", body: edit(t, `"area":"Saal 1"`, `"area":"`+strings.Repeat("x", 16<<10)+`"`), chunked: true, status: 413},
		{name: "empty", body: "", status: 400},
		{name: "invalid UTF-8", body: edit(t, `"Max"`, "\"Ma\xffx\""), status: 400},
		{name: "overlong UTF-8", body: edit(t, `"Max"`, "\"Ma\xc0\xafx\""), status: 400},
		{name: "array", body: "[" + validBody + "]", status: 400},
		{name: "string", body: `"rathaus"`, status: 400},
		{name: "null", body: `null`, status: 400},
		{name: "truncated", body: validBody[:40], status: 400},
		{name: "malformed", body: edit(t, `"city":"Soest"`, `"city":Soest`), status: 400, field: "city"},
		{name: "trailing object", body: validBody + `{}`, status: 400},
		{name: "trailing garbage", body: validBody + `x`, status: 400},
		{name: "two objects", body: validBody + "\n" + validBody, status: 400},
		{name: "duplicate key", body: edit(t, `"phone"`, `"phone":"+49 1","phone"`), status: 400, field: "phone"},
		{name: "duplicate key, same value", body: edit(t, `"city":"Soest"`, `"city":"Soest","city":"Soest"`), status: 400, field: "city"},
		{name: "duplicate key nested", body: edit(t, `"area":"Saal 1"`, `"area":{"a":1,"a":2}`), status: 400, field: "area"},
		{name: "duplicate key in array", body: edit(t, `"area":"Saal 1"`, `"area":[{"a":1},{"b":1,"b":2}]`), status: 400, field: "area"},
		{name: "case variant of a key", body: edit(t, `"phone"`, `"Phone":"+49 1","phone"`), status: 400, field: "Phone"},
		{name: "unknown field", body: edit(t, `"city"`, `"ssn":"123","city"`), status: 400, field: "ssn"},
		{name: "escaped key is still a duplicate", body: edit(t, `"city"`, `"\u0063ity":"X","city"`), status: 400, field: "city"},
		{name: "number for string", body: edit(t, `"+49 2921 1234"`, `492921234`), status: 400, field: "phone"},
		{name: "null for string", body: edit(t, `"Max"`, `null`), status: 400, field: "given_name"},
		{name: "array for string", body: edit(t, `"Max"`, `["Max"]`), status: 400, field: "given_name"},
		{name: "object for string", body: edit(t, `"Max"`, `{"v":"Max"}`), status: 400, field: "given_name"},
		{name: "bool for string", body: edit(t, `"Max"`, `true`), status: 400, field: "given_name"},
		{name: "check_in not a time", body: edit(t, `"city"`, `"check_in":"yesterday","city"`), status: 400, field: "check_in"},
		{name: "check_in a number", body: edit(t, `"city"`, `"check_in":1741080600,"city"`), status: 400, field: "check_in"},
		{name: "check_in without zone", body: edit(t, `"city"`, `"check_in":"2025-03-04T09:00:00","city"`), status: 400, field: "check_in"},
		{name: "check_in in the future", body: edit(t, `"city"`, `"check_in":"2025-03-04T11:00:00Z","city"`), status: 400, field: "check_in"},
		{name: "NUL", body: edit(t, `"Max"`, `"Ma\u0000x"`), status: 400, field: "given_name"},
		{name: "bell", body: edit(t, `"Max"`, `"Ma\u0007x"`), status: 400, field: "given_name"},
		{name: "escaped newline at the end", body: edit(t, `"Max"`, `"Max\n"`), status: 400, field: "given_name"},
		{name: "DEL", body: edit(t, `"Muster"`, "\"Mus\x7fter\""), status: 400, field: "family_name"},
		{name: "C1 control", body: edit(t, `"Markt"`, "\"Ma\u0085rkt\""), status: 400, field: "street"},
		{name: "raw tab", body: edit(t, `"Markt"`, "\"Ma\trkt\""), status: 400, field: "street"},
		{name: "control character in unknown field", body: edit(t, `"city"`, `"x\u0000":"1","city"`), status: 400},
		{name: "lone surrogate", body: edit(t, `"Max"`, `"Ma\ud800x"`), status: 400, field: "given_name"},
		{name: "zero-width space", body: edit(t, `"Max"`, `"Ma\u200bx"`), status: 400, field: "given_name"},
		{name: "right-to-left override", body: edit(t, `"Markt"`, `"\u202eMarkt"`), status: 400, field: "street"},
		{name: "line separator", body: edit(t, `"Soest"`, `"So\u2028est"`), status: 400, field: "city"},
		{name: "only invisible", body: edit(t, `"Muster"`, `"\u00a0\u3164 "`), status: 400, field: "family_name"},
		{name: "deep nesting in a field", body: edit(t, `"Max"`, strings.Repeat("[", 8000)), status: 400, field: "given_name"},
		{name: "deep nesting in companions", body: edit(t, `"city"`, `"companions":`+strings.Repeat("[", 8000)+`,"city"`), status: 400, field: "companions/0"},
		{name: "missing phone", body: edit(t, `"phone":"+49 2921 1234",`, ``), status: 400, field: "phone"},
		{name: "blank family name", body: edit(t, `"Muster"`, `"   "`), status: 400, field: "family_name"},
		{name: "bad email", body: edit(t, `"max@example.org"`, `"max(at)example.org"`), status: 400, field: "email"},
		{name: "bad site", body: edit(t, `"rathaus"`, `"Rathaus"`), status: 400, field: "site"},
		{name: "family name too long", body: edit(t, `"Muster"`, `"`+strings.Repeat("ü", 101)+`"`), status: 400, field: "family_name"},
		{name: "empty idempotency key", idem: []string{""}, body: validBody, status: 400},
		{name: "long idempotency key", idem: []string{strings.Repeat("k", 256)}, body: validBody, status: 400},
		{name: "idempotency key with tab", idem: []string{"a\tb"}, body: validBody, status: 400},
		{name: "non-ASCII idempotency key", idem: []string{"schlüssel"}, body: validBody, status: 400},
		{name: "two idempotency keys", idem: []string{"a", "b"}, body: validBody, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("Authorization", "Bearer "+s.intake, "Content-Type", json)
			if tt.ctype == "-" {
				h.Del("Content-Type")
			} else if tt.ctype != "" {
				h.Set("Content-Type", tt.ctype)
			}
			for _, k := range tt.idem {
				h.Add("Idempotency-Key", k)
			}
			before := countVisits(t, s)
			r := s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: tt.body, chunked: tt.chunked})
			if r.status != tt.status {
				t.Errorf("status = %d, want %d (body %q)", r.status, tt.status, r.body)
			}
			p := r.problem(t)
			if p.Field != tt.field {
				t.Errorf("field = %q, want %q (detail %q)", p.Field, tt.field, p.Detail)
			}
			if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Pointer != "#/"+tt.field) {
				t.Errorf("errors = %+v, want one with pointer #/%s", p.Errors, tt.field)
			}
			if p.Detail == "" {
				t.Error("problem without detail")
			}
			if n := countVisits(t, s); n != before {
				t.Errorf("stored visits = %d after a refusal, want %d", n, before)
			}
		})
	}
}

func TestGoodInputVariants(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	tests := []struct{ name, ctype, body string }{
		{"charset utf-8", "application/json; charset=utf-8", validBody},
		{"charset UTF-8 quoted", `application/json; charset="UTF-8"`, validBody},
		{"upper-case type", "Application/JSON", validBody},
		{"trailing white space", "application/json", " \n" + validBody + "\r\n\t "},
		{"check_in null", "application/json", edit(t, `"city"`, `"check_in":null,"city"`)},
		{"check_in with offset", "application/json", edit(t, `"city"`, `"check_in":"2025-03-04T10:15:00+01:00","city"`)},
		{"surrounding spaces trimmed", "application/json", edit(t, `"Max"`, `"  Max  "`)},
		{"optional fields absent", "application/json", edit(t, `,"email":"max@example.org"`, ``)},
		{"optional field empty", "application/json", edit(t, `"max@example.org"`, `""`)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("Authorization", "Bearer "+s.intake, "Content-Type", tt.ctype)
			r := s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: tt.body})
			wantStatus(t, r, 201)
			if n := countVisits(t, s); n != int64(i+1) {
				t.Errorf("stored visits = %d, want %d", n, i+1)
			}
		})
	}
}
