package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// securityHeaders marks every response as not to be cached or sniffed:
// responses of /v1 touch personal data, and the others gain nothing from
// caching.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// AccessLog is which requests get an access log line.
type AccessLog uint8

const (
	// AccessLogSampled logs every request answered with an error (status
	// 400 and above) and one in AccessLogSampleEvery of the others, each
	// with sampled=AccessLogSampleEvery. The default: a proxy in front
	// keeps an access log of its own, and /metrics counts every request.
	AccessLogSampled AccessLog = iota
	// AccessLogOn logs every request.
	AccessLogOn
	// AccessLogOff logs no request (errors of the server itself are
	// still logged where they happen).
	AccessLogOff
)

// AccessLogSampleEvery is the sampling rate of AccessLogSampled.
const AccessLogSampleEvery = 100

// String returns "sampled", "on" or "off", the names Set accepts.
func (a AccessLog) String() string {
	switch a {
	case AccessLogOn:
		return "on"
	case AccessLogOff:
		return "off"
	}
	return "sampled"
}

// Set parses "sampled", "on" or "off" (a pflag.Value).
func (a *AccessLog) Set(s string) error {
	switch s {
	case "sampled":
		*a = AccessLogSampled
	case "on":
		*a = AccessLogOn
	case "off":
		*a = AccessLogOff
	default:
		return registry.Errorf(registry.EINVALID, "Unknown access log mode %q: want sampled (the default), on or off.", s)
	}
	return nil
}

// Type names the values for a flag's help.
func (a *AccessLog) Type() string { return "sampled|on|off" }

// observe counts each request by route and status and writes the access
// log line the AccessLog mode asks for: method, route pattern, status,
// duration. Never the raw URL, query, headers or bodies.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		route := routeOf(r)
		s.metrics.countRequest(route, status, time.Since(start))
		sampled := false
		switch {
		case s.cfg.AccessLog == AccessLogOff:
			return
		case s.cfg.AccessLog == AccessLogSampled && status < 400:
			if s.sampled.Add(1)%AccessLogSampleEvery != 1 {
				return
			}
			sampled = true
		}
		attrs := []slog.Attr{slog.String("method", methodOf(r)), slog.String("route", route),
			slog.Int("status", status), slog.Duration("duration", time.Since(start))}
		if sampled {
			attrs = append(attrs, slog.Int("sampled", AccessLogSampleEvery))
		}
		level := slog.LevelInfo
		if quietRoutes[route] && status < 400 {
			level = slog.LevelDebug
		}
		s.cfg.Logger.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// limitInFlight answers 429 to a client that has Limits.PerClientConns
// requests in flight already (behind a trusted proxy: per forwarded
// address), so that one client cannot hold every handler.
func (s *Server) limitInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := s.limits.clientKey(r)
		if !s.limits.inFlight.take(key) {
			s.metrics.countLimited("client_requests")
			w.Header().Set("Retry-After", "1")
			writeProblem(w, http.StatusTooManyRequests, "Too many requests from your address at once; wait for the answers before sending more.", nil)
			return
		}
		defer s.limits.inFlight.release(key)
		next.ServeHTTP(w, r)
	})
}

// quietRoutes are polled by machines; their successes are logged at debug
// level only.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// recoverPanics answers a panicking handler with 500 and logs the panic's
// type and stack (no values: they might hold request data).
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			} else if v == http.ErrAbortHandler {
				panic(v)
			}
			s.cfg.Logger.Error("panic serving request", "route", routeOf(r), "panic_type", fmt.Sprintf("%T", v), "stack", string(debug.Stack()))
			writeProblem(w, http.StatusInternalServerError, "Internal error.", nil)
		}()
		next.ServeHTTP(w, r)
	})
}

// routeOf returns the pattern of the route that served r, or "unmatched".
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}

// methodOf returns r's method when it is a standard one, else "OTHER", so
// that clients cannot write arbitrary text into logs and metric labels.
func methodOf(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return r.Method
	}
	return "OTHER"
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type tokenKey struct{}

// tokenFrom returns the token requireRole put into the context.
func tokenFrom(ctx context.Context) *registry.Token {
	t, _ := ctx.Value(tokenKey{}).(*registry.Token)
	return t
}

// requireRole lets through only requests with a valid, unrevoked API token
// of the role: 401 (with WWW-Authenticate) without one, 403 for another
// role. The token is then in the request context (tokenFrom).
func (s *Server) requireRole(role registry.Role, next http.Handler) http.Handler {
	return s.guard(role, next, nil)
}

// guard is requireRole; denied, when not nil, is called for a missing,
// wrong or revoked credential and for a token of another role (not for
// clients over the limit of failures, which are answered 429 and counted
// in the metrics only, so that a flood cannot fill the audit log).
func (s *Server) guard(role registry.Role, next http.Handler, denied func(r *http.Request, tok *registry.Token, err error) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, now := s.limits.clientKey(r), s.cfg.Now()
		if s.limits.authFailures.exhausted(client, now) {
			s.metrics.countLimited("auth_failures")
			_, wait := s.limits.authFailures.allow(client, now)
			w.Header().Set("Retry-After", retrySeconds(wait))
			s.fail(w, r, errTooManyFailures)
			return
		}
		tok, err := s.authenticate(r)
		if registry.ErrorCode(err) == registry.EUNAUTHORIZED {
			s.limits.authFailures.allow(client, now)
		}
		if err == nil && tok.Role != role {
			err = registry.Errorf(registry.EFORBIDDEN, "This token's role may not use this route.")
		}
		if err != nil && denied != nil {
			if aerr := denied(r, tok, err); aerr != nil {
				err = aerr
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
	})
}

var errTooManyFailures = &statusError{http.StatusTooManyRequests, "too_many_failures",
	"Too many requests with a missing or wrong credential from this address; wait and retry with a valid token."}

var errNoToken = registry.Errorf(registry.EUNAUTHORIZED, "A valid API token is required: Authorization: Bearer rgt_….")

// authenticate returns the token whose secret r presents, from the token
// cache (a revocation takes effect within tokenTTL). Malformed, unknown,
// revoked and expired tokens get the same EUNAUTHORIZED answer.
func (s *Server) authenticate(r *http.Request) (*registry.Token, error) {
	secret, ok := bearer(r)
	if !ok || !registry.LooksLikeToken(secret) {
		return nil, errNoToken
	}
	tok, err := s.tokens.lookup(r.Context(), registry.HashToken(secret))
	switch {
	case registry.ErrorCode(err) == registry.ENOTFOUND:
		return nil, errNoToken
	case err != nil:
		return nil, fmt.Errorf("find token: %w", err)
	case !tok.Usable(s.cfg.Now()):
		return nil, errNoToken
	}
	return tok, nil
}

// bearer returns the credentials of the one Authorization header with the
// Bearer scheme.
func bearer(r *http.Request) (string, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, cred, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}
