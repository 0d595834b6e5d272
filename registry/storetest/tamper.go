package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
)

// Tampering checks what an attacker with write access to the database
// can no longer do with trace requests: export a request again after
// resetting it, widen an approved request's scope, approve by writing an
// approval or an approver of their own. db is the store's database.
func Tampering(t *testing.T, s registry.Store, db *sqlx.DB) {
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	export := func(id string) error {
		_, err := s.ExportTraceRequest(ctx, office, id, t0, 12*time.Hour, nil, (&recorder{}).build)
		return err
	}
	createVisits(t, s, newVisit("rathaus", "", t0.Add(-30*time.Minute)), newVisit("bauamt", "", t0.Add(-20*time.Minute)))
	an := anna(t, s)
	exp := t0.Add(time.Hour)

	t.Run("reset after export", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		approve(t, s, r.ID, t0, exp)
		if err := export(r.ID); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE trace_requests SET status = 'approved', exported_at = NULL, export_digest = NULL WHERE id = ?`, r.ID)
		wantCode(t, export(r.ID), registry.ECONFLICT)
	})
	t.Run("reset after export, its entry deleted", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		approve(t, s, r.ID, t0, exp)
		if err := export(r.ID); err != nil {
			t.Fatal(err)
		}
		head, _ := s.LastAudit(ctx, "")
		anchor := &registry.LogAnchor{Size: head.Seq, Hash: head.Hash} // what the instance notes after an export
		_, tok := registry.NewToken(registry.RoleIntake, "", "later", t0)
		if err := s.CreateToken(ctx, "dpo:it", tok); err != nil { // the log goes on
			t.Fatal(err)
		}
		exec(`UPDATE trace_requests SET status = 'approved', exported_at = NULL, export_digest = NULL WHERE id = ?`, r.ID)
		exec(`DELETE FROM audit_events WHERE action = ? AND subject = ?`, registry.AuditRequestExported, r.ID)
		// A gap in the chain refuses the export before anything is built.
		err := export(r.ID)
		wantCode(t, err, registry.EFORBIDDEN)
		if !strings.Contains(registry.ErrorMessage(err), "does not verify") {
			t.Errorf("refusal %q does not say the log does not verify", registry.ErrorMessage(err))
		}
		// With the gap closed (the entries after it renumbered and
		// relinked), the chain verifies: only the instance's anchor tells.
		relinkFrom(t, s, db, head.Seq-1)
		_, err = s.ExportTraceRequest(ctx, office, r.ID, t0, 12*time.Hour, anchor, (&recorder{}).build)
		wantCode(t, err, registry.EFORBIDDEN)
		if !strings.Contains(registry.ErrorMessage(err), "differs from the one the registry instance noted") {
			t.Errorf("refusal %q does not say the log was rewritten", registry.ErrorMessage(err))
		}
	})
	t.Run("visit altered after approval", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		approve(t, s, r.ID, t0, exp)
		v := newVisit("rathaus", "Saal", t0.Add(-45*time.Minute))
		createVisits(t, s, v)
		exec(`UPDATE visits SET area = 'Keller' WHERE id = ?`, v.ID)
		err := export(r.ID)
		wantCode(t, err, registry.EFORBIDDEN)
		if !strings.Contains(registry.ErrorMessage(err), v.ID) {
			t.Errorf("refusal %q does not name the visit", registry.ErrorMessage(err))
		}
		// Nothing was consumed: the request is still approved.
		if got, _ := s.FindTraceRequest(ctx, r.ID); got.Status != registry.TraceApproved {
			t.Errorf("after the refusal the request is %s, want approved", got.Status)
		}
		exec(`UPDATE visits SET area = 'Saal' WHERE id = ?`, v.ID)
		if err := export(r.ID); err != nil {
			t.Errorf("export after the row was restored: %v", err)
		}
	})
	t.Run("withdrawn approval restored", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		got := approve(t, s, r.ID, t0, exp)
		wd := an.Key.Sign(registry.PurposeDecision, registry.DecisionStatement(got, registry.DecisionWithdraw, time.Time{}))
		if _, err := s.WithdrawApproval(ctx, r.ID, an.Key.ID(), wd, t0); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE trace_approvals SET withdrawn_at = NULL WHERE request_id = ?`, r.ID)
		exec(`UPDATE trace_requests SET status = 'approved', expires_at = ? WHERE id = ?`, exp.UnixMicro(), r.ID)
		err := export(r.ID)
		wantCode(t, err, registry.EFORBIDDEN)
		if !strings.Contains(registry.ErrorMessage(err), "not one the audit log holds as standing") {
			t.Errorf("refusal %q", registry.ErrorMessage(err))
		}
	})
	t.Run("narrowing reverted", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus", "bauamt"}, nil)
		got := approve(t, s, r.ID, t0, exp)
		old := got.Approvals[0]
		if _, err := s.NarrowTraceRequest(ctx, "dpo:anna", r.ID, registry.Narrowing{Sites: []string{"rathaus"}}, t0); err != nil {
			t.Fatal(err)
		}
		// The wider scope and its approval come back in the tables.
		exec(`UPDATE trace_requests SET sites = '["rathaus","bauamt"]', status = 'approved', expires_at = ? WHERE id = ?`, exp.UnixMicro(), r.ID)
		exec(`UPDATE trace_approvals SET withdrawn_at = NULL WHERE id = ?`, old.ID)
		wantCode(t, export(r.ID), registry.EFORBIDDEN)
	})
	t.Run("scope widened after approval", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		approve(t, s, r.ID, t0, exp)
		exec(`UPDATE trace_requests SET sites = '["rathaus","bauamt"]' WHERE id = ?`, r.ID)
		wantCode(t, export(r.ID), registry.EFORBIDDEN)
	})
	t.Run("status set without approval", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		exec(`UPDATE trace_requests SET status = 'approved', expires_at = ? WHERE id = ?`, exp.UnixMicro(), r.ID)
		wantCode(t, export(r.ID), registry.EFORBIDDEN)
	})
	t.Run("approver written into the table", func(t *testing.T) {
		r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
		m := NewSigner(t, "Mallory", t0)
		exec(`INSERT INTO approvers (id, person, name, public_key, added_at, added_by) VALUES (?, ?, ?, ?, ?, ?)`,
			m.Approver.ID, m.Approver.ID, m.Approver.Name, m.Approver.PublicKey, t0.UnixMicro(), an.Key.ID())
		d := m.Decision(r, registry.DecisionApprove, exp, "")
		exec(`INSERT INTO trace_approvals (id, request_id, approver_id, decision, expires_at, signed_at, signature) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			registry.NewID(), r.ID, d.ApproverID, d.Decision, exp.UnixMicro(), t0.UnixMicro(), d.Signature)
		exec(`UPDATE trace_requests SET status = 'approved', expires_at = ? WHERE id = ?`, exp.UnixMicro(), r.ID)
		wantCode(t, export(r.ID), registry.EFORBIDDEN)
		set, err := s.Approvers(ctx)
		if k, ok := set.Find(m.Key.ID()); err != nil || ok {
			t.Errorf("a row written by hand counts as approver %+v (%v)", k, err)
		}
		// Nor does an approver change appended to the log with a valid
		// hash link but no endorsement that verifies.
		c, _ := registry.NewApproverChange(set, registry.ChangeAddPerson, "Mallory Zwei", "", NewSigner(t, "x", t0).Approver.PublicKey, "dpo:it", t0)
		c.Endorsements = []registry.Endorsement{{Key: an.Key.ID(), Signature: []byte("not a signature")}}
		appendRaw(t, s, db, c.Payload())
		set, _ = s.Approvers(ctx)
		if _, ok := set.Find(c.KeyID); ok || len(set.Problems) == 0 {
			t.Errorf("a forged approver entry counts (problems %v)", set.Problems)
		}
	})
	t.Run("recipients pin moved by hand", func(t *testing.T) {
		if _, err := s.PinRecipients(ctx, "system", "sha256:office", nil); err != nil {
			t.Fatal(err)
		}
		// The pin lives in the log: a settings row, or an entry appended
		// without the approvers' signatures, does not move it.
		exec(`INSERT INTO settings (name, value) VALUES ('recipients_fingerprint', ?)`, []byte("sha256:attacker"))
		appendRaw(t, s, db, registry.RecipientsChanged{Old: "sha256:office", New: "sha256:attacker"})
		pinned, problems, err := s.Recipients(ctx)
		if err != nil || pinned != "sha256:office" || len(problems) != 1 {
			t.Errorf("Recipients() = %q, %v, %v; want the office's pin and one finding", pinned, problems, err)
		}
		if _, err := s.PinRecipients(ctx, "system", "sha256:attacker", nil); registry.ErrorCode(err) != registry.EFORBIDDEN {
			t.Errorf("pinning the attacker's recipients = %v, want EFORBIDDEN", err)
		}
	})
}

// relinkFrom renumbers the entries after seq after a gap and recomputes
// their hashes, as an attacker who deleted an entry would to hide it.
func relinkFrom(t *testing.T, s registry.Store, db *sqlx.DB, after int64) {
	t.Helper()
	ctx := context.Background()
	prev, err := s.AuditEvents(ctx, after-1, 1)
	if err != nil || len(prev) != 1 {
		t.Fatalf("entry %d: %v", after, err)
	}
	p := prev[0]
	rest, err := s.AuditEvents(ctx, after, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rest {
		old := e.Seq
		e.Seq, e.PrevHash = p.Seq+1, p.Hash
		e.Hash = e.ComputeHash()
		if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?`), e.Seq, e.PrevHash, e.Hash, old); err != nil {
			t.Fatal(err)
		}
		p = e
	}
}

