package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

const office registry.Actor = "token:office"

// newRequest files a pending request over the window at the sites.
func newRequest(t *testing.T, s registry.Store, owner string, createdAt, from, to time.Time, sites, areas []string) *registry.TraceRequest {
	t.Helper()
	r := &registry.TraceRequest{
		ID: registry.NewID(), CaseRef: "GA-2026-0042", Office: "Gesundheitsamt Musterstadt",
		LegalBasis: "§ 25 IfSG", Contact: "Frau Beispiel", From: from, To: to, Sites: sites, Areas: areas,
		OwnerToken: owner, CreatedBy: registry.TokenActor(owner), CreatedAt: createdAt,
	}
	if err := s.CreateTraceRequest(context.Background(), registry.TokenActor(owner), r); err != nil {
		t.Fatalf("CreateTraceRequest() = %v", err)
	}
	return r
}

var (
	signersMu sync.Mutex
	signers   = map[registry.Store]*Signer{}
)

// anna returns the store's first approver, "Anna DSB", registering her on
// first use.
func anna(t *testing.T, s registry.Store) *Signer {
	t.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	if g := signers[s]; g != nil {
		return g
	}
	g := FirstSigner(t, s, t0)
	signers[s] = g
	return g
}

// approve has Anna approve the request id.
func approve(t *testing.T, s registry.Store, id string, now, expires time.Time) *registry.TraceRequest {
	t.Helper()
	return Approve(t, s, id, now, expires, anna(t, s))
}

