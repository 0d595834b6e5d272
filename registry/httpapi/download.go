package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

// exportWriteTimeout replaces the server's write timeout for an export,
// which runs the export and then streams a bundle that may be large.
const exportWriteTimeout = 10 * time.Minute

var errIntakeOnly = &statusError{http.StatusServiceUnavailable, "intake_only",
	"This node serves intake only; exports are served by the node that holds the key store."}

var errExportHead = &statusError{http.StatusMethodNotAllowed, "method_not_allowed",
	"An export is consumed when it is sent: use GET, not HEAD."}

// handleExportTrace serves GET /v1/trace-requests/{id}/export: the sealed
// bundle of an approved request filed by this token, once. The export and
// its audit entry commit before the first byte is sent; the bundle is sealed
// to the health office, so a download broken off afterwards needs a new
// request. Refusals, each recorded as an AuditExportDenied event: 404 (the
// same as GET for unknown, malformed or another token's ids), 403 (not
// approved, or the approval expired), 409 (already exported). HEAD is
// refused with 405: it would consume the export without sending it.
func (s *Server) handleExportTrace(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.fail(w, r, errExportHead)
		return
	}
	if s.cfg.IntakeOnly {
		s.fail(w, r, errIntakeOnly)
		return
	}
	// Best effort: a writer that cannot set deadlines keeps the server's.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	tok := tokenFrom(r.Context())
	job := &export.Job{
		Store: s.cfg.Store, Audit: s.cfg.Store, Actor: tok.Actor(), RequestID: r.PathValue("id"), Owner: tok,
		Sealing: export.Sealing{Keys: s.cfg.Keys, Recipients: s.cfg.Recipients, Instance: s.cfg.Instance,
			MaxStay: s.cfg.MaxStay, Now: s.cfg.Now(), SiteNames: s.siteNames(r.Context())},
		Scratch: s.cfg.Scratch, Anchors: s.cfg.Anchors,
	}
	f, req, err := job.Run(r.Context())
	var anchorErr *export.AnchorError
	if errors.As(err, &anchorErr) {
		// Recorded and ready: send it; the next export checks against
		// the older anchor.
		s.cfg.Logger.Error("export recorded, but the audit anchor was not noted", "route", routeOf(r), "error", err)
		err = nil
	}
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		err = errTraceNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer func() {
		if err := f.Remove(); err != nil {
			s.cfg.Logger.Error("remove export scratch file", "route", routeOf(r), "error", err)
		}
	}()
	if err := s.sendBundle(w, f, req); err != nil {
		s.fail(w, r, err)
	}
}

// sendBundle writes the response headers and streams the bundle out of
// its scratch file. Once the headers are out, a failure can only be logged
// (and breaks the connection).
func (s *Server) sendBundle(w http.ResponseWriter, f *crypto.Scratch, req *registry.TraceRequest) error {
	sum, err := hex.DecodeString(req.ExportDigest)
	if err != nil || len(sum) != 32 {
		return fmt.Errorf("export digest of %s is not hex SHA-256", req.ID)
	}
	body, err := f.Open()
	if err != nil {
		return fmt.Errorf("open export scratch file: %w", err)
	}
	b64 := base64.StdEncoding.EncodeToString(sum)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+bundleName(req)+`"`)
	h.Set("Content-Length", strconv.FormatInt(f.Size(), 10))
	h.Set("Repr-Digest", reprDigest(req.ExportDigest)) // RFC 9530
	h.Set("Digest", "sha-256="+b64)                    // RFC 3230, for older clients
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, body); err != nil {
		s.cfg.Logger.Warn("export bundle not fully sent; it is recorded as exported",
			"route", "GET /v1/trace-requests/{id}/export", "request", req.ID, "error", err)
	}
	return nil
}

// bundleName is the download's file name: the case reference reduced to
// ASCII letters, digits, '.', '_' and '-' (at most 64), then the request
// id, for example "GA-53_2025-117-<id>.registry-export.age".
func bundleName(req *registry.TraceRequest) string {
	var b strings.Builder
	for _, c := range req.CaseRef {
		if b.Len() >= 64 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		case c == '.' && b.Len() > 0:
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	ref := strings.Trim(b.String(), "_.")
	if ref == "" {
		ref = "trace"
	}
	return ref + "-" + req.ID + ".registry-export.age"
}

// auditCredentialDenied records an export refused for its credential (no
// token, an unknown or revoked one, or one of another role) as an
// AuditExportDenied event: actor "anonymous" without a valid token,
// subject the request id when it is well-formed. It returns an error only
// when the event cannot be recorded.
func (s *Server) auditCredentialDenied(r *http.Request, tok *registry.Token, err error) error {
	actor := registry.ActorAnonymous
	if tok != nil {
		actor = tok.Actor()
	}
	subject := r.PathValue("id")
	if !registry.ValidID(subject) {
		subject = ""
	}
	ev, aerr := registry.NewAuditEvent(s.cfg.Now(), actor, subject, registry.ExportDenied{Reason: registry.ErrorCode(err)})
	if aerr == nil {
		aerr = s.cfg.Store.AppendAudit(r.Context(), ev)
	}
	if aerr != nil {
		return fmt.Errorf("record denied export (%s): %w", registry.ErrorCode(err), aerr)
	}
	return nil
}

// siteNames maps the configured sites' codes to their display names, for
// the bundle's header (best effort: without them the codes show).
func (s *Server) siteNames(ctx context.Context) map[string]string {
	sites, err := s.cfg.Store.Sites(ctx)
	if err != nil {
		s.cfg.Logger.Warn("export: site names unavailable", "err", err)
		return nil
	}
	return registry.SiteNames(sites)
}
