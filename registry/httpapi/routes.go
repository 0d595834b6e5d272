package httpapi

import (
	"net/http"

	"github.com/cityhall/registry/registry"
)

// routes returns every route of the API behind the common middleware. The
// route patterns double as the "route" label of metrics and the access log.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Intake: reception desks and kiosks.
	mux.Handle("POST /v1/visits", s.requireRole(registry.RoleIntake, http.HandlerFunc(s.handleRegister)))
	// Checkout: whoever holds the visit's checkout token.
	mux.HandleFunc("POST /v1/visits/{id}/checkout", s.handleCheckOut)

	// The visitors' own check-in form (QR code on the entrance poster).
	mux.HandleFunc("GET /checkin/{site}", s.handleCheckinForm)
	mux.HandleFunc("POST /checkin/{site}", s.handleCheckin)
	mux.HandleFunc("POST /checkin/{site}/checkout", s.handleCheckinCheckout)
	mux.HandleFunc("GET /static/checkin.css", s.handleCheckinCSS)

	// Trace requests: health offices, each seeing only its own.
	mux.Handle("POST /v1/trace-requests", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleCreateTrace)))
	mux.Handle("GET /v1/trace-requests/{id}", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleGetTrace)))
	mux.Handle("GET /v1/trace-requests/{id}/export", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleExportTrace)))

	// Operators.
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET /metrics", s.handleMetrics)

	return s.observe(s.recoverPanics(securityHeaders(problemErrors(mux))))
}