func testTraceRequests(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newRequest(t, s, "office1", t0, t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), []string{"rathaus"}, nil)
	b := newRequest(t, s, "office2", t0.Add(time.Minute), t0.Add(-2*time.Hour), t0, []string{"rathaus", "bibliothek"}, []string{"lesesaal"})
	c := newRequest(t, s, "office1", t0.Add(2*time.Minute), t0.Add(-2*time.Hour), t0, []string{"bibliothek"}, nil)
	approve(t, s, c.ID, t0.Add(time.Hour), t0.Add(73*time.Hour))

	for _, want := range []*registry.TraceRequest{a, b} {
		got, err := s.FindTraceRequest(ctx, want.ID)
		if err != nil {
			t.Fatalf("FindTraceRequest() = %v", err)
		}
		if want.Status != registry.TracePending || !reflect.DeepEqual(got, want) {
			t.Errorf("FindTraceRequest() = %+v,\nwant %+v", got, want)
		}
	}
	_, err := s.FindTraceRequest(ctx, registry.NewID())
	wantCode(t, err, registry.ENOTFOUND)

	tests := []struct {
		name   string
		filter registry.TraceFilter
		want   []string
	}{
		{"all newest first", registry.TraceFilter{}, []string{c.ID, b.ID, a.ID}},
		{"pending", registry.TraceFilter{Status: registry.TracePending}, []string{b.ID, a.ID}},
		{"owner", registry.TraceFilter{OwnerToken: "office1"}, []string{c.ID, a.ID}},
		{"owner and status", registry.TraceFilter{OwnerToken: "office1", Status: registry.TraceApproved}, []string{c.ID}},
		{"none", registry.TraceFilter{Status: registry.TraceExported}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.TraceRequests(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range list {
				ids = append(ids, r.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("TraceRequests(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		})
	}
	evs := wantEvents(t, s, registry.AuditRequestCreated, 3)
	if evs[0].Subject != a.ID || evs[0].Actor != "token:office1" {
		t.Errorf("request.created subject %q actor %q", evs[0].Subject, evs[0].Actor)
	}
}

func testDecideTraceRequest(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	b := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	now, exp := t0.Add(time.Hour), t0.Add(73*time.Hour)
	an := anna(t, s)
	bert := AddSigner(t, s, "Bert DSB", t0, an)
	stranger := NewSigner(t, "Mallory", t0) // never registered

	altered := *a
	altered.Sites = []string{"rathaus", "bauamt"}
	other := *b
	badExp := an.Decision(a, registry.DecisionApprove, now, "")
	tests := []struct {
		name string
		a    *registry.Approval
		code string
	}{
		{"unregistered key", stranger.Decision(a, registry.DecisionApprove, exp, ""), registry.EFORBIDDEN},
		{"signature of another scope", an.Decision(&altered, registry.DecisionApprove, exp, ""), registry.EFORBIDDEN},
		{"signature of another request", func() *registry.Approval {
			d := an.Decision(&other, registry.DecisionApprove, exp, "")
			d.RequestID = a.ID
			return d
		}(), registry.EFORBIDDEN},
		{"expiry not after now", badExp, registry.EINVALID},
		{"approve", an.Decision(a, registry.DecisionApprove, exp, "case confirmed"), ""},
		{"approve again", an.Decision(a, registry.DecisionApprove, exp, ""), registry.ECONFLICT},
		{"reject", bert.Decision(b, registry.DecisionReject, time.Time{}, "no legal basis"), ""},
		{"approve rejected", an.Decision(b, registry.DecisionApprove, exp, ""), registry.ECONFLICT},
		{"unknown", func() *registry.Approval {
			d := an.Decision(a, registry.DecisionApprove, exp, "")
			d.RequestID = registry.NewID()
			return d
		}(), registry.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.DecideTraceRequest(ctx, tt.a, now)
			wantCode(t, err, tt.code)
		})
	}
	got, err := s.FindTraceRequest(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != registry.TraceApproved || got.DecidedBy != an.Approver.Actor() || !equalTimePtr(got.DecidedAt, &now) ||
		!equalTimePtr(got.ExpiresAt, &exp) || got.DecisionNote != "case confirmed" || len(got.Approvals) != 1 ||
		got.Approvals[0].Name != "Anna DSB" {
		t.Errorf("approved request = %+v", got)
	}
	if got, _ := s.FindTraceRequest(ctx, b.ID); got.Status != registry.TraceRejected || got.ExpiresAt != nil {
		t.Errorf("rejected request = %+v", got)
	}
	if ev := wantEvents(t, s, registry.AuditRequestApproved, 1)[0]; ev.Subject != a.ID || ev.Actor != an.Approver.Actor() {
		t.Errorf("request.approved subject %q actor %q", ev.Subject, ev.Actor)
	}
	if ev := wantEvents(t, s, registry.AuditRequestRejected, 1)[0]; ev.Subject != b.ID {
		t.Errorf("request.rejected subject %q, want %q", ev.Subject, b.ID)
	}
	// The three decisions refused for their key or signature are recorded,
	// with the key's id only.
	refused := wantEvents(t, s, registry.AuditApprovalRefused, 3)
	for i, want := range []struct{ key, reason string }{
		{stranger.Key.ID(), "not an active approver's key"}, {an.Key.ID(), "signature does not verify"}, {an.Key.ID(), "signature does not verify"},
	} {
		if ev := refused[i]; ev.Subject != a.ID || !strings.Contains(ev.Details, `"key":"`+want.key+`"`) || !strings.Contains(ev.Details, want.reason) {
			t.Errorf("refusal %d = %s on %s, want key %s: %s", i, ev.Details, ev.Subject, want.key, want.reason)
		}
	}

	// Withdrawing the only approval makes the request pending again.
	wd := an.Key.Sign(registry.PurposeDecision, registry.DecisionStatement(got, registry.DecisionWithdraw, time.Time{}))
	if _, err := s.WithdrawApproval(ctx, a.ID, bert.Key.ID(), wd, now); registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Errorf("WithdrawApproval(no decision of bert) = %v, want ENOTFOUND", err)
	}
	if _, err := s.WithdrawApproval(ctx, a.ID, an.Key.ID(), []byte("forged"), now); registry.ErrorCode(err) != registry.EFORBIDDEN {
		t.Errorf("WithdrawApproval(forged) = %v, want EFORBIDDEN", err)
	}
	if ev := wantEvents(t, s, registry.AuditApprovalRefused, 4)[3]; !strings.Contains(ev.Details, "signature does not verify") {
		t.Errorf("forged withdrawal recorded as %s", ev.Details)
	}
	r, err := s.WithdrawApproval(ctx, a.ID, an.Key.ID(), wd, now)
	if err != nil || r.Status != registry.TracePending || r.ExpiresAt != nil {
		t.Fatalf("WithdrawApproval() = %+v, %v; want pending", r, err)
	}
	wantEvents(t, s, registry.AuditApprovalWithdrawn, 1)
	_, err = s.ExportTraceRequest(ctx, office, a.ID, now, time.Hour, nil, (&recorder{}).build)
	wantCode(t, err, registry.EFORBIDDEN)
	// Bert may approve it now.
	if r := Approve(t, s, a.ID, now, exp, bert); r.Status != registry.TraceApproved {
		t.Errorf("after Bert's approval: %s", r.Status)
	}
}

// testLetterRequest: a request the DPO recorded from a letter needs two
// distinct approvers.
func testLetterRequest(t *testing.T, s registry.Store) {
	ctx := context.Background()
	r := &registry.TraceRequest{CaseRef: "GA-1", Office: "GA", LegalBasis: "§ 25 IfSG", Contact: "Frau B",
		From: t0.Add(-time.Hour), To: t0, Sites: []string{"rathaus"}, CreatedBy: "dpo:Anna DSB"}
	if err := s.CreateTraceRequest(ctx, "dpo:Anna DSB", r); err != nil {
		t.Fatal(err)
	}
	an := anna(t, s)
	got := approve(t, s, r.ID, t0, t0.Add(time.Hour))
	if got.Status != registry.TracePending {
		t.Fatalf("letter request after one approval: %s, want pending", got.Status)
	}
	_, err := s.ExportTraceRequest(ctx, office, r.ID, t0, time.Hour, nil, (&recorder{}).build)
	wantCode(t, err, registry.EFORBIDDEN)
	bert := AddSigner(t, s, "Bert DSB", t0, an)
	if got := Approve(t, s, r.ID, t0, t0.Add(2*time.Hour), bert); got.Status != registry.TraceApproved || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("letter request after two approvals: %+v", got)
	}
	if _, err := s.ExportTraceRequest(ctx, office, r.ID, t0, time.Hour, nil, (&recorder{}).build); err != nil {
		t.Fatalf("export of a twice-approved letter request = %v", err)
	}
}

// testApprovers: approvers are persons with keys; the first person is
// added freely, the second with the first's endorsement, from then on
// every change needs two persons other than the one it is about (or, with
// two persons, both); a change short of endorsements waits as pending;
// two keys of one person count once; the last approver stays while
// requests are open; a confusable name is refused.
func testApprovers(t *testing.T, s registry.Store) {
	ctx := context.Background()
	an := anna(t, s)
	// Anna alone endorses the second person; Bert may not endorse himself,
	// and without an endorsement the addition waits.
	if _, applied, err := Propose(t, s, registry.ChangeAddPerson, "Bert", "", NewSigner(t, "Bert", t0).Approver.PublicKey, t0); err != nil || applied {
		t.Errorf("unendorsed addition = %v, %v; want pending", applied, err)
	}
	self := NewSigner(t, "Bert", t0)
	if _, applied, err := Propose(t, s, registry.ChangeAddPerson, "Bert", "", self.Approver.PublicKey, t0, self); registry.ErrorCode(err) != registry.EFORBIDDEN || applied {
		t.Errorf("addition endorsed by the newcomer itself = %v, %v; want EFORBIDDEN", applied, err)
	}
	for _, look := range []string{"Anna DSB", "anna  dsb", "\u0410nna DSB"} {
		if _, _, err := Propose(t, s, registry.ChangeAddPerson, look, "", NewSigner(t, look, t0).Approver.PublicKey, t0, an); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("addition of %q (like Anna DSB) = %v, want EINVALID", look, err)
		}
	}
	bert := AddSigner(t, s, "Bert", t0, an)

	// With two persons, a second key of Anna needs Anna and Bert: Anna
	// alone leaves it pending, Bert's endorsement applies it.
	if pending, _ := s.ApproverChanges(ctx, t0); len(pending) != 0 {
		t.Errorf("Bert's addition left %d pending changes, want none (superseded)", len(pending))
	}
	second := NewSigner(t, "Anna DSB", t0)
	c, applied, err := Propose(t, s, registry.ChangeAddKey, "", "Anna DSB", second.Approver.PublicKey, t0, an)
	if err != nil || applied {
		t.Fatalf("Anna's own second key = %v, %v; want pending", applied, err)
	}
	pending, err := s.ApproverChanges(ctx, t0)
	if err != nil || len(pending) != 1 || pending[0].ID != c.ID || len(pending[0].Endorsements) != 1 {
		t.Fatalf("ApproverChanges() = %+v, %v; want the pending change", pending, err)
	}
	wantEvents(t, s, registry.AuditApproverProposed, 2)
	e := *c
	e.Endorsements = nil
	Endorse(&e, bert)
	if _, applied, err := s.EndorseApproverChange(ctx, "dpo:bert", c.ID, e.Endorsements[0], t0); err != nil || !applied {
		t.Fatalf("Bert's endorsement = %v, %v; want applied", applied, err)
	}
	if pending, _ := s.ApproverChanges(ctx, t0); len(pending) != 0 {
		t.Errorf("after applying: %d pending", len(pending))
	}
	set, err := s.Approvers(ctx)
	if err != nil || len(set.Persons()) != 2 || len(set.Active()) != 3 {
		t.Fatalf("Approvers() = %d persons, %d keys (%v); want 2, 3", len(set.Persons()), len(set.Active()), err)
	}
	if k, _ := set.Key(second.Key.ID()); k == nil || k.Person != an.Approver.Person || k.Name != "Anna DSB" {
		t.Errorf("Anna's second key = %+v", k)
	}
	// A third person needs two endorsers: Anna's two keys are one person.
	carla := NewSigner(t, "Carla", t0)
	if _, applied, err := Propose(t, s, registry.ChangeAddPerson, "Carla", "", carla.Approver.PublicKey, t0, an, second); err != nil || applied {
		t.Errorf("Carla endorsed by Anna's two keys = %v, %v; want pending", applied, err)
	}
	c3 := AddSigner(t, s, "Carla", t0, an, bert)
	// With three persons, Anna's change needs Bert and Carla, not Anna.
	if _, applied, err := Propose(t, s, registry.ChangeRemoveKey, "", "", bert.Key.ID(), t0, an, second); err != nil || applied {
		t.Errorf("removing Bert with Anna's two keys = %v, %v; want pending", applied, err)
	}
	if _, applied, err := Propose(t, s, registry.ChangeRemoveKey, "", "", second.Key.ID(), t0, an, bert); registry.ErrorCode(err) != registry.EFORBIDDEN || applied {
		t.Errorf("Anna endorsing her own key's removal = %v, %v; want EFORBIDDEN", applied, err)
	}
	if _, applied, err := Propose(t, s, registry.ChangeRemoveKey, "", "", second.Key.ID(), t0, bert, c3); err != nil || !applied {
		t.Errorf("removal of Anna's second key by Bert and Carla = %v, %v", applied, err)
	}
	// A stale proposal (the set changed since) is refused.
	stale, _ := s.Approvers(ctx)
	old, _ := registry.NewApproverChange(stale, registry.ChangeAddPerson, "Dora", "", NewSigner(t, "Dora", t0).Approver.PublicKey, "dpo:it", t0)
	AddSigner(t, s, "Emil", t0, bert, c3)
	Endorse(old, bert, c3)
	if _, err := s.ProposeApproverChange(ctx, "dpo:it", old); registry.ErrorCode(err) != registry.ECONFLICT {
		t.Errorf("a proposal over an old set = %v, want ECONFLICT", err)
	}
	list, err := s.Approvers(ctx)
	if err != nil || len(list.Problems) != 0 {
		t.Fatalf("Approvers() problems = %v, %v", list.Problems, err)
	}
	if a, ok := list.Find(second.Key.ID()); !ok || a.RemovedAt == nil || len(a.RemovedBy) != 2 {
		t.Errorf("removed key = %+v", a)
	}
	wantEvents(t, s, registry.AuditApproverChanged, 6) // Anna, Bert, Anna's key, Carla, removal, Emil
}

// testLastApprover: the last key of the last person cannot be removed
// while requests are open.
func testLastApprover(t *testing.T, s registry.Store) {
	an := anna(t, s)
	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	if _, _, err := Propose(t, s, registry.ChangeRemoveKey, "", "", an.Key.ID(), t0, an); registry.ErrorCode(err) != registry.ECONFLICT {
		t.Errorf("removing the last approver with a request open = %v, want ECONFLICT", err)
	}
	Reject(t, s, r.ID, t0, an)
	if _, applied, err := Propose(t, s, registry.ChangeRemoveKey, "", "", an.Key.ID(), t0, an); err != nil || !applied {
		t.Errorf("removing the last approver with no request open = %v, %v", applied, err)
	}
}

// testOnePersonTwoKeys: a letter request needs two persons; two keys of
// one person are one, and the second key cannot decide again.
func testOnePersonTwoKeys(t *testing.T, s registry.Store) {
	ctx := context.Background()
	an := anna(t, s)
	second := AddKey(t, s, an, t0, an) // one person: she endorses herself
	r := &registry.TraceRequest{CaseRef: "GA-1", Office: "GA", LegalBasis: "§ 25 IfSG", Contact: "Frau B",
		From: t0.Add(-time.Hour), To: t0, Sites: []string{"rathaus"}, CreatedBy: "dpo:Anna DSB"}
	if err := s.CreateTraceRequest(ctx, "dpo:Anna DSB", r); err != nil {
		t.Fatal(err)
	}
	Approve(t, s, r.ID, t0, t0.Add(time.Hour), an)
	cur, _ := s.FindTraceRequest(ctx, r.ID)
	_, err := s.DecideTraceRequest(ctx, second.Decision(cur, registry.DecisionApprove, t0.Add(time.Hour), ""), t0)
	if registry.ErrorCode(err) != registry.ECONFLICT {
		t.Errorf("a second approval by the same person's other key = %v, want ECONFLICT", err)
	}
	_, err = s.ExportTraceRequest(ctx, office, r.ID, t0, time.Hour, nil, (&recorder{}).build)
	wantCode(t, err, registry.EFORBIDDEN)
	if !strings.Contains(registry.ErrorMessage(err), "1 of 2 approvals") {
		t.Errorf("refusal %q does not say 1 of 2 approvals", registry.ErrorMessage(err))
	}
}

// recorder is an ExportFunc that keeps what it was given.
type recorder struct {
	visits []*registry.Visit
	calls  int
	err    error
}

// build records the visits it is handed and checks the count it is told.
func (r *recorder) build(_ *registry.TraceRequest, count int, visits iter.Seq2[*registry.Visit, error]) (string, error) {
	r.calls++
	r.visits = nil
	for v, err := range visits {
		if err != nil {
			return "", err
		}
		r.visits = append(r.visits, v)
	}
	if len(r.visits) != count {
		return "", fmt.Errorf("build told %d visits, handed %d", count, len(r.visits))
	}
	return "d1gest", r.err
}

func testExportTraceRequest(t *testing.T, s registry.Store) {
	ctx := context.Background()
	createVisits(t, s, newVisit("rathaus", "", t0.Add(-30*time.Minute)), newVisit("rathaus", "", t0.Add(-20*time.Minute)))
	pending := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	rejected := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	Reject(t, s, rejected.ID, t0, anna(t, s))
	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	exp := t0.Add(72 * time.Hour)
	approve(t, s, r.ID, t0, exp)

	failing := &recorder{err: errors.New("disk full")}
	tests := []struct {
		name  string
		id    string
		now   time.Time
		build *recorder
		code  string
	}{
		{"pending", pending.ID, t0, &recorder{}, registry.EFORBIDDEN},
		{"rejected", rejected.ID, t0, &recorder{}, registry.EFORBIDDEN},
		{"expired approval", r.ID, exp, &recorder{}, registry.EFORBIDDEN},
		{"unknown", registry.NewID(), t0, &recorder{}, registry.ENOTFOUND},
		{"build fails", r.ID, t0.Add(time.Hour), failing, registry.EINTERNAL},
		{"export", r.ID, exp.Add(-time.Microsecond), &recorder{}, ""},
		{"second export", r.ID, exp.Add(-time.Microsecond), &recorder{}, registry.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ExportTraceRequest(ctx, office, tt.id, tt.now, 12*time.Hour, nil, tt.build.build)
			wantCode(t, err, tt.code)
			if err == nil && (got.Status != registry.TraceExported || got.ExportCount != 2 || got.ExportDigest != "d1gest") {
				t.Errorf("ExportTraceRequest() = %+v", got)
			}
			if err == nil && len(tt.build.visits) != 2 {
				t.Errorf("build got %d visits, want 2", len(tt.build.visits))
			}
			if tt.build.err != nil && !errors.Is(err, tt.build.err) {
				t.Errorf("error = %v, want it to wrap the build error", err)
			}
			if err != nil && tt.code != registry.EINTERNAL && tt.build.calls != 0 {
				t.Errorf("build called for a refused export")
			}
		})
	}
	got, err := s.FindTraceRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := exp.Add(-time.Microsecond); got.Status != registry.TraceExported || !equalTimePtr(got.ExportedAt, &want) ||
		got.ExportCount != 2 || got.ExportDigest != "d1gest" {
		t.Errorf("exported request = %+v", got)
	}
	ev := wantEvents(t, s, registry.AuditRequestExported, 1)[0] // the failed build recorded nothing
	if m := details(t, ev); ev.Subject != r.ID || ev.Actor != office || m["count"] != 2.0 || m["digest"] != "d1gest" {
		t.Errorf("request.exported event = %+v", ev)
	}
}

