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

// retryAfter is the Retry-After of a 503: long enough for a restarted
// database or a passing overload, short enough that a desk barely waits.
const retryAfter = "5"

// fail answers err as a problem document. The detail is the error's
// caller-safe message; internal errors are logged (they hold no personal
// data) and answered with a generic message. A refusal for lack of
// resources (503) carries Retry-After and is logged as a warning (the
// logger of `registry serve` collapses repeats to one line a second).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *statusError
	switch {
	case errors.As(err, &se):
		s.metrics.countError(se.code)
		if (se.status == http.StatusTooManyRequests || se.status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeProblem(w, se.status, se.msg, nil)
		return
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		err = errTimedOut
	}
	code := registry.ErrorCode(err)
	status := statusOf(code)
	switch code {
	case registry.EINTERNAL:
		s.cfg.Logger.Error("internal error", "route", routeOf(r), "error", err)
	case registry.EUNAVAILABLE:
		s.cfg.Logger.Warn("service unavailable: answered 503 with Retry-After", "route", routeOf(r), "error", err)
		w.Header().Set("Retry-After", retryAfter)
	case registry.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer`)
	}
	s.metrics.countError(code)
	msg := registry.ErrorMessage(err)
	if code == registry.EINTERNAL {
		msg = "Internal error." // what went wrong inside is the log's, not the caller's
	}
	writeProblem(w, status, msg, registry.ErrorFields(err))
}

// errTimedOut answers a request whose deadline passed while it waited for
// the database or the committer: it was not stored, or it was stored and a
// retry with the same Idempotency-Key says so.
var errTimedOut = registry.Errorf(registry.EUNAVAILABLE, "The request could not be completed in time.")

// writeProblem writes a problem document with the status's standard title;
// fields are the input fields at fault, the first also in "field".
func writeProblem(w http.ResponseWriter, status int, detail string, fields []registry.FieldIssue) {
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
	for _, f := range fields {
		p.Errors = append(p.Errors, fieldProblem{Pointer: "#/" + f.Field, Detail: f.Message})
	}
	if len(fields) > 0 {
		p.Field = fields[0].Field
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
		writeProblem(w, rec.status, "", nil)
	})
}

// statusRecorder keeps the status a handler sets and drops its body.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) { r.status = status }

func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
