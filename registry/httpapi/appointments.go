package httpapi

import (
	"net/http"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

// appointmentView is an appointment as the booking system sees it.
type appointmentView struct {
	ID     string                     `json:"id"`
	Site   string                     `json:"site"`
	Day    registry.Day               `json:"day"`
	Code   string                     `json:"code"`
	Host   string                     `json:"host"`
	Area   string                     `json:"area,omitempty"`
	Start  time.Time                  `json:"start"`
	End    time.Time                  `json:"end"`
	Status registry.AppointmentStatus `json:"status"`
	// UID is the booking system's id, in the answer to the booking that
	// sent it (the registry stores only its keyed hash).
	UID string `json:"uid,omitempty"`
	// HasNote says that a sealed note for the health office is stored
	// (its text is never shown: the server cannot read it).
	HasNote bool `json:"has_note,omitempty"`
}

func (s *Server) newAppointmentView(a *registry.Appointment) appointmentView {
	return appointmentView{ID: a.ID, Site: a.Site, Day: a.Day, Code: a.Code, Host: a.Host, Area: a.Area,
		Start: a.Start.UTC(), End: a.End.UTC(), Status: a.StatusAt(s.cfg.Now()), HasNote: a.HasNote}
}

// schedulerSite returns the site a scheduler token may book for, or an
// error: EFORBIDDEN for another site than the token's, EINVALID naming
// "site" for an unknown one.
func (s *Server) schedulerSite(r *http.Request, code string) (*registry.Site, error) {
	tok := tokenFrom(r.Context())
	if tok.Site != "" && tok.Site != code {
		return nil, &registry.Error{Code: registry.EFORBIDDEN, Field: "site", Message: "This token may not book for this site."}
	}
	site, err := s.cfg.Store.Site(r.Context(), code)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, registry.FieldError("site", "There is no site of this code.")
	}
	return site, err
}

// handleCreateAppointment serves POST /v1/appointments (scheduler token):
// 201 with the appointment and its code; 200 with the stored one when the
// uid was booked before (a retry is safe); 400 naming every field at
// fault.
func (s *Server) handleCreateAppointment(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in registry.AppointmentInput
	if err := strictjson.Decode(body, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	site, err := s.schedulerSite(r, in.Site)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := registry.NewAppointment(&in, site, "api", s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, created, err := s.cfg.Booking.Book(r.Context(), tokenFrom(r.Context()).Actor(), a, in.Note)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	v := s.newAppointmentView(stored)
	v.UID = in.UID
	writeJSON(w, status, v)
}

// handleListAppointments serves GET /v1/appointments?site=…&date=…: a
// site's appointments of a day (default today, German time).
func (s *Server) handleListAppointments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	site, err := s.schedulerSite(r, q.Get("site"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	day := registry.LocalDay(s.cfg.Now())
	if d := q.Get("date"); d != "" {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			s.fail(w, r, registry.FieldError("date", "date must be YYYY-MM-DD."))
			return
		}
		day = registry.Day(d)
	}
	list, err := s.cfg.Store.Appointments(r.Context(), site.Code, day)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Appointments []appointmentView `json:"appointments"`
	}{[]appointmentView{}}
	for _, a := range list {
		out.Appointments = append(out.Appointments, s.newAppointmentView(a))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCancelAppointment serves POST /v1/appointments/{site}/{day}/{code}/cancel:
// 200 with the cancelled appointment, 409 once the visitor arrived, 404
// for an unknown code.
func (s *Server) handleCancelAppointment(w http.ResponseWriter, r *http.Request) {
	if err := s.decodeOptional(w, r, &noFields{}); err != nil {
		s.fail(w, r, err)
		return
	}
	site, err := s.schedulerSite(r, r.PathValue("site"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := registry.NormalizeCode(r.PathValue("code"))
	if _, perr := time.Parse(time.DateOnly, r.PathValue("day")); code == "" || perr != nil {
		s.fail(w, r, registry.Errorf(registry.ENOTFOUND, "No such appointment."))
		return
	}
	a, err := s.cfg.Store.FindAppointment(r.Context(), site.Code, registry.Day(r.PathValue("day")), code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if a, err = s.cfg.Store.CancelAppointment(r.Context(), tokenFrom(r.Context()).Actor(), a.ID, s.cfg.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.newAppointmentView(a))
}
