package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/checks"
)

// The DPO's pages: a signed-in DPO account reads the pending requests
// with their statements, scopes and signatures, the purges with their
// reports, the day keys, the last checks and the audit verification, the
// approvers and the alerts. Reading is in the browser; signing is on the
// DPO's own computer (registry requests approve --server …) or offline
// (the statement downloaded here, signed with registry requests sign,
// the signature uploaded here). No signing key reaches the server.

// dpoPage is the part of pageData the DPO's pages fill.
type dpoPage struct {
	Open, Closed []dpoRow
	Request      *dpoDetail
	Purges       []dpoPurge
	Keys         []dpoKey
	KeysPresent  int
	KeysGone     int
	ChecksAt     string // "" before the first run
	Checks       []checks.Finding
	ChecksFailed int
	Approvers    []dpoApprover
	Alerts       []dpoAlert
	ServerURL    string
}

type dpoRow struct {
	ID, CaseRef, Office, Period, Status, Created, Expires string
	Have, Need                                            int
	Waiting                                               bool
}

type dpoDetail struct {
	dpoRow
	LegalBasis, Contact, From, To string
	Sites, Areas, Hosts, Codes    string
	Origin                        string
	Visits, WindowVisits          int
	Index                         string // the index scope in words, "" for a request by window
	Preview                       []dpoCount
	Signatures                    []dpoSignature
	Decidable                     bool
	Exported, ExportCount, Digest string
	CommandApprove, CommandReject string
	CommandStatement, CommandSign string
}

type dpoCount struct {
	Site, Area, Hour string
	Visits           int
}

type dpoSignature struct{ Name, Key, Decision, Signed, Expires, Note string }

type dpoPurge struct {
	Ran, Cutoff, Destroyed, Oldest string
	Deleted, Remaining, Expired    int64
}

type dpoKey struct{ Day, Created, State string }

type dpoApprover struct{ Name, Key, Added, State string }

type dpoAlert struct{ Created, Subject, State string }

// dpoTime formats t for the DPO's pages.
func dpoTime(t time.Time) string { return t.In(registry.LocalZone).Format("02.01.2006 15:04") }

func dpoTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return dpoTime(*t)
}

// dpoOnly wraps a DPO page: other accounts are refused.
func (s *Server) dpoOnly(h func(http.ResponseWriter, *http.Request, *deskRequest)) func(http.ResponseWriter, *http.Request, *deskRequest) {
	return func(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
		if dr.user.Role != registry.UserDPO {
			s.renderMessage(w, r, http.StatusForbidden, dr.lang, "title_error", "msg_forbidden_site", nil)
			return
		}
		h(w, r, dr)
	}
}

func (s *Server) dpoPageData(r *http.Request, dr *deskRequest, titleKey string) *pageData {
	d := s.deskPage(r, dr, titleKey)
	d.Page, d.DPO = "dpo", &dpoPage{ServerURL: s.cfg.PublicURL}
	if d.DPO.ServerURL == "" {
		d.DPO.ServerURL = "https://" + r.Host
	}
	return d
}

// handleDPOHome serves GET /dpo/: the overview.
func (s *Server) handleDPOHome(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	ctx := r.Context()
	d := s.dpoPageData(r, dr, "title_dpo")
	if err := s.fillDPOHome(ctx, d); err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	s.render(w, r, http.StatusOK, "dpo_home", d)
}