// testNarrowWithdraw: the DPO narrows a request (never widens it), which
// withdraws the signatures over the wider scope; the office withdraws a
// request; the scope summary counts without personal data.
func testNarrowWithdraw(t *testing.T, s registry.Store) {
	ctx := context.Background()
	createVisits(t, s, newVisit("rathaus", "Bürgerbüro", t0.Add(-90*time.Minute)), newVisit("rathaus", "Bürgerbüro", t0.Add(-80*time.Minute)),
		newVisit("rathaus", "Standesamt", t0.Add(-30*time.Minute)), newVisit("bauamt", "", t0.Add(-20*time.Minute)))
	r := newRequest(t, s, "office", t0, t0.Add(-2*time.Hour), t0, []string{"rathaus", "bauamt"}, nil)
	got, err := s.ScopeSummary(ctx, r, 12*time.Hour)
	want := []registry.ScopeCount{
		{Site: "bauamt", Area: "", Hour: t0.Add(-time.Hour), Visits: 1},
		{Site: "rathaus", Area: "Bürgerbüro", Hour: t0.Add(-2 * time.Hour), Visits: 2},
		{Site: "rathaus", Area: "Standesamt", Hour: t0.Add(-time.Hour), Visits: 1},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ScopeSummary() = %+v, %v; want %+v", got, err, want)
	}
	approve(t, s, r.ID, t0, t0.Add(time.Hour))
	for _, n := range []registry.Narrowing{
		{From: t0.Add(-3 * time.Hour)},
		{To: t0.Add(time.Minute)},
		{Sites: []string{"rathaus", "bibliothek"}},
		{From: t0.Add(-time.Hour), To: t0.Add(-time.Hour)},
	} {
		if _, err := s.NarrowTraceRequest(ctx, "dpo:anna", r.ID, n, t0); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("NarrowTraceRequest(%+v) = %v, want EINVALID", n, err)
		}
	}
	nr, err := s.NarrowTraceRequest(ctx, "dpo:anna", r.ID, registry.Narrowing{From: t0.Add(-time.Hour), Sites: []string{"rathaus"}}, t0)
	if err != nil || nr.Status != registry.TracePending || !nr.From.Equal(t0.Add(-time.Hour)) || len(nr.Sites) != 1 || nr.Approvals[0].WithdrawnAt == nil {
		t.Fatalf("NarrowTraceRequest() = %+v, %v", nr, err)
	}
	// The Bürgerbüro visits are still open, so they overlap the later window.
	if got, _ := s.ScopeSummary(ctx, nr, 12*time.Hour); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("narrowed ScopeSummary() = %+v, want %+v (bauamt gone)", got, want[1:])
	}
	wantEvents(t, s, registry.AuditRequestNarrowed, 1)
	// The old signature covers the wider scope: it no longer counts.
	_, err = s.ExportTraceRequest(ctx, office, r.ID, t0, 12*time.Hour, nil, (&recorder{}).build)
	wantCode(t, err, registry.EFORBIDDEN)
	approve(t, s, r.ID, t0, t0.Add(time.Hour))

	w, err := s.WithdrawTraceRequest(ctx, office, r.ID, t0)
	if err != nil || w.Status != registry.TraceWithdrawn {
		t.Fatalf("WithdrawTraceRequest() = %+v, %v", w, err)
	}
	_, err = s.WithdrawTraceRequest(ctx, office, r.ID, t0)
	wantCode(t, err, registry.ECONFLICT)
	_, err = s.ExportTraceRequest(ctx, office, r.ID, t0, 12*time.Hour, nil, (&recorder{}).build)
	wantCode(t, err, registry.EFORBIDDEN)
	wantEvents(t, s, registry.AuditRequestWithdrawn, 1)
}
