package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

// The data-protection officer's side over HTTPS: a DPO token (API) or a
// DPO staff account (pages) reads every trace request with the statement
// an approver signs and the scope's counts; decisions are signed on the
// approver's own computer (a key file or ssh-agent, a FIDO2 key among
// them), or offline, and only the signature comes to the server, which
// verifies it as it verifies one made on the server host. No signing key
// ever reaches the server.

// DPOApproval is a decision on a request, as the DPO sees it.
type DPOApproval struct {
	Name      string     `json:"name"`
	Key       string     `json:"key"` // the key's id
	Decision  string     `json:"decision"`
	SignedAt  time.Time  `json:"signed_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Withdrawn *time.Time `json:"withdrawn_at,omitempty"`
	Note      string     `json:"note,omitempty"`
}

// DPORequest is a trace request as the DPO sees it: everything it holds
// (the staff contact included), who decided, how many approvals it has
// and needs, and the scope's counts (Preview, on the single request).
type DPORequest struct {
	ID           string                `json:"id"`
	CaseRef      string                `json:"case_ref"`
	Office       string                `json:"office"`
	LegalBasis   string                `json:"legal_basis"`
	Contact      string                `json:"contact"`
	From         time.Time             `json:"from"`
	To           time.Time             `json:"to"`
	Sites        []string              `json:"sites"`
	Areas        []string              `json:"areas"`
	Hosts        []string              `json:"hosts,omitempty"`
	Appointments []string              `json:"appointments,omitempty"`
	Origin       string                `json:"origin"`
	Status       registry.TraceStatus  `json:"status"`
	CreatedAt    time.Time             `json:"created_at"`
	ExpiresAt    *time.Time            `json:"expires_at"`
	ExportedAt   *time.Time            `json:"exported_at"`
	ExportCount  int                   `json:"export_count"`
	ExportDigest string                `json:"export_digest,omitempty"`
	Have         int                   `json:"approvals_have"`
	Need         int                   `json:"approvals_needed"`
	Approvals    []DPOApproval         `json:"approvals"`
	Preview      []registry.ScopeCount `json:"preview,omitempty"`
	Visits       int                   `json:"visits_in_scope"`
	// WindowVisits, for an index scope, counts the visits the whole
	// window at the sites holds: the disclosure the index scope spares.
	WindowVisits int `json:"visits_in_window,omitempty"`
	IndexScope
}

// DPORequests is the list GET /v1/dpo/requests answers.
type DPORequests struct {
	Requests []*DPORequest `json:"requests"`
}

// dpoView builds the DPO's view of r (with its preview when preview).
func (s *Server) dpoView(ctx context.Context, r *registry.TraceRequest, set *registry.ApproverSet, preview bool) (*DPORequest, error) {
	areas := r.Areas
	if areas == nil {
		areas = []string{}
	}
	v := &DPORequest{ID: r.ID, CaseRef: r.CaseRef, Office: r.Office, LegalBasis: r.LegalBasis, Contact: r.Contact, From: r.From.UTC(), To: r.To.UTC(),
		Sites: r.Sites, Areas: areas, Hosts: r.Hosts, Appointments: r.Appointments, Origin: r.Origin(), Status: r.Status, CreatedAt: r.CreatedAt.UTC(),
		ExpiresAt: utc(r.ExpiresAt), ExportedAt: utc(r.ExportedAt), ExportCount: r.ExportCount, ExportDigest: r.ExportDigest, Approvals: []DPOApproval{}}
	v.Have, v.Need = registry.ApprovalCount(r, r.Approvals, set, s.cfg.Now())
	for _, a := range r.Approvals {
		d := DPOApproval{Name: a.Name, Key: a.ApproverID, Decision: a.Decision, SignedAt: a.SignedAt.UTC(), Withdrawn: utc(a.WithdrawnAt), Note: a.Note}
		if a.Decision == registry.DecisionApprove {
			d.ExpiresAt = utc(&a.ExpiresAt)
		}
		v.Approvals = append(v.Approvals, d)
	}
	if preview {
		counts, err := s.cfg.Store.ScopeSummary(ctx, r, s.cfg.MaxStay)
		if err != nil {
			return nil, err
		}
		v.Preview = counts
		v.Visits = registry.CountScope(counts)
		if len(r.Index) > 0 {
			whole, err := s.cfg.Store.ScopeSummary(ctx, r.WindowScope(), s.cfg.MaxStay)
			if err != nil {
				return nil, err
			}
			v.WindowVisits = registry.CountScope(whole)
		}
	}
	v.IndexScope = indexScopeOf(r)
	return v, nil
}

// handleDPORequests serves GET /v1/dpo/requests[?status=…]: every trace
// request, newest first.
func (s *Server) handleDPORequests(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := registry.TraceFilter{Status: registry.TraceStatus(r.URL.Query().Get("status"))}
	reqs, err := s.cfg.Store.TraceRequests(ctx, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	set, err := s.cfg.Store.Approvers(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := DPORequests{Requests: []*DPORequest{}}
	for _, q := range reqs {
		full, err := s.cfg.Store.FindTraceRequest(ctx, q.ID) // with its approvals
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v, err := s.dpoView(ctx, full, set, false)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Requests = append(out.Requests, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDPORequest serves GET /v1/dpo/requests/{id}: one request with its
// scope's counts, recorded in the audit log as a preview by the token.
func (s *Server) handleDPORequest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, set, err := s.dpoRequest(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.dpoView(ctx, req, set, true)
	if err == nil {
		err = s.auditAccess(ctx, tokenFrom(ctx).Actor(), req.ID, registry.Access{What: "request.preview", Rows: v.Visits})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// dpoRequest finds a request (ENOTFOUND also for a malformed id) and the
// approver set.
func (s *Server) dpoRequest(ctx context.Context, id string) (*registry.TraceRequest, *registry.ApproverSet, error) {
	if !registry.ValidID(id) {
		return nil, nil, registry.Errorf(registry.ENOTFOUND, "There is no trace request with this id.")
	}
	req, err := s.cfg.Store.FindTraceRequest(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	set, err := s.cfg.Store.Approvers(ctx)
	return req, set, err
}

// auditAccess records that actor looked at something.
func (s *Server) auditAccess(ctx context.Context, actor registry.Actor, subject string, p registry.Access) error {
	ev, err := registry.NewAuditEvent(s.cfg.Now(), actor, subject, p)
	if err != nil {
		return err
	}
	return s.cfg.Store.AppendAudit(ctx, ev)
}

// maxValidity bounds how long an approval may stay valid.
const maxValidity = 14 * 24 * time.Hour

// statementFor returns the statement an approver signs for a decision on
// req: approve (expiring at expires), reject or withdraw. The expiry must
// lie after now and at most 14 days ahead.
func (s *Server) statementFor(req *registry.TraceRequest, decision, expires string) ([]byte, time.Time, error) {
	var exp time.Time
	switch decision {
	case registry.DecisionApprove:
		t, err := time.Parse(time.RFC3339, expires)
		now := s.cfg.Now()
		if err != nil || !t.After(now) || t.After(now.Add(maxValidity)) {
			return nil, time.Time{}, registry.FieldError("expires_at", "An approval expires after now and at most 14 days ahead (RFC 3339).")
		}
		exp = t.UTC().Truncate(time.Microsecond)
	case registry.DecisionReject, registry.DecisionWithdraw:
	default:
		return nil, time.Time{}, registry.FieldError("decision", "The decision is approve, reject or withdraw.")
	}
	return registry.DecisionStatement(req, decision, exp), exp, nil
}

// handleDPOStatement serves GET /v1/dpo/requests/{id}/statement
// ?decision=approve&expires_at=…: the exact bytes an approver signs (with
// the purpose registry.PurposeDecision, which X-Registry-Purpose names),
// as a file to sign offline.
func (s *Server) handleDPOStatement(w http.ResponseWriter, r *http.Request) {
	req, _, err := s.dpoRequest(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	st, _, err := s.statementFor(req, q.Get("decision"), q.Get("expires_at"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeStatement(w, req, q.Get("decision"), st)
}

func writeStatement(w http.ResponseWriter, req *registry.TraceRequest, decision string, st []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Registry-Purpose", registry.PurposeDecision)
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.TrimSuffix(bundleName(req), ".registry-export.age")+"-"+decision+`.statement.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(st)
}

