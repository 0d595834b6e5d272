package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/strictjson"
)

// traceCreated answers a filed trace request.
type traceCreated struct {
	ID     string               `json:"id"`
	Status registry.TraceStatus `json:"status"`
}

// traceView is what a health office sees of its own trace request: what it
// filed, the status and the dates of the DPO's decision and of the export.
// It leaves out the owner token and every actor (who filed it, who decided
// it): the office knows its own token, and the DPO's identity is the city
// hall's internal matter; the decision note is the DPO's message to the
// office. ExportDigest is the hex SHA-256 of the bundle as sent, the value
// `registry decrypt` shows.
type traceView struct {
	ID           string               `json:"id"`
	CaseRef      string               `json:"case_ref"`
	Office       string               `json:"office"`
	LegalBasis   string               `json:"legal_basis"`
	Contact      string               `json:"contact"`
	From         time.Time            `json:"from"`
	To           time.Time            `json:"to"`
	Sites        []string             `json:"sites"`
	Areas        []string             `json:"areas"`
	Hosts        []string             `json:"hosts,omitempty"`
	Appointments []string             `json:"appointments,omitempty"`
	Status       registry.TraceStatus `json:"status"`
	CreatedAt    time.Time            `json:"created_at"`
	DecidedAt    *time.Time           `json:"decided_at"`
	DecisionNote string               `json:"decision_note,omitempty"`
	ExpiresAt    *time.Time           `json:"expires_at"`
	ExportedAt   *time.Time           `json:"exported_at"`
	ExportCount  int                  `json:"export_count"`
	ExportDigest string               `json:"export_digest,omitempty"`
	// ExportReprDigest is the same digest as the download's Repr-Digest
	// header states it (base64), so that the two compare by eye.
	ExportReprDigest string `json:"export_repr_digest,omitempty"`
	IndexScope
}

// IndexScope is a request's index scope as the API shows it (empty for
// a request by window): the codes, how many visits they named, the
// tolerance, the minimum contact and the reason to widen to the site.
type IndexScope struct {
	Index       []string `json:"index,omitempty"`
	IndexVisits int      `json:"index_visits,omitempty"`
	Tolerance   *int     `json:"tolerance_minutes,omitempty"`
	MinContact  *int     `json:"min_contact_minutes,omitempty"`
	WholeSite   string   `json:"whole_site_reason,omitempty"`
}

func indexScopeOf(r *registry.TraceRequest) IndexScope {
	if len(r.Index) == 0 {
		return IndexScope{}
	}
	tol, m := r.Tolerance, r.MinContact
	return IndexScope{Index: r.Index, IndexVisits: len(r.IndexVisits), Tolerance: &tol, MinContact: &m, WholeSite: r.WholeSite}
}

func newTraceView(r *registry.TraceRequest) traceView {
	areas := r.Areas
	if areas == nil {
		areas = []string{}
	}
	return traceView{
		ID: r.ID, CaseRef: r.CaseRef, Office: r.Office, LegalBasis: r.LegalBasis, Contact: r.Contact,
		From: r.From.UTC(), To: r.To.UTC(), Sites: r.Sites, Areas: areas, Hosts: r.Hosts, Appointments: r.Appointments, Status: r.Status,
		CreatedAt: r.CreatedAt.UTC(), DecidedAt: utc(r.DecidedAt), DecisionNote: r.DecisionNote,
		ExpiresAt: utc(r.ExpiresAt), ExportedAt: utc(r.ExportedAt),
		ExportCount: r.ExportCount, ExportDigest: r.ExportDigest, ExportReprDigest: reprDigest(r.ExportDigest),
		IndexScope: indexScopeOf(r),
	}
}