func (s *Server) fillDPOHome(ctx context.Context, d *pageData) error {
	p, t := d.DPO, d.T
	now := s.cfg.Now()
	set, err := s.cfg.Store.Approvers(ctx)
	if err != nil {
		return err
	}
	reqs, err := s.cfg.Store.TraceRequests(ctx, registry.TraceFilter{})
	if err != nil {
		return err
	}
	for _, q := range reqs {
		open := q.Status == registry.TracePending || q.Status == registry.TraceApproved
		if !open && len(p.Closed) >= 20 {
			continue
		}
		full, err := s.cfg.Store.FindTraceRequest(ctx, q.ID)
		if err != nil {
			return err
		}
		row := s.dpoRowOf(full, set, t, now)
		if open {
			p.Open = append(p.Open, row)
		} else {
			p.Closed = append(p.Closed, row)
		}
	}
	purges, err := s.cfg.Store.FindAudit(ctx, registry.AuditFilter{Actions: []string{registry.AuditPurge}, Newest: true, Limit: 30})
	if err != nil {
		return err
	}
	for _, ev := range purges {
		var rep registry.PurgeReport
		if json.Unmarshal([]byte(ev.Details), &rep) != nil {
			continue
		}
		days := make([]string, len(rep.KeysDestroyed))
		for i, d := range rep.KeysDestroyed {
			days[i] = string(d)
		}
		p.Purges = append(p.Purges, dpoPurge{Ran: dpoTime(ev.Time), Cutoff: dpoTime(rep.Cutoff), Destroyed: strings.Join(days, ", "),
			Oldest: dpoTimePtr(rep.OldestCheckIn), Deleted: rep.VisitsDeleted, Remaining: rep.VisitsRemaining, Expired: rep.RequestsExpired})
	}
	keys, err := s.cfg.Store.EpochKeys(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(keys, func(a, b *registry.EpochKey) int { return strings.Compare(string(b.Day), string(a.Day)) })
	for _, k := range keys {
		state := t["key_present"]
		if k.DestroyedAt != nil {
			state = fmt.Sprintf(t["key_destroyed"], dpoTime(*k.DestroyedAt))
			p.KeysGone++
		} else {
			p.KeysPresent++
		}
		if len(p.Keys) < 60 {
			p.Keys = append(p.Keys, dpoKey{Day: string(k.Day), Created: dpoTime(k.CreatedAt), State: state})
		}
	}
	if s.cfg.Checks != nil {
		if rep := s.cfg.Checks(); rep != nil {
			p.ChecksAt, p.Checks, p.ChecksFailed = dpoTime(rep.At), rep.Findings, rep.Count(checks.Fail)
		}
	}
	for _, k := range set.Keys {
		if k.Unproven {
			continue
		}
		state := t["approver_active"]
		if k.RemovedAt != nil {
			state = fmt.Sprintf(t["approver_removed"], dpoTime(*k.RemovedAt))
		}
		p.Approvers = append(p.Approvers, dpoApprover{Name: set.PersonName(k.Person), Key: k.ID, Added: dpoTime(k.AddedAt), State: state})
	}
	alerts, err := s.cfg.Store.Alerts(ctx, 20)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		state := t["alert_delivered"]
		switch {
		case a.ClosedAt == nil:
			state = fmt.Sprintf(t["alert_pending"], a.Attempts)
		case a.LastError != "":
			state = t["alert_failed"]
		case len(a.Delivered) == 0:
			state = t["alert_page_only"]
		}
		p.Alerts = append(p.Alerts, dpoAlert{Created: dpoTime(a.CreatedAt), Subject: a.Subject, State: state})
	}
	return nil
}

func (s *Server) dpoRowOf(q *registry.TraceRequest, set *registry.ApproverSet, t map[string]string, now time.Time) dpoRow {
	row := dpoRow{ID: q.ID, CaseRef: q.CaseRef, Office: q.Office, Period: dpoTime(q.From) + " – " + dpoTime(q.To),
		Status: t["status_"+string(q.Status)], Created: dpoTime(q.CreatedAt), Expires: dpoTimePtr(q.ExpiresAt), Waiting: q.Status == registry.TracePending}
	row.Have, row.Need = registry.ApprovalCount(q, q.Approvals, set, now)
	return row
}

// handleDPORequestPage serves GET /dpo/requests/{id}: the statement, the
// scope's counts, the signatures, and how to sign.
func (s *Server) handleDPORequestPage(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	d := s.dpoPageData(r, dr, "title_dpo_request")
	if r.URL.Query().Get("signed") == "1" {
		d.Message = d.T["msg_signed"]
	}
	s.renderDPORequest(w, r, dr, d, http.StatusOK)
}

func (s *Server) renderDPORequest(w http.ResponseWriter, r *http.Request, dr *deskRequest, d *pageData, status int) {
	ctx := r.Context()
	req, set, err := s.dpoRequest(ctx, r.PathValue("id"))
	if err != nil {
		s.renderError(w, r, dr.lang, err, map[string]string{registry.ENOTFOUND: "msg_notfound"}, nil)
		return
	}
	v, err := s.dpoView(ctx, req, set, true)
	if err == nil {
		err = s.auditAccess(ctx, dr.user.Actor(), req.ID, registry.Access{What: "request.preview", Rows: v.Visits})
	}
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	t, now := d.T, s.cfg.Now()
	all := t["st_all"]
	or := func(list []string, def string) string {
		if len(list) == 0 {
			return def
		}
		return strings.Join(list, ", ")
	}
	det := &dpoDetail{dpoRow: s.dpoRowOf(req, set, t, now), LegalBasis: req.LegalBasis, Contact: req.Contact, From: dpoTime(req.From), To: dpoTime(req.To),
		Sites: strings.Join(req.Sites, ", "), Areas: or(req.Areas, all), Hosts: or(req.Hosts, all), Codes: or(req.Appointments, all),
		Origin: t["origin_"+v.Origin], Visits: v.Visits, WindowVisits: v.WindowVisits, Decidable: req.Status == registry.TracePending || req.Status == registry.TraceApproved,
		Exported: dpoTimePtr(req.ExportedAt), Digest: req.ExportDigest}
	if len(req.Index) > 0 {
		det.Index = fmt.Sprintf(t["st_index_scope"], strings.Join(req.Index, ", "), len(req.IndexVisits), req.Tolerance, req.MinContact)
		if req.WholeSite != "" {
			det.Index += " " + fmt.Sprintf(t["st_whole_site"], req.WholeSite)
		}
	}
	if req.ExportedAt != nil {
		det.ExportCount = strconv.Itoa(req.ExportCount)
	}
	if det.Origin == "" {
		det.Origin = v.Origin
	}
	for _, c := range v.Preview {
		det.Preview = append(det.Preview, dpoCount{Site: c.Site, Area: c.Area, Hour: c.Hour.In(registry.LocalZone).Format("02.01.2006 15:00"), Visits: c.Visits})
	}
	for _, a := range v.Approvals {
		sig := dpoSignature{Name: a.Name, Key: a.Key, Decision: t["decision_"+a.Decision], Signed: dpoTime(a.SignedAt), Expires: dpoTimePtr(a.ExpiresAt), Note: a.Note}
		if a.Withdrawn != nil {
			sig.Decision = fmt.Sprintf(t["decision_withdrawn"], dpoTime(*a.Withdrawn))
		}
		det.Signatures = append(det.Signatures, sig)
	}
	srv := d.DPO.ServerURL
	det.CommandApprove = "registry requests approve " + req.ID + " --server " + srv + " --token-file dsb.token --key dsb.key"
	det.CommandReject = "registry requests reject " + req.ID + " --server " + srv + " --token-file dsb.token --key dsb.key --note \"…\""
	det.CommandSign = "registry requests sign FILE.statement.json --key dsb.key"
	d.DPO.Request = det
	s.render(w, r, status, "dpo_request", d)
}

