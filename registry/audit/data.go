package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/cityhall/registry/registry"
)

// DataSource is what VerifyData reads: the log, every visit, the trace
// requests with their approvals and the approvers.
type DataSource interface {
	AuditEvents(ctx context.Context, after int64, limit int) ([]*registry.AuditEvent, error)
	LastAudit(ctx context.Context, action string) (*registry.AuditEvent, error)
	AllVisits(ctx context.Context) iter.Seq2[*registry.Visit, error]
	TraceRequests(ctx context.Context, f registry.TraceFilter) ([]*registry.TraceRequest, error)
	FindTraceRequest(ctx context.Context, id string) (*registry.TraceRequest, error)
	Approvers(ctx context.Context) (*registry.ApproverSet, error)
	Recipients(ctx context.Context) (pinned string, problems []string, err error)
}

// DataResult is what VerifyData checked, and what it found wrong.
type DataResult struct {
	Visits   int // visits in the database
	Leaves   int // visits the log commits to
	Requests int // trace requests
	Exports  int // exports in the log
	// Unattested counts the visits registered before the log committed to
	// visits (a release before leaves, upgraded): they cannot be checked,
	// and the purge removes them within the retention period.
	Unattested int
	// Problems are the findings, in words, at most maxProblems (Omitted
	// counts the rest). Empty: the data matches the log.
	Problems []string
	Omitted  int
}

const maxProblems = 50

