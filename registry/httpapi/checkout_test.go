package httpapi_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func TestCheckOut(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	a := s.register(t, validBody, "").created(t)
	b := s.register(t, validBody, "").created(t)
	s.Clock.Add(time.Hour)
	checkout := func(id, token, ctype, body string) *response {
		t.Helper()
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		return s.do(t, request{method: "POST", path: "/v1/visits/" + id + "/checkout", header: h, body: body})
	}

	// Wrong token and unknown id get the same answer, byte for byte.
	refusals := map[string]*response{
		"no token":       checkout(a.ID, "", "", ""),
		"other's token":  checkout(a.ID, b.CheckoutToken, "", ""),
		"intake token":   checkout(a.ID, s.intake, "", ""),
		"unknown id":     checkout(registry.NewID(), a.CheckoutToken, "", ""),
		"malformed id":   checkout("not-an-id", a.CheckoutToken, "", ""),
		"upper-cased id": checkout(string(bytes.ToUpper([]byte(a.ID))), a.CheckoutToken, "", ""),
	}
	var want []byte
	for name, r := range refusals {
		if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 with a challenge", name, r.status, r.header.Get("WWW-Authenticate"))
		}
		if want == nil {
			want = r.body
		} else if !bytes.Equal(r.body, want) {
			t.Errorf("%s: body %q, want the same as every refusal: %q", name, r.body, want)
		}
	}

	bad := []struct {
		name, ctype, body string
		status            int
		field             string
	}{
		{"body without content type", "", `{"check_out":"2025-03-04T10:00:00Z"}`, 415, ""},
		{"text body", "text/plain", `now`, 415, ""},
		{"unknown field", "application/json", `{"checkout":"2025-03-04T10:00:00Z"}`, 400, "checkout"},
		{"not a time", "application/json", `{"check_out":"10:00"}`, 400, "check_out"},
		{"duplicate key", "application/json", `{"check_out":"2025-03-04T10:00:00Z","check_out":"2025-03-04T10:01:00Z"}`, 400, "check_out"},
		{"in the future", "application/json", `{"check_out":"2025-03-04T12:00:00Z"}`, 400, "check_out"},
		{"before check-in", "application/json", `{"check_out":"2025-03-04T09:00:00Z"}`, 400, "check_out"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := checkout(a.ID, a.CheckoutToken, tt.ctype, tt.body)
			wantStatus(t, r, tt.status)
			if p := r.problem(t); p.Field != tt.field {
				t.Errorf("field = %q, want %q", p.Field, tt.field)
			}
			if v, _, _ := s.Open(t, a.ID); v.CheckOut != nil {
				t.Fatalf("visit checked out at %v by a refused request", v.CheckOut)
			}
		})
	}

	t.Run("with time", func(t *testing.T) {
		r := checkout(a.ID, a.CheckoutToken, "application/json; charset=utf-8", `{"check_out":"2025-03-04T11:00:00+01:00"}`)
		wantStatus(t, r, 204)
		v, _, _ := s.Open(t, a.ID)
		if want := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC); v.CheckOut == nil || !v.CheckOut.Equal(want) {
			t.Errorf("check-out = %v, want %v", v.CheckOut, want)
		}
	})
	t.Run("twice", func(t *testing.T) {
		wantStatus(t, checkout(a.ID, a.CheckoutToken, "", ""), 409)
	})
	t.Run("now, empty body", func(t *testing.T) {
		wantStatus(t, checkout(b.ID, b.CheckoutToken, "", ""), 204)
		v, _, _ := s.Open(t, b.ID)
		if v.CheckOut == nil || !v.CheckOut.Equal(s.Clock.Now()) {
			t.Errorf("check-out = %v, want %v", v.CheckOut, s.Clock.Now())
		}
	})
}
