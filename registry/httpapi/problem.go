package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cityhall/registry/registry"
)

// problem is an RFC 9457 problem document. Field and Errors name the input
// field at fault, as a name and as a JSON pointer into the request body.
type problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Field  string         `json:"field,omitempty"`
	Errors []fieldProblem `json:"errors,omitempty"`
}

type fieldProblem struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// statusOf maps a registry error code to its HTTP status. It is the only
// place that does.
func statusOf(code string) int {
	switch code {
	case registry.EINVALID:
		return http.StatusBadRequest
	case registry.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case registry.EFORBIDDEN:
		return http.StatusForbidden
	case registry.ENOTFOUND:
		return http.StatusNotFound
	case registry.ECONFLICT:
		return http.StatusConflict
	case registry.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// fail answers err as a problem document. The detail is the error's
// caller-safe message; internal errors are logged (they hold no personal
// data) and answered with a generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.metrics.countError("cancelled")
		writeProblem(w, http.StatusServiceUnavailable, "The request ended before it was answered; retry it with the same Idempotency-Key.", "")
		return
	}
	var se *statusError
	if errors.As(err, &se) {
		s.metrics.countError(se.code)
		writeProblem(w, se.status, se.msg, "")
		return
	}
	code := registry.ErrorCode(err)
	status := statusOf(code)
	if code == registry.EINTERNAL {
		s.cfg.Logger.Error("internal error", "route", routeOf(r), "error", err)
	}
	if code == registry.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer`)
	}
	s.metrics.countError(code)
	writeProblem(w, status, registry.ErrorMessage(err), registry.ErrorField(err))
}

// writeProblem writes a problem document with the status's standard title.
func writeProblem(w http.ResponseWriter, status int, detail, field string) {
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Field: field}
	if field != "" {
		p.Errors = []fieldProblem{{Pointer: "#/" + field, Detail: detail}}
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// problemErrors answers requests that match no route (404) or no method of
// a route (405, with the mux's Allow header) with a problem document
// instead of the mux's plain text.
func problemErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusNotFound
		}
		writeProblem(w, rec.status, "", "")
	})
}

// statusRecorder keeps the status a handler sets and drops its body.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) { r.status = status }

func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