func (r *DataResult) problem(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.Omitted++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// VerifyData checks the database against what the audit log commits to
// (call Verify first: it proves the log itself):
//
//   - every visit's VisitLeaf is in a registration entry (else the visit
//     was injected, or its site, area, check-in or sealed contact altered);
//   - every visit committed to, of a day entirely after the newest purge
//     cutoff, is still there (else it was deleted);
//   - every check-out matches a committed DepartureLeaf (desk, visitor,
//     closing and paper check-outs), or is an automatic max-stay check-out
//     within registry.MaxStayLimit of the check-in (the hourly purge
//     commits to their count only);
//   - every trace request marked exported has its export entry, and none
//     with an export entry is marked otherwise (a request reset in the
//     database after its export);
//   - every export entry names the signed approvals it consumed, and they
//     verify over the request as stored, by registered approvers, at least
//     registry.RequiredApprovals of them.
//
// Visits registered while VerifyData runs are checked against entries
// written before they were read, so a live server causes no findings.
func VerifyData(ctx context.Context, s DataSource) (*DataResult, error) {
	res := &DataResult{}
	var upTo int64 // the log's size before the visits were read
	if last, err := s.LastAudit(ctx, ""); err == nil {
		upTo = last.Seq
	} else if registry.ErrorCode(err) != registry.ENOTFOUND {
		return nil, err
	}
	var visits []visitFacts
	for v, err := range s.AllVisits(ctx) {
		if err != nil {
			return nil, err
		}
		visits = append(visits, visitFacts{id: v.ID, day: v.Epoch, leaf: string(registry.VisitLeaf(v)),
			checkIn: v.CheckIn, checkOut: v.CheckOut, auto: v.CheckoutAuto, reason: v.CheckoutReason, created: v.CreatedAt})
	}
	res.Visits = len(visits)
	log, err := readLog(ctx, s, upTo)
	if err != nil {
		return nil, err
	}
	res.Leaves, res.Exports = log.leafCount, len(log.exports)

	present := map[string]bool{}
	for _, v := range visits {
		present[v.leaf] = true
		if log.legacy && (log.firstLeaves.IsZero() || v.created.Before(log.firstLeaves)) && !log.leaves[v.leaf] {
			res.Unattested++
			continue
		}
		if !log.leaves[v.leaf] {
			res.problem("visit %s (%s) is not the visit the log registered: injected into the database, or its site, area, check-in, sealed data or appointment altered", v.id, v.day)
		}
		if v.checkOut != nil && !log.departures[string(registry.DepartureLeaf(v.id, *v.checkOut, v.reason))] &&
			!(v.auto && v.reason == registry.CheckoutMaxStay && !v.checkOut.Before(v.checkIn) && v.checkOut.Sub(v.checkIn) <= registry.MaxStayLimit) {
			res.problem("the check-out of visit %s (%s) is not one the log recorded: altered in the database", v.id, v.day)
		}
	}
	for day, leaves := range log.before {
		if !day.Start().After(log.cutoff) {
			continue // the purge removed this day, or part of it
		}
		missing := 0
		for _, l := range leaves {
			if !present[l] {
				missing++
			}
		}
		if missing > 0 {
			res.problem("%d visits of %s that the log registered are missing from the database: deleted outside a purge", missing, day)
		}
	}
	if err := checkRequests(ctx, s, log, res); err != nil {
		return nil, err
	}
	if err := checkApprovers(ctx, s, res); err != nil {
		return nil, err
	}
	return res, nil
}

// checkApprovers reports the approver and recipients entries of the log
// that do not verify, and the rows of the approvers table that the log
// does not prove (written into the database by hand).
func checkApprovers(ctx context.Context, s DataSource, res *DataResult) error {
	set, err := s.Approvers(ctx)
	if err != nil {
		return err
	}
	for _, p := range set.Problems {
		res.problem("%s", p)
	}
	for _, a := range set.Keys {
		if a.Unproven {
			res.problem("the approvers table holds key %s (%q), which no approver change in the log registered: the row was written into the database by hand and counts for nothing", registry.SafeKeyID(a.ID), registry.ShowScripts(a.Name))
		}
	}
	_, problems, err := s.Recipients(ctx)
	if err != nil {
		return err
	}
	for _, p := range problems {
		res.problem("%s", p)
	}
	return nil
}

type visitFacts struct {
	id       string
	day      registry.Day
	leaf     string
	checkIn  time.Time
	checkOut *time.Time
	auto     bool
	reason   registry.CheckoutReason
	created  time.Time
}

// logFacts is what the log commits to.
type logFacts struct {
	leaves     map[string]bool           // every visit leaf
	leafCount  int                       //
	before     map[registry.Day][]string // leaves of entries up to upTo, by day
	departures map[string]bool           // every departure leaf
	cutoff     time.Time                 // the newest purge cutoff
	// legacy is set when registration entries without leaves exist
	// (written before the log committed to visits); firstLeaves is the
	// time of the first entry with leaves. Visits stored before it cannot
	// be checked.
	legacy      bool
	firstLeaves time.Time
	exports     map[string]registry.RequestExported // by request id
}

func readLog(ctx context.Context, s DataSource, upTo int64) (*logFacts, error) {
	f := &logFacts{leaves: map[string]bool{}, before: map[registry.Day][]string{}, departures: map[string]bool{},
		exports: map[string]registry.RequestExported{}}
	for after := int64(0); ; {
		evs, err := s.AuditEvents(ctx, after, pageSize)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return f, nil
		}
		for _, e := range evs {
			after = e.Seq
			if err := f.add(e, e.Seq <= upTo); err != nil {
				return nil, err
			}
		}
	}
}

func (f *logFacts) add(e *registry.AuditEvent, early bool) error {
	bad := func(err error) error {
		return &VerifyError{Seq: e.Seq, Problem: Changed, Detail: fmt.Sprintf("its details do not parse (%v)", err)}
	}
	switch e.Action {
	case registry.AuditVisitsRegistered:
		var p registry.VisitsRegistered
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		switch {
		case p.Leaves == nil && p.Count > 0:
			f.legacy = true
		case p.Leaves != nil && f.firstLeaves.IsZero():
			f.firstLeaves = e.Time
		}
		for day, b64 := range p.Leaves {
			leaves, err := splitLeaves(b64)
			if err != nil {
				return bad(err)
			}
			for _, l := range leaves {
				f.leaves[l] = true
				f.leafCount++
				if early {
					f.before[day] = append(f.before[day], l)
				}
			}
		}
		for _, b64 := range p.Departures {
			if err := f.addDepartures(b64); err != nil {
				return bad(err)
			}
		}
	case registry.AuditVisitsCheckedOut:
		var p registry.VisitsCheckedOut
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		for _, b64 := range p.Leaves {
			if err := f.addDepartures(b64); err != nil {
				return bad(err)
			}
		}
	case registry.AuditPurge:
		var p registry.PurgeReport
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		if !p.DryRun && p.Cutoff.After(f.cutoff) {
			f.cutoff = p.Cutoff
		}
	case registry.AuditRequestExported:
		var p registry.RequestExported
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			return bad(err)
		}
		f.exports[e.Subject] = p
	}
	return nil
}

