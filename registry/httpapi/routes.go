package httpapi

import (
	"net/http"

	"github.com/cityhall/registry/registry"
)

// routes returns every route of the API behind the common middleware. The
// route patterns double as the "route" label of metrics and the access log.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.Handler) {
		mux.Handle(pattern, deadline(s.cfg.RequestTimeout, s.apiTimeout, h))
	}
	page := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, deadline(s.cfg.RequestTimeout, s.pageTimeout, h))
	}

	// Intake: reception desks and kiosks.
	api("POST /v1/visits", s.requireRole(registry.RoleIntake, http.HandlerFunc(s.handleRegister)))
	// Checkout: whoever holds the visit's checkout token.
	api("POST /v1/visits/{id}/checkout", http.HandlerFunc(s.handleCheckOut))

	// The visitors' own check-in form (QR code on the entrance poster).
	page("GET /checkin/{site}", s.handleCheckinForm)
	page("POST /checkin/{site}", s.handleCheckin)
	page("POST /checkin/{site}/checkout", s.handleCheckinCheckout)
	mux.HandleFunc("GET /static/checkin.css", s.handleCheckinCSS)

	// Trace requests: health offices, each seeing only its own. The export
	// streams a bundle that may be large and has its own write deadline.
	api("POST /v1/trace-requests", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleCreateTrace)))
	api("GET /v1/trace-requests/{id}", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleGetTrace)))
	mux.Handle("GET /v1/trace-requests/{id}/export", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleExportTrace)))

	// Operators.
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.Handle("GET /readyz", deadline(readyTimeout, s.readyTimedOut, http.HandlerFunc(s.handleReadyz)))
	mux.HandleFunc("GET /metrics", s.handleMetrics)

	return s.observe(s.recoverPanics(securityHeaders(problemErrors(mux))))
}

// apiTimeout answers an API request that ran out of time.
func (s *Server) apiTimeout(w http.ResponseWriter, r *http.Request) { s.fail(w, r, errTimedOut) }

// pageTimeout answers a page request that ran out of time.
func (s *Server) pageTimeout(w http.ResponseWriter, r *http.Request) {
	s.metrics.countError(registry.EUNAVAILABLE)
	s.cfg.Logger.Warn("service unavailable: answered 503 with Retry-After", "route", routeOf(r), "error", errTimedOut)
	w.Header().Set("Retry-After", retryAfter)
	s.renderMessage(w, r, http.StatusServiceUnavailable, preferredLang(r), "title_error", "msg_unavailable", "")
}

// readyTimedOut answers /readyz when its checks hang (a stopped database).
func (s *Server) readyTimedOut(w http.ResponseWriter, r *http.Request) {
	s.cfg.Logger.Warn("service unavailable: answered 503 with Retry-After", "route", routeOf(r), "error", errTimedOut)
	writeProblem(w, http.StatusServiceUnavailable, "Not ready: the database check did not answer in time.", nil)
}
