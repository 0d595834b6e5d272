package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/strictjson"
)

// registerRequest is the body of a registration: one visitor and the
// companions registering with them (see intake.Companion).
type registerRequest struct {
	registry.Registration
	Companions []intake.Companion `json:"companions" strictjson:"max=9"` // intake.MaxCompanions
}

// visitResponse answers a registration. The checkout tokens are shown to
// the caller only; they are derived, never stored.
type visitResponse struct {
	ID            string              `json:"id"`
	CheckoutToken string              `json:"checkout_token"`
	CheckIn       time.Time           `json:"check_in"`
	Companions    []companionResponse `json:"companions,omitempty"`
}

// companionResponse is a companion's visit, in the order of the request.
type companionResponse struct {
	ID            string `json:"id"`
	CheckoutToken string `json:"checkout_token"`
}

func newVisitResponse(res *intake.Result) visitResponse {
	out := visitResponse{ID: res.Visit.ID, CheckoutToken: res.CheckoutToken, CheckIn: res.Visit.CheckIn.UTC()}
	for _, c := range res.Companions {
		out.Companions = append(out.Companions, companionResponse{ID: c.Visit.ID, CheckoutToken: c.CheckoutToken})
	}
	return out
}

// handleRegister serves POST /v1/visits: 201 once the visit and those of
// its companions are committed (together: all or nothing);
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
	var in registerRequest
	if err := strictjson.Decode(body, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.cfg.Intake.RegisterGroup(r.Context(), tokenFrom(r.Context()), &in.Registration, in.Companions, key, body)
	if err != nil {
		s.fail(w, r, mayBeStored(err))
		return
	}
	status := http.StatusCreated
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, newVisitResponse(res))
}

// mayBeStored adds to a 503 of a registration that its outcome is open: a
// database that failed or hung during the commit may have stored it, and
// only a retry with the same Idempotency-Key is safe.
func mayBeStored(err error) error {
	if registry.ErrorCode(err) != registry.EUNAVAILABLE {
		return err
	}
	return registry.Errorf(registry.EUNAVAILABLE, "%s; the registration may have been stored: retry only with the same Idempotency-Key, never a new one, or the visitor is registered twice.",
		strings.TrimSuffix(registry.ErrorMessage(err), "."))
}

// checkoutRequest is the optional body of a checkout.
type checkoutRequest struct {
	CheckOut *time.Time `json:"check_out"`
}

// handleCheckOut serves POST /v1/visits/{id}/checkout with the visit's
// checkout token as bearer token: 204, or 401 alike for an unknown id and a
// wrong token.
func (s *Server) handleCheckOut(w http.ResponseWriter, r *http.Request) {
	var in checkoutRequest
	if err := s.decodeOptional(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
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
