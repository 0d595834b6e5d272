package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/cityhall/registry/registry/strictjson"
)

// statusError is a refusal that has an HTTP status but no registry error
// code, such as 413 and 415.
type statusError struct {
	status int
	code   string // label for the errors metric
	msg    string
}

func (e *statusError) Error() string { return e.msg }

var (
	errMediaType = &statusError{http.StatusUnsupportedMediaType, "unsupported_media_type",
		"The body must be JSON: Content-Type: application/json (charset=utf-8 allowed)."}
	errIdempotencyKey = &statusError{http.StatusBadRequest, "invalid",
		"The Idempotency-Key header must be 1 to 255 printable ASCII characters."}
)

// readBody reads a JSON request body of at most MaxBodyBytes. With optional
// set, a request without Content-Type and without body is fine (nil body).
// It refuses other media types (415) and larger bodies (413).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" || !optional {
		if !isJSON(ct) {
			return nil, errMediaType
		}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, s.errTooLarge()
	}
	body, err := s.readAll(w, r)
	if err != nil {
		return nil, err
	}
	if ct == "" && len(body) > 0 {
		return nil, errMediaType
	}
	return body, nil
}

// decodeOptional reads an optional JSON body into v (strictjson's rules):
// no body at all, or one of the right media type that decodes into v.
// A wrong Content-Type is 415; a body that does not decode (also
// anything but {} when v has no fields) is 400. Routes that change state
// call it before anything changes, so that garbage never acts.
func (s *Server) decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r, true)
	if err != nil || len(body) == 0 {
		return err
	}
	return strictjson.Decode(body, v)
}

// noFields is the body of routes that take none: {} or nothing.
type noFields struct{}

var (
	errBodyTimeout = &statusError{http.StatusRequestTimeout, "body_timeout",
		"The request body did not arrive in time; send it again."}
	errBodyBroken = &statusError{http.StatusBadRequest, "body_incomplete",
		"The request body ended early or could not be read; send it again."}
)

// readAll reads the body of at most MaxBodyBytes. A body larger than that
// is 413, one that stalls past the server's read timeout 408, one that
// ends before its announced length or breaks off 400. None of these is an
// internal error, and the network error behind them, which names the
// client's address, is never logged.
func (s *Server) readAll(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return body, nil
	case errors.As(err, &tooLarge):
		return nil, s.errTooLarge()
	}
	return nil, bodyError(err)
}

// bodyError is the answer to a body that could not be read: 408 when it
// stalled past the read timeout, else 400.
func bodyError(err error) error {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return errBodyTimeout
	}
	return errBodyBroken
}

func (s *Server) errTooLarge() error {
	return &statusError{http.StatusRequestEntityTooLarge, "too_large",
		fmt.Sprintf("The body is larger than %d bytes.", s.cfg.MaxBodyBytes)}
}

// isJSON reports whether a Content-Type is application/json, with no
// parameter but charset=utf-8.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// idempotencyKey returns the Idempotency-Key header: "" when absent, an
// error unless it is one header of 1 to 255 printable ASCII characters.
func idempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values("Idempotency-Key")
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1 || len(values[0]) == 0 || len(values[0]) > 255:
		return "", errIdempotencyKey
	}
	for _, c := range []byte(values[0]) {
		if c < 0x20 || c > 0x7e {
			return "", errIdempotencyKey
		}
	}
	return values[0], nil
}
