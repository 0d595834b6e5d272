package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/cityhall/registry/registry"
)

// visitResponse answers a registration. The checkout token is shown to the
// caller only; it is derived, never stored.
type visitResponse struct {
	ID            string    `json:"id"`
	CheckoutToken string    `json:"checkout_token"`
	CheckIn       time.Time `json:"check_in"`
}

// handleRegister serves POST /v1/visits: 201 once the visit is committed;
// 200 with Idempotent-Replayed: true for a retry with the same
// Idempotency-Key and body; 409 for the same key with another body.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var reg registry.Registration
	if err := decodeStrict(body, &reg); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.cfg.Intake.Register(r.Context(), tokenFrom(r.Context()), &reg, key, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, visitResponse{ID: res.Visit.ID, CheckoutToken: res.CheckoutToken, CheckIn: res.Visit.CheckIn.UTC()})
}

// checkoutRequest is the optional body of a checkout.
type checkoutRequest struct {
	CheckOut *time.Time `json:"check_out"`
}

// handleCheckOut serves POST /v1/visits/{id}/checkout with the visit's
// checkout token as bearer token: 204, or 401 alike for an unknown id and a
// wrong token.
func (s *Server) handleCheckOut(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in checkoutRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &in); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	token, _ := bearer(r) // "" fails verification like any wrong token
	if err := s.cfg.Intake.CheckOut(r.Context(), r.PathValue("id"), token, in.CheckOut); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeJSON writes v as the JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