// handleDPOStatementDownload serves GET /dpo/requests/{id}/statement
// ?decision=…&days=N: the statement to sign offline, approving for N
// days (1 to 14) from now.
func (s *Server) handleDPOStatementDownload(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	req, _, err := s.dpoRequest(r.Context(), r.PathValue("id"))
	if err != nil {
		s.renderError(w, r, dr.lang, err, map[string]string{registry.ENOTFOUND: "msg_notfound"}, nil)
		return
	}
	q := r.URL.Query()
	decision, expires := q.Get("decision"), ""
	if decision == registry.DecisionApprove {
		days, err := strconv.Atoi(q.Get("days"))
		if err != nil || days < 1 || days > 14 {
			days = 7
		}
		expires = s.cfg.Now().Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	st, _, err := s.statementFor(req, decision, expires)
	if err != nil {
		s.renderError(w, r, dr.lang, err, nil, nil)
		return
	}
	writeStatement(w, req, decision, st)
}

// maxSignatureUpload bounds the upload of a statement and its signature.
const maxSignatureUpload = 64 << 10

// handleDPOSignatureUpload serves POST /dpo/requests/{id}/decision: the
// statement file and the signature file made offline (multipart), with
// a note. The server verifies the signature as for every decision; a
// signature over anything but this request as stored is refused and
// recorded.
func (s *Server) handleDPOSignatureUpload(w http.ResponseWriter, r *http.Request, dr *deskRequest) {
	d := s.dpoPageData(r, dr, "title_dpo_request")
	fail := func(key string, status int) {
		d.Message, d.Alert = d.T[key], true
		s.renderDPORequest(w, r, dr, d, status)
	}
	parts, err := readUpload(w, r, maxSignatureUpload, "statement", "signature", "note", "lang")
	if err != nil {
		fail("dpo_err_invalid", http.StatusBadRequest)
		return
	}
	st, err := registry.ParseStatement(parts["statement"])
	if err != nil || st.Request != r.PathValue("id") {
		fail("dpo_err_statement", http.StatusBadRequest)
		return
	}
	keyID, sig, err := registry.ParseSignatureFile(parts["signature"])
	if err != nil {
		fail("dpo_err_signature", http.StatusBadRequest)
		return
	}
	in := &DPODecision{Decision: st.Decision, ExpiresAt: st.ExpiresAt, Key: keyID, Note: string(parts["note"]), Signature: base64.StdEncoding.EncodeToString(sig)}
	if bytes.Contains(sig, []byte("BEGIN SSH SIGNATURE")) {
		in.Signature = string(sig)
	}
	if st.Decision == registry.DecisionApprove && st.ExpiresAt == "" {
		fail("dpo_err_statement", http.StatusBadRequest)
		return
	}
	if _, err := s.decide(r.Context(), r.PathValue("id"), in); err != nil {
		switch registry.ErrorCode(err) {
		case registry.EFORBIDDEN:
			fail("dpo_err_forbidden", http.StatusForbidden)
		case registry.ECONFLICT:
			fail("dpo_err_conflict", http.StatusConflict)
		case registry.EINVALID:
			fail("dpo_err_invalid", http.StatusBadRequest)
		default:
			s.renderError(w, r, dr.lang, err, nil, nil)
		}
		return
	}
	http.Redirect(w, r, "/dpo/requests/"+url.PathEscape(r.PathValue("id"))+"?signed=1&lang="+dr.lang, http.StatusSeeOther)
}

// readUpload reads a multipart/form-data body of at most limit bytes
// with only the named parts, each once.
func readUpload(w http.ResponseWriter, r *http.Request, limit int64, names ...string) (map[string][]byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("not multipart/form-data")
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit), params["boundary"])
	out := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name := p.FormName()
		if !slices.Contains(names, name) || out[name] != nil {
			return nil, fmt.Errorf("unexpected part %q", name)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
}
