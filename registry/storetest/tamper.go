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
		_, err := s.ExportTraceRequest(ctx, office, id, t0, 12*time.Hour, (&recorder{}).build)
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
		exec(`INSERT INTO approvers (id, name, public_key, added_at, added_by, signature) VALUES (?, ?, ?, ?, ?, ?)`,
			m.Approver.ID, m.Approver.Name, m.Approver.PublicKey, t0.UnixMicro(), an.Key.ID(), []byte("not a signature"))
		d := m.Decision(r, registry.DecisionApprove, exp, "")
		exec(`INSERT INTO trace_approvals (id, request_id, approver_id, decision, expires_at, signed_at, signature) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			registry.NewID(), r.ID, d.ApproverID, d.Decision, exp.UnixMicro(), t0.UnixMicro(), d.Signature)
		exec(`UPDATE trace_requests SET status = 'approved', expires_at = ? WHERE id = ?`, exp.UnixMicro(), r.ID)
		wantCode(t, export(r.ID), registry.EFORBIDDEN)
		// A second "first" approver voids the chain altogether.
		m2 := NewSigner(t, "Mallory Root", t0)
		exec(`INSERT INTO approvers (id, name, public_key, added_at) VALUES (?, ?, ?, ?)`,
			m2.Approver.ID, m2.Approver.Name, m2.Approver.PublicKey, t0.UnixMicro())
		d2 := m2.Decision(r, registry.DecisionApprove, exp, "")
		exec(`INSERT INTO trace_approvals (id, request_id, approver_id, decision, expires_at, signed_at, signature) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			registry.NewID(), r.ID, d2.ApproverID, d2.Decision, exp.UnixMicro(), t0.UnixMicro(), d2.Signature)
		wantCode(t, export(r.ID), registry.EFORBIDDEN)
	})
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
	if err := checkOut(s, vs[3].ID, t0); err != nil {
		t.Fatal(err)
	}
	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	approve(t, s, r.ID, t0, t0.Add(time.Hour))
	if _, err := s.ExportTraceRequest(ctx, office, r.ID, t0, 12*time.Hour, (&recorder{}).build); err != nil {
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
	got := strings.Join(verify(), "\n")
	for _, want := range []string{
		"2 visits of " + string(vs[0].Epoch) + " that the log registered are missing", // deleted, and altered
		"visit " + vs[1].ID + " (" + string(vs[1].Epoch) + ") is not the visit the log registered",
		"visit " + inj.ID + " (" + string(inj.Epoch) + ") is not the visit the log registered",
		"the check-out of visit " + vs[3].ID,
		"trace request " + r.ID + " is approved in the database, but the log records its export",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings do not contain %q:\n%s", want, got)
		}
	}
}
