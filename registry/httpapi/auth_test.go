package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func TestAuth(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	revoked, revokedTok := s.Token(t, registry.RoleIntake, "")
	if err := s.Store.RevokeToken(t.Context(), registry.ActorSystem, revokedTok.ID, s.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	office, _ := s.Token(t, registry.RoleHealthOffice, "")
	dpo, _ := s.Token(t, registry.RoleDPO, "")
	bound, _ := s.Token(t, registry.RoleIntake, "stadthaus")
	unknown, _ := registry.NewToken(registry.RoleIntake, "", "never stored", s.Clock.Now())
	stadthaus := strings.Replace(validBody, `"rathaus"`, `"stadthaus"`, 1)

	tests := []struct {
		name   string
		auth   []string
		body   string
		status int
		field  string
	}{
		{"no credentials", nil, validBody, 401, ""},
		{"empty header", []string{""}, validBody, 401, ""},
		{"basic auth", []string{"Basic aW50YWtlOnNlY3JldA=="}, validBody, 401, ""},
		{"bearer without token", []string{"Bearer"}, validBody, 401, ""},
		{"malformed token", []string{"Bearer rgt_short"}, validBody, 401, ""},
		{"checkout token", []string{"Bearer rgc_" + strings.Repeat("A", 43)}, validBody, 401, ""},
		{"unknown token", []string{"Bearer " + unknown}, validBody, 401, ""},
		{"revoked token", []string{"Bearer " + revoked}, validBody, 401, ""},
		{"two headers", []string{"Bearer " + s.intake, "Bearer " + s.intake}, validBody, 401, ""},
		{"health-office token", []string{"Bearer " + office}, validBody, 403, ""},
		{"dpo token", []string{"Bearer " + dpo}, validBody, 403, ""},
		{"site-bound token, other site", []string{"Bearer " + bound}, validBody, 403, "site"},
		{"site-bound token, own site", []string{"Bearer " + bound}, stadthaus, 201, ""},
		{"lower-case scheme", []string{"bearer " + s.intake}, validBody, 201, ""},
	}
	stored := int64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("Content-Type", "application/json")
			for _, a := range tt.auth {
				h.Add("Authorization", a)
			}
			r := s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: tt.body})
			wantStatus(t, r, tt.status)
			if tt.status == 201 {
				stored++
			} else if p := r.problem(t); p.Field != tt.field {
				t.Errorf("field = %q, want %q", p.Field, tt.field)
			}
			if got, want := r.header.Get("WWW-Authenticate") != "", tt.status == 401; got != want {
				t.Errorf("WWW-Authenticate = %q, want one: %v", r.header.Get("WWW-Authenticate"), want)
			}
			if n := countVisits(t, s); n != stored {
				t.Errorf("stored visits = %d, want %d", n, stored)
			}
		})
	}
	for _, secret := range []string{s.intake, revoked, office, bound} {
		if strings.Contains(s.logs.String(), secret) || strings.Contains(s.logs.String(), secret[4:]) {
			t.Errorf("log holds a token secret")
		}
	}
}

func TestIdempotentRetry(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	first := s.register(t, validBody, "order-4711")
	wantStatus(t, first, 201)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first answer has Idempotent-Replayed: %q", first.header.Get("Idempotent-Replayed"))
	}
	want := first.created(t)
	s.Clock.Add(3) // a retry arrives later; the answer must not change

	again := s.register(t, validBody, "order-4711")
	wantStatus(t, again, 200)
	if got := again.created(t); got != want {
		t.Errorf("replay answer = %+v, want %+v", got, want)
	}
	if got := again.header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", got)
	}
	other := s.register(t, edit(t, `"Max"`, `"Moritz"`), "order-4711")
	wantStatus(t, other, http.StatusConflict)
	if p := other.problem(t); !strings.Contains(p.Detail, "Idempotency-Key") {
		t.Errorf("detail = %q, want it to name the Idempotency-Key", p.Detail)
	}
	wantStatus(t, s.register(t, validBody, "order-4712"), 201)
	wantStatus(t, s.register(t, validBody, ""), 201)
	if n := countVisits(t, s); n != 3 {
		t.Errorf("stored visits = %d, want 3", n)
	}
}

// TestRevocationTakesEffectWithinASecond: token look-ups are cached, but a
// revoked token stops working within a second.
func TestRevocationTakesEffectWithinASecond(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	secret, tok := s.Token(t, registry.RoleIntake, "")
	h := hdr("Authorization", "Bearer "+secret, "Content-Type", "application/json")
	wantStatus(t, s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: validBody}), 201)
	if err := s.Store.RevokeToken(t.Context(), registry.ActorSystem, tok.ID, s.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	s.Clock.Add(time.Second)
	wantStatus(t, s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: validBody}), 401)
}

// TestTokenExpires: a token created with an expiry works until then and
// is refused like a revoked one from then on; the expiry is stored and
// recorded in the audit log.
func TestTokenExpires(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	secret, tok := registry.NewToken(registry.RoleIntake, "", "Aushilfe", s.Clock.Now())
	exp := s.Clock.Now().Add(time.Hour)
	tok.ExpiresAt = &exp
	if err := s.Store.CreateToken(t.Context(), registry.ActorSystem, tok); err != nil {
		t.Fatal(err)
	}
	register := func() *response {
		h := hdr("Content-Type", "application/json", "Authorization", "Bearer "+secret)
		return s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: validBody})
	}
	wantStatus(t, register(), 201)
	s.Clock.Add(time.Hour)
	wantStatus(t, register(), 401)
	stored, err := s.Store.FindTokenByHash(t.Context(), tok.Hash)
	if err != nil || stored.ExpiresAt == nil || !stored.ExpiresAt.Equal(exp.UTC().Truncate(time.Microsecond)) {
		t.Errorf("stored token = %+v, %v; want the expiry", stored, err)
	}
	if !s.auditWith(t, registry.AuditTokenCreated, `"expires_at":"`) {
		t.Error("the token's audit entry does not record its expiry")
	}
	past := s.Clock.Now().Add(-time.Minute)
	_, late := registry.NewToken(registry.RoleIntake, "", "late", s.Clock.Now())
	late.ExpiresAt = &past
	if err := s.Store.CreateToken(t.Context(), registry.ActorSystem, late); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("a token expiring before its creation: %v, want EINVALID", err)
	}
}