// reprDigest is a hex SHA-256 digest as a Repr-Digest header states it:
// "sha-256=:BASE64:" ("" for none).
func reprDigest(hexDigest string) string {
	sum, err := hex.DecodeString(hexDigest)
	if err != nil || len(sum) == 0 {
		return ""
	}
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// errTraceNotFound is the one answer for an unknown id, a malformed id and
// a request filed by another token, so that ids cannot be probed.
var errTraceNotFound = registry.Errorf(registry.ENOTFOUND, "No trace request of this token has this id.")

// handleCreateTrace serves POST /v1/trace-requests: 201 with the new
// request's id and a Location header once it is stored (with its audit
// event); 400 naming the field for invalid input, for example a window that
// starts before the retention cutoff ("from").
func (s *Server) handleCreateTrace(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in registry.TraceInput
	if err := strictjson.Decode(body, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	tok := tokenFrom(r.Context())
	req, err := registry.NewTraceRequest(&in, tok.Actor(), tok.ID, s.cfg.Now(), s.cfg.Retention)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.OwnerOffice = tok.Office
	client, now := s.limits.clientKey(r), s.cfg.Now()
	if len(req.Index) > 0 && s.limits.authFailures.exhausted(client, now) {
		// Index codes are not to be guessed: refused codes count as failed
		// authentications of the client.
		s.metrics.countLimited("auth_failures")
		_, wait := s.limits.authFailures.allow(client, now)
		w.Header().Set("Retry-After", retrySeconds(wait))
		writeProblem(w, http.StatusTooManyRequests, "Too many codes that name no visit; wait before filing another.", nil)
		return
	}
	if err := intake.ResolveIndex(r.Context(), s.cfg.Store, s.cfg.Secret, req); err != nil {
		if registry.ErrorCode(err) == registry.EINVALID {
			s.limits.authFailures.allow(client, now)
			// Every refused code is recorded: codes are not to be guessed.
			if aerr := s.auditAccess(r.Context(), tok.Actor(), "", registry.Access{What: "request.index_refused", Rows: len(req.Index)}); aerr != nil {
				err = aerr
			}
		}
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Store.CreateTraceRequest(r.Context(), tok.Actor(), req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.OnTraceRequest != nil {
		s.cfg.OnTraceRequest()
	}
	w.Header().Set("Location", "/v1/trace-requests/"+req.ID)
	writeJSON(w, http.StatusCreated, traceCreated{ID: req.ID, Status: req.Status})
}

// handleGetTrace serves GET /v1/trace-requests/{id}: the request's view
// for the token that filed it, and the same 404 for everyone else (also for
// requests the DPO recorded from a letter, which no token owns).
func (s *Server) handleGetTrace(w http.ResponseWriter, r *http.Request) {
	req, err := s.ownTrace(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newTraceView(req))
}

// ownTrace returns the request named by the path if it belongs to the
// token's office (Token.OwnsTrace), else errTraceNotFound.
func (s *Server) ownTrace(r *http.Request) (*registry.TraceRequest, error) {
	id := r.PathValue("id")
	if !registry.ValidID(id) {
		return nil, errTraceNotFound
	}
	req, err := s.cfg.Store.FindTraceRequest(r.Context(), id)
	switch {
	case registry.ErrorCode(err) == registry.ENOTFOUND:
		return nil, errTraceNotFound
	case err != nil:
		return nil, err
	case !tokenFrom(r.Context()).OwnsTrace(req):
		return nil, errTraceNotFound
	}
	return req, nil
}

// traceList is the answer of GET /v1/trace-requests.
type traceList struct {
	Requests []traceView `json:"requests"`
}

// handleListTraces serves GET /v1/trace-requests[?status=…]: the requests
// of the token's office, newest first (of the token itself for a token
// without an office).
func (s *Server) handleListTraces(w http.ResponseWriter, r *http.Request) {
	tok := tokenFrom(r.Context())
	f := registry.TraceFilter{Status: registry.TraceStatus(r.URL.Query().Get("status"))}
	switch f.Status {
	case "", registry.TracePending, registry.TraceApproved, registry.TraceRejected, registry.TraceExported,
		registry.TraceExpired, registry.TraceWithdrawn:
	default:
		s.fail(w, r, registry.FieldError("status", "status is one of pending, approved, rejected, exported, expired, withdrawn."))
		return
	}
	if tok.Office != "" {
		f.OwnerOffice = tok.Office
	} else {
		f.OwnerToken = tok.ID
	}
	reqs, err := s.cfg.Store.TraceRequests(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := traceList{Requests: []traceView{}}
	for _, req := range reqs {
		if tok.OwnsTrace(req) {
			out.Requests = append(out.Requests, newTraceView(req))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleWithdrawTrace serves POST /v1/trace-requests/{id}/withdraw: the
// office withdraws its pending or approved request (200 with the view);
// 409 once exported, rejected, expired or withdrawn; 404 for anyone
// else's.
func (s *Server) handleWithdrawTrace(w http.ResponseWriter, r *http.Request) {
	if err := s.decodeOptional(w, r, &noFields{}); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := s.ownTrace(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err = s.cfg.Store.WithdrawTraceRequest(r.Context(), tokenFrom(r.Context()).Actor(), req.ID, s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newTraceView(req))
}

// siteView is what a health office sees of a site: enough to choose the
// places of a request (code, display name, address, area names), nothing
// of the desk's configuration and no staff names.
type siteView struct {
	Code    string   `json:"code"`
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Areas   []string `json:"areas"`
}

// handleListSites serves GET /v1/sites for a health office's token: the
// configured sites with their areas, so that the office's workspace offers
// lists instead of codes to type.
func (s *Server) handleListSites(w http.ResponseWriter, r *http.Request) {
	sites, err := s.cfg.Store.Sites(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Sites []siteView `json:"sites"`
	}{Sites: []siteView{}}
	for _, site := range sites {
		v := siteView{Code: site.Code, Name: site.Name, Address: site.Address, Areas: []string{}}
		for _, a := range site.Areas {
			v.Areas = append(v.Areas, a.Name)
		}
		out.Sites = append(out.Sites, v)
	}
	writeJSON(w, http.StatusOK, out)
}
