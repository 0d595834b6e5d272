package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cityhall/registry/registry"
)

// readyTimeout bounds the readiness checks, so that a hung database makes
// /readyz fail instead of hang.
const readyTimeout = 3 * time.Second

// handleHealthz serves GET /healthz: 200 "ok" while the process runs.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// handleReadyz serves GET /readyz: 200 "ready (primary node …)" or "ready
// (intake-only node …)" when the database answers and can write (after a
// write failed for a full or failing disk: until one succeeds), with a second line
// "degraded: …" when the last purge was refused, failed or suspicious,
// today's epoch key exists and the intake service runs; else 503 with a
// problem naming the failed check (never a secret or a connection string).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if check, err := s.ready(ctx); err != nil {
		s.cfg.Logger.Warn("not ready", "check", check, "error", err)
		detail := fmt.Sprintf("Not ready: the %s check failed.", check)
		if registry.ErrorCode(err) == registry.EUNAVAILABLE {
			detail += " " + registry.ErrorMessage(err)
		}
		writeProblem(w, http.StatusServiceUnavailable, detail, nil)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.IntakeOnly {
		io.WriteString(w, "ready (intake-only node: no key store, no purge, no exports)\n")
		return
	}
	io.WriteString(w, "ready (primary node: key store, purge, exports)\n")
	if s.cfg.PurgeStatus != nil {
		if st := s.cfg.PurgeStatus(); st.Degraded() {
			fmt.Fprintf(w, "degraded: %s\n", st.Problem)
		}
	}
}

// ready runs the readiness checks in order and returns the name of the
// first failing one with its error.
func (s *Server) ready(ctx context.Context) (check string, err error) {
	if err := s.cfg.Store.Ping(ctx); err != nil {
		return "database", fmt.Errorf("ping: %w", err)
	}
	if w, ok := s.cfg.Store.(interface{ WriteHealth(context.Context) error }); ok {
		if err := w.WriteHealth(ctx); err != nil {
			return "storage", err
		}
	}
	day := registry.DayOf(s.cfg.Now())
	k, err := s.cfg.Store.EpochKey(ctx, day)
	switch {
	case registry.ErrorCode(err) == registry.ENOTFOUND || err == nil && k.DestroyedAt != nil:
		return "epoch_key", registry.Errorf(registry.EUNAVAILABLE, "No epoch key for today (%s).", day)
	case err != nil:
		return "epoch_key", fmt.Errorf("read epoch key: %w", err)
	}
	if !s.cfg.Intake.Running() {
		return "intake", registry.Errorf(registry.EUNAVAILABLE, "The intake service is not running.")
	}
	return "", nil
}
