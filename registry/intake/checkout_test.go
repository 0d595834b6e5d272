package intake_test

import (
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
)

func TestCheckOut(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	register := func(tag string) (id, token string) {
		t.Helper()
		res, err := env.Service.Register(t.Context(), tok, intaketest.Registration(tag), "", nil)
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		return res.Visit.ID, res.CheckoutToken
	}
	a, aToken := register("a")
	b, bToken := register("b")
	env.Clock.Add(90 * time.Minute)
	now := env.Clock.Now()

	refusals := []struct {
		name, id, token string
		at              *time.Time
		code, field     string
	}{
		{"another visit's token", a, bToken, nil, registry.EUNAUTHORIZED, ""},
		{"empty token", a, "", nil, registry.EUNAUTHORIZED, ""},
		{"garbage token", a, "rgc_garbage", nil, registry.EUNAUTHORIZED, ""},
		{"unknown id", registry.NewID(), aToken, nil, registry.EUNAUTHORIZED, ""},
		{"malformed id", "../" + a, aToken, nil, registry.EUNAUTHORIZED, ""},
		{"in the future", a, aToken, new(now.Add(time.Hour)), registry.EINVALID, "check_out"},
		{"before check-in", a, aToken, new(now.Add(-2 * time.Hour)), registry.EINVALID, "check_out"},
	}
	var unauthorized string
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			err := env.Service.CheckOut(t.Context(), tt.id, tt.token, tt.at)
			wantCode(t, err, tt.code, tt.field)
			if tt.code != registry.EUNAUTHORIZED {
				return
			}
			if unauthorized == "" {
				unauthorized = err.Error()
			} else if err.Error() != unauthorized {
				t.Errorf("error = %q, want the same answer as every refusal: %q", err, unauthorized)
			}
		})
	}

	t.Run("now", func(t *testing.T) {
		if err := env.Service.CheckOut(t.Context(), a, aToken, nil); err != nil {
			t.Fatalf("CheckOut: %v", err)
		}
		v, _, _ := env.Open(t, a)
		if v.CheckOut == nil || !v.CheckOut.Equal(now) || v.CheckoutAuto {
			t.Errorf("check-out = %v auto %v, want %v", v.CheckOut, v.CheckoutAuto, now)
		}
	})
	t.Run("twice", func(t *testing.T) {
		err := env.Service.CheckOut(t.Context(), a, aToken, nil)
		wantCode(t, err, registry.ECONFLICT, "")
	})
	t.Run("given time", func(t *testing.T) {
		at := now.Add(-30 * time.Minute)
		if err := env.Service.CheckOut(t.Context(), b, bToken, &at); err != nil {
			t.Fatalf("CheckOut: %v", err)
		}
		v, _, _ := env.Open(t, b)
		if v.CheckOut == nil || !v.CheckOut.Equal(at) {
			t.Errorf("check-out = %v, want %v", v.CheckOut, at)
		}
	})
}