func (f *logFacts) addDepartures(b64 string) error {
	leaves, err := splitLeaves(b64)
	for _, l := range leaves {
		f.departures[l] = true
	}
	return err
}

// splitLeaves decodes concatenated 16-byte leaves.
func splitLeaves(b64 string) ([]string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw)%16 != 0 {
		return nil, fmt.Errorf("malformed leaves")
	}
	out := make([]string, 0, len(raw)/16)
	for i := 0; i < len(raw); i += 16 {
		out = append(out, string(raw[i:i+16]))
	}
	return out, nil
}

// checkRequests compares the requests' export marks with the log and
// verifies the approvals every export consumed.
func checkRequests(ctx context.Context, s DataSource, log *logFacts, res *DataResult) error {
	reqs, err := s.TraceRequests(ctx, registry.TraceFilter{})
	if err != nil {
		return err
	}
	res.Requests = len(reqs)
	set, err := s.Approvers(ctx)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		exp, logged := log.exports[r.ID]
		switch {
		case logged && r.Status != registry.TraceExported:
			res.problem("trace request %s is %s in the database, but the log records its export: reset after the export", r.ID, r.Status)
			continue
		case !logged && r.Status == registry.TraceExported:
			res.problem("trace request %s is marked exported, but the log records no export", r.ID)
			continue
		case !logged:
			continue
		}
		full, err := s.FindTraceRequest(ctx, r.ID)
		if err != nil {
			return err
		}
		if msg := checkConsumed(full, exp, set); msg != "" {
			res.problem("the export of trace request %s %s", r.ID, msg)
		}
	}
	for id := range log.exports {
		if !registry.ValidID(id) {
			res.problem("the log records an export of a malformed request id")
			continue
		}
		if _, err := s.FindTraceRequest(ctx, id); registry.ErrorCode(err) == registry.ENOTFOUND {
			res.problem("the log records an export of trace request %s, which is missing from the database", id)
		}
	}
	return nil
}

// checkConsumed verifies the approvals an export entry names: each must be
// a stored approval of the request whose signature covers the request as
// stored, by a registered approver, and enough distinct ones.
func checkConsumed(r *registry.TraceRequest, exp registry.RequestExported, set *registry.ApproverSet) string {
	if len(exp.Approvers) != len(exp.Signatures) {
		return "names approvals without their signatures"
	}
	distinct := map[string]bool{}
	for i, id := range exp.Approvers {
		a, ok := set.Find(id) // removed keys too: they were approvers when they signed
		if !ok {
			return fmt.Sprintf("consumed an approval by %s, which is not a registered approver", registry.SafeKeyID(id))
		}
		var stored *registry.Approval
		for _, ap := range r.Approvals {
			if ap.ApproverID == id && string(ap.Signature) == string(exp.Signatures[i]) {
				stored = ap
			}
		}
		if stored == nil || stored.Decision != registry.DecisionApprove ||
			!a.Key().Verify(registry.PurposeDecision, registry.DecisionStatement(r, registry.DecisionApprove, stored.ExpiresAt), exp.Signatures[i]) {
			return fmt.Sprintf("consumed an approval by %s that does not cover the request as stored (altered after the export?)", a.Label())
		}
		distinct[a.Person] = true
	}
	if need := registry.RequiredApprovals(r); len(distinct) < need {
		return fmt.Sprintf("consumed the approvals of %d distinct persons; it needed %d", len(distinct), need)
	}
	return ""
}