// DPODecision is the body of a signed decision.
type DPODecision struct {
	Decision  string `json:"decision"`
	ExpiresAt string `json:"expires_at,omitempty"`
	Key       string `json:"key"`       // the signing key's id
	Signature string `json:"signature"` // base64 (or an armored SSHSIG signature)
	Note      string `json:"note,omitempty"`
}

// handleDPODecision serves POST /v1/dpo/requests/{id}/decision: a
// decision signed on the approver's own computer. The server verifies the
// signature against the registered approvers and the request as stored,
// as it does for a decision made on the server host: 403 for a key that
// is no active approver's or a signature over anything else (recorded),
// 409 for a second decision of the same person.
func (s *Server) handleDPODecision(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in DPODecision
	if err := strictjson.Decode(body, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := s.decide(r.Context(), r.PathValue("id"), &in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	set, err := s.cfg.Store.Approvers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.dpoView(r.Context(), req, set, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// decide records a signed decision (approve, reject) or withdrawal.
func (s *Server) decide(ctx context.Context, id string, in *DPODecision) (*registry.TraceRequest, error) {
	req, _, err := s.dpoRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	_, exp, err := s.statementFor(req, in.Decision, in.ExpiresAt)
	if err != nil {
		return nil, err
	}
	sig, err := decodeSignature(in.Signature)
	if err != nil {
		return nil, err
	}
	if registry.SafeKeyID(in.Key) != in.Key {
		return nil, registry.FieldError("key", "key is the signing key's 16-digit id.")
	}
	note, err := registry.CleanText("note", in.Note)
	if err != nil {
		return nil, err
	}
	if in.Decision == registry.DecisionReject && note == "" {
		return nil, registry.FieldError("note", "A rejection needs a reason: the health office reads it.")
	}
	if in.Decision == registry.DecisionWithdraw {
		return s.cfg.Store.WithdrawApproval(ctx, req.ID, in.Key, sig, s.cfg.Now())
	}
	return s.cfg.Store.DecideTraceRequest(ctx, &registry.Approval{RequestID: req.ID, ApproverID: in.Key, Decision: in.Decision,
		ExpiresAt: exp, Note: note, Signature: sig}, s.cfg.Now())
}

// decodeSignature takes a signature in base64, or an armored SSHSIG
// signature as ssh-keygen writes it.
func decodeSignature(s string) ([]byte, error) {
	if strings.Contains(s, "BEGIN SSH SIGNATURE") {
		return []byte(s), nil
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(sig) == 0 || len(sig) > 4096 {
		return nil, registry.FieldError("signature", "signature is the signature in standard base64.")
	}
	return sig, nil
}