// appendRaw appends an audit entry of payload p with SQL alone, as an
// attacker with write access to the database would: linked to the head
// with a valid hash, so that only what it claims can give it away.
func appendRaw(t *testing.T, s registry.Store, db *sqlx.DB, p registry.AuditPayload) {
	t.Helper()
	ctx := context.Background()
	head, err := s.LastAudit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := registry.NewAuditEvent(t0, "dpo:mallory", "", p)
	if err != nil {
		t.Fatal(err)
	}
	e.Link(head)
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO audit_events (seq, v, at, actor, actor_commit, action, subject, details, prev_hash, hash)
VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?)`), e.Seq, e.Version, e.Time.UnixMicro(), e.ActorCommit, e.Action, e.Subject, e.Details, e.PrevHash, e.Hash); err != nil {
		t.Fatal(err)
	}
}

// DataTampering checks that audit.VerifyData finds each edit of the
// database that bypasses the store: a visit deleted, one altered, one
// injected, a check-out changed, a request reset after its export.
func DataTampering(t *testing.T, s registry.Store, db *sqlx.DB) {
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	verify := func() []string {
		t.Helper()
		res, err := audit.VerifyData(ctx, s)
		if err != nil {
			t.Fatalf("VerifyData() = %v", err)
		}
		return res.Problems
	}
	vs := []*registry.Visit{newVisit("rathaus", "", t0.Add(-50*time.Minute)), newVisit("rathaus", "", t0.Add(-40*time.Minute)),
		newVisit("rathaus", "", t0.Add(-30*time.Minute)), newVisit("rathaus", "", t0.Add(-20*time.Minute))}
	createVisits(t, s, vs...)
	// A visit registered for an appointment: its link decides whether a
	// request by host or code finds it.
	appt := newAppointment(t, t0.Add(-time.Hour), "")
	if _, _, err := s.CreateAppointment(ctx, "user:service", appt, nil); err != nil {
		t.Fatal(err)
	}
	linked := newVisit("rathaus", "", t0.Add(-15*time.Minute))
	lp := party("user:pforte", nil, linked)
	lp.Appointment = appt.ID
	createParties(t, s, lp)
	if err := checkOut(s, vs[3].ID, t0); err != nil {
		t.Fatal(err)
	}
	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	approve(t, s, r.ID, t0, t0.Add(time.Hour))
	if _, err := s.ExportTraceRequest(ctx, office, r.ID, t0, 12*time.Hour, nil, (&recorder{}).build); err != nil {
		t.Fatal(err)
	}
	if p := verify(); len(p) != 0 {
		t.Fatalf("untouched database: findings %q", p)
	}

	exec(`DELETE FROM visits WHERE id = ?`, vs[0].ID)
	exec(`UPDATE visits SET area = 'Keller' WHERE id = ?`, vs[1].ID)
	exec(`UPDATE visits SET check_out = ? WHERE id = ?`, t0.Add(time.Hour).UnixMicro(), vs[3].ID)
	inj := newVisit("rathaus", "", t0.Add(-10*time.Minute))
	exec(`INSERT INTO visits (id, site, area, check_in, checkout_auto, checkout_reason, party, epoch, sealed, created_at)
VALUES (?, ?, '', ?, FALSE, '', '', ?, ?, ?)`, inj.ID, inj.Site, inj.CheckIn.UnixMicro(), string(inj.Epoch), inj.Sealed, inj.CreatedAt.UnixMicro())
	exec(`UPDATE trace_requests SET status = 'approved' WHERE id = ?`, r.ID)
	exec(`UPDATE visits SET appointment = '' WHERE id = ?`, linked.ID)
	got := strings.Join(verify(), "\n")
	for _, want := range []string{
		"3 visits of " + string(vs[0].Epoch) + " that the log registered are missing", // deleted, altered and unlinked
		"visit " + vs[1].ID + " (" + string(vs[1].Epoch) + ") is not the visit the log registered",
		"visit " + inj.ID + " (" + string(inj.Epoch) + ") is not the visit the log registered",
		"the check-out of visit " + vs[3].ID,
		"trace request " + r.ID + " is approved in the database, but the log records its export",
		"visit " + linked.ID + " (" + string(linked.Epoch) + ") is not the visit the log registered", // unlinked from its appointment
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings do not contain %q:\n%s", want, got)
		}
	}
}
