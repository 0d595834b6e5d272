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
		mux.Handle(pattern, deadline(s.cfg.RequestTimeout, s.cfg.MaxBodyBytes, s.apiTimeout, s.fail, h))
	}
	cop := s.crossOrigin()
	page := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, deadline(s.cfg.RequestTimeout, s.cfg.MaxBodyBytes, s.pageTimeout, s.pageBodyError, cop.Handler(h)))
	}
	desk := func(pattern string, h func(http.ResponseWriter, *http.Request, *deskRequest)) {
		page(pattern, s.desk(h))
	}

	// Intake: reception desks and kiosks.
	api("POST /v1/visits", s.requireRole(registry.RoleIntake, http.HandlerFunc(s.handleRegister)))
	// Checkout: whoever holds the visit's checkout token.
	api("POST /v1/visits/{id}/checkout", http.HandlerFunc(s.handleCheckOut))

	// The visitors' own pages (QR code on the entrance poster, check-out
	// link on the phone and on visitor slips).
	page("GET /checkin/{site}", s.handleCheckinForm)
	page("POST /checkin/{site}", s.handleCheckin)
	page("POST /checkin/{site}/checkout", s.handleCheckinCheckout)
	page("GET /checkin/{site}/out", s.handleCheckinOut)
	page("GET /checkin/{site}/appointment", s.handleAppointmentCheck)
	mux.HandleFunc("GET /static/{file}", s.handleStatic)
	mux.HandleFunc("GET /favicon.ico", s.handleFavicon)
	page("GET /{$}", s.handleHome)

	// The reception desk (staff accounts).
	page("GET /desk/login", s.handleDeskLoginPage)
	page("POST /desk/login", s.handleDeskLogin)
	page("POST /desk/logout", s.handleDeskLogout)
	mux.Handle("GET /desk", http.RedirectHandler("/desk/", http.StatusMovedPermanently))
	desk("GET /desk/{$}", s.handleDeskHome)
	desk("GET /desk/password", s.handleDeskPassword)
	desk("POST /desk/password", s.handleDeskPassword)
	desk("GET /desk/{site}/{$}", s.handleDeskRegisterPage)
	desk("POST /desk/{site}/register", s.handleDeskRegister)
	desk("GET /desk/{site}/paper", s.handleDeskRegisterPage)
	desk("POST /desk/{site}/paper", s.handleDeskRegister)
	desk("GET /desk/{site}/present", s.handleDeskPresent)
	desk("GET /desk/{site}/close", s.handleDeskClose)
	desk("GET /desk/{site}/day", s.handleDeskDay)
	desk("GET /desk/{site}/host", s.handleHostPage)
	desk("GET /desk/{site}/book", s.handleBookPage)
	desk("POST /desk/{site}/book", s.handleBook)
	desk("POST /desk/{site}/cancel", s.handleDeskCancel)
	desk("POST /desk/{site}/checkout", s.handleDeskCheckout)
	desk("GET /desk/{site}/poster.pdf", s.handleDeskPoster)

	// The data-protection officer's pages (a DPO account).
	mux.Handle("GET /dpo", http.RedirectHandler("/dpo/", http.StatusMovedPermanently))
	desk("GET /dpo/{$}", s.dpoOnly(s.handleDPOHome))
	desk("GET /dpo/requests/{id}", s.dpoOnly(s.handleDPORequestPage))
	desk("GET /dpo/requests/{id}/statement", s.dpoOnly(s.handleDPOStatementDownload))
	desk("POST /dpo/requests/{id}/decision", s.dpoOnly(s.handleDPOSignatureUpload))

	// Trace requests: health offices, each seeing only its own. The export
	// streams a bundle that may be large and has its own write deadline.
	api("POST /v1/trace-requests", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleCreateTrace)))
	api("GET /v1/trace-requests", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleListTraces)))
	api("GET /v1/trace-requests/{id}", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleGetTrace)))
	api("POST /v1/trace-requests/{id}/withdraw", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleWithdrawTrace)))
	api("GET /v1/sites", s.requireRole(registry.RoleHealthOffice, http.HandlerFunc(s.handleListSites)))
	mux.Handle("GET /v1/trace-requests/{id}/export", s.guard(registry.RoleHealthOffice, http.HandlerFunc(s.handleExportTrace), s.auditCredentialDenied))

	// The data-protection officer: every request, its statement and
	// scope; decisions signed elsewhere.
	api("GET /v1/dpo/requests", s.requireRole(registry.RoleDPO, http.HandlerFunc(s.handleDPORequests)))
	api("GET /v1/dpo/requests/{id}", s.requireRole(registry.RoleDPO, http.HandlerFunc(s.handleDPORequest)))
	api("GET /v1/dpo/requests/{id}/statement", s.requireRole(registry.RoleDPO, http.HandlerFunc(s.handleDPOStatement)))
	api("POST /v1/dpo/requests/{id}/decision", s.requireRole(registry.RoleDPO, http.HandlerFunc(s.handleDPODecision)))

	// Appointments: the city's booking or calendar system.
	api("POST /v1/appointments", s.requireRole(registry.RoleScheduler, http.HandlerFunc(s.handleCreateAppointment)))
	api("GET /v1/appointments", s.requireRole(registry.RoleScheduler, http.HandlerFunc(s.handleListAppointments)))
	api("POST /v1/appointments/{site}/{day}/{code}/cancel", s.requireRole(registry.RoleScheduler, http.HandlerFunc(s.handleCancelAppointment)))

	// Operators.
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.Handle("GET /readyz", deadline(readyTimeout, 0, s.readyTimedOut, nil, http.HandlerFunc(s.handleReadyz)))
	if s.cfg.MetricsAddr == "" {
		mux.HandleFunc("GET /metrics", s.handleMetrics)
	}

	return s.observe(s.limitInFlight(s.recoverPanics(securityHeaders(problemErrors(mux)))))
}

// apiTimeout answers an API request that ran out of time; a registration
// says that it may have been stored.
func (s *Server) apiTimeout(w http.ResponseWriter, r *http.Request) {
	if routeOf(r) == "POST /v1/visits" {
		s.fail(w, r, mayBeStored(errTimedOut))
		return
	}
	s.fail(w, r, errTimedOut)
}

// pageTimeout answers a page request that ran out of time.
func (s *Server) pageTimeout(w http.ResponseWriter, r *http.Request) {
	s.metrics.countError(registry.EUNAVAILABLE)
	s.cfg.Logger.Warn("service unavailable: answered 503 with Retry-After", "route", routeOf(r), "error", errTimedOut)
	w.Header().Set("Retry-After", retryAfter)
	s.renderMessage(w, r, http.StatusServiceUnavailable, preferredLang(r), "title_error", "msg_unavailable", nil)
}

// pageBodyError answers a page request whose body could not be read.
func (s *Server) pageBodyError(w http.ResponseWriter, r *http.Request, err error) {
	s.renderError(w, r, preferredLang(r), err, nil, nil)
}

// readyTimedOut answers /readyz when its checks hang (a stopped database).
func (s *Server) readyTimedOut(w http.ResponseWriter, r *http.Request) {
	s.cfg.Logger.Warn("service unavailable: answered 503 with Retry-After", "route", routeOf(r), "error", errTimedOut)
	writeProblem(w, http.StatusServiceUnavailable, "Not ready: the database check did not answer in time.", nil)
}
