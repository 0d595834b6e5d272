package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"github.com/cityhall/registry/registry/audit"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

func TestVerifyIntact(t *testing.T) {
	ctx := context.Background()
	s, raw := sqliteLog(t, 8)
	r, err := audit.Verify(ctx, s, nil)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	if got, want := r.Size, int64(8); got != want {
		t.Errorf("size = %d, want %d", got, want)
	}
	if got, want := r.Head, readEvent(t, raw, 8).Hash; !bytes.Equal(got, want) {
		t.Errorf("head = %x, want hash of seq 8 %x", got, want)
	}
	for _, size := range []int64{8, 5, 1} {
		cp := &audit.Checkpoint{Origin: "registry.test/audit", Size: size, Hash: readEvent(t, raw, size).Hash}
		if r, err := audit.Verify(ctx, s, cp); err != nil || r.Checkpoint != cp {
			t.Errorf("audit.Verify with checkpoint at %d = %v, %v; want the log to extend it", size, r, err)
		}
	}
}

func TestVerifyEmpty(t *testing.T) {
	s, _ := sqliteLog(t, 0)
	r, err := audit.Verify(context.Background(), s, nil)
	if err != nil || r.Size != 0 || !bytes.Equal(r.Head, registry.GenesisHash) {
		t.Fatalf("audit.Verify of an empty log = %+v, %v; want size 0, genesis head", r, err)
	}
	cp := audit.NewCheckpoint("registry.test/audit", r)
	if _, err := audit.Verify(context.Background(), s, &cp); err != nil {
		t.Errorf("audit.Verify with the empty log's checkpoint: %v", err)
	}
}

// tamper runs SQL (or Go) against the raw database file.
type tamper func(t *testing.T, db *sql.DB)

func swap(a, b int64) tamper {
	return func(t *testing.T, db *sql.DB) {
		ea, eb := readEvent(t, db, a), readEvent(t, db, b)
		ea.Seq, eb.Seq = b, a
		writeEvent(t, db, ea)
		writeEvent(t, db, eb)
	}
}

// relink rewrites seq from..to with recomputed hashes after changing from.
func relink(from, to int64) tamper {
	return func(t *testing.T, db *sql.DB) {
		prev := readEvent(t, db, from-1)
		for seq := from; seq <= to; seq++ {
			e := readEvent(t, db, seq)
			if seq == from {
				e.Details = `{"count":0}`
			}
			e.Link(prev)
			writeEvent(t, db, e)
			prev = e
		}
	}
}

func sqlTamper(query string) tamper {
	return func(t *testing.T, db *sql.DB) { exec(t, db, query) }
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name       string
		tamper     tamper
		checkpoint int64 // size of a checkpoint taken before tampering; 0 for none
		seq        int64
		problem    string
		detail     string
	}{
		{"details edited", sqlTamper(`UPDATE audit_events SET details = '{"count":999}' WHERE seq = 3`), 0, 3, audit.Changed, "does not match its hash"},
		{"actor edited", sqlTamper(`UPDATE audit_actors SET actor = 'dpo:mallory' WHERE commit_hash = (SELECT actor_commit FROM audit_events WHERE seq = 6)`), 0, 3, audit.Changed, "actor does not match"}, // seq 3 is that actor's first event of the month
		{"time edited", sqlTamper(`UPDATE audit_events SET at = at + 1 WHERE seq = 8`), 0, 8, audit.Changed, "does not match"},
		{"actor row deleted", sqlTamper(`DELETE FROM audit_actors WHERE commit_hash = (SELECT actor_commit FROM audit_events WHERE seq = 6)`), 0, 3, audit.Changed, "no purge erased the staff names"},
		{"hash edited", sqlTamper(`UPDATE audit_events SET hash = zeroblob(32) WHERE seq = 4`), 0, 4, audit.Changed, ""},
		{"entry removed", sqlTamper(`DELETE FROM audit_events WHERE seq = 3`), 0, 3, audit.Removed, "seq 3 is missing"},
		{"entries removed", sqlTamper(`DELETE FROM audit_events WHERE seq IN (4, 5)`), 0, 4, audit.Removed, "seqs 4 to 5 are missing"},
		{"first entry removed", sqlTamper(`DELETE FROM audit_events WHERE seq = 1`), 0, 1, audit.Removed, ""},
		{"two entries swapped", swap(3, 4), 0, 3, audit.Reordered, "written as seq 4"},
		{"distant entries swapped", swap(2, 7), 0, 2, audit.Reordered, "written as seq 7"},
		{"entry replaced, hash recomputed", relink(3, 3), 0, 3, audit.Changed, "seq 4 no longer links to it"},
		{"entries removed, renumbered", func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq = 3`)
			exec(t, db, `UPDATE audit_events SET seq = seq - 1 WHERE seq > 3`)
		}, 0, 3, audit.Reordered, "written as seq 4"},
		{"end truncated, checkpoint", sqlTamper(`DELETE FROM audit_events WHERE seq > 6`), 8, 7, audit.Truncated, "ends at seq 6"},
		{"whole chain rewritten, checkpoint", relink(3, 8), 8, 8, audit.Rewritten, "differs from the checkpoint"},
		{"rewritten before an older checkpoint", relink(2, 8), 5, 5, audit.Rewritten, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, raw := sqliteLog(t, 8)
			var cp *audit.Checkpoint
			if tt.checkpoint > 0 {
				cp = &audit.Checkpoint{Origin: "registry.test/audit", Size: tt.checkpoint, Hash: readEvent(t, raw, tt.checkpoint).Hash}
			}
			tt.tamper(t, raw)
			r, err := audit.Verify(context.Background(), s, cp)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("audit.Verify = %+v, %v; want a VerifyError", r, err)
			}
			if ve.Seq != tt.seq || ve.Problem != tt.problem || !strings.Contains(ve.Detail, tt.detail) {
				t.Errorf("audit.VerifyError = seq %d %s %q, want seq %d %s containing %q", ve.Seq, ve.Problem, ve.Detail, tt.seq, tt.problem, tt.detail)
			}
			if got := registry.ErrorCode(err); got != registry.EINVALID {
				t.Errorf("error code = %q, want %q", got, registry.EINVALID)
			}
			if msg := registry.ErrorMessage(err); !strings.Contains(msg, "seq ") {
				t.Errorf("message %q does not name the seq", msg)
			}
		})
	}
}

// TestVerifyNeedsCheckpoint shows what only a checkpoint reveals: a cut at
// the end and a consistent rewrite both verify on their own.
func TestVerifyNeedsCheckpoint(t *testing.T) {
	for name, tamper := range map[string]tamper{
		"end truncated":         sqlTamper(`DELETE FROM audit_events WHERE seq > 6`),
		"whole chain rewritten": relink(3, 8),
	} {
		t.Run(name, func(t *testing.T) {
			s, raw := sqliteLog(t, 8)
			tamper(t, raw)
			if _, err := audit.Verify(context.Background(), s, nil); err != nil {
				t.Errorf("audit.Verify without checkpoint: %v; want it to pass (the chain is consistent)", err)
			}
		})
	}
}

// TestVerifyAppendedThenTruncated: a checkpoint taken after more events
// were appended catches their removal.
func TestVerifyAppendedThenTruncated(t *testing.T) {
	ctx := context.Background()
	s, raw := sqliteLog(t, 5)
	appendEvents(t, s, 3)
	r, err := audit.Verify(ctx, s, nil)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	cp := audit.NewCheckpoint("registry.test/audit", r)
	exec(t, raw, `DELETE FROM audit_events WHERE seq > 5`)
	_, err = audit.Verify(ctx, s, &cp)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Seq != 6 || ve.Problem != audit.Truncated {
		t.Fatalf("audit.Verify after truncation = %v; want truncated at seq 6", err)
	}
	appendEvents(t, s, 3) // the store appends seq 6..8 again, with other content
	if _, err := audit.Verify(ctx, s, &cp); !errors.As(err, &ve) || ve.Seq != 8 || ve.Problem != audit.Rewritten {
		t.Errorf("audit.Verify after truncation and new appends = %v; want rewritten at seq 8", err)
	}
}

// hashCoversSeqAndTime reports whether registry.AuditEvent.ComputeHash
// depends on Seq and Time.
func hashCoversSeqAndTime() bool {
	a := registry.AuditEvent{Seq: 1, Time: testStart, Action: "x", PrevHash: registry.GenesisHash}
	b, c := a, a
	b.Seq, c.Time = 2, testStart.Add(time.Microsecond)
	return !bytes.Equal(a.ComputeHash(), b.ComputeHash()) && !bytes.Equal(a.ComputeHash(), c.ComputeHash())
}

// TestComputeHashCoversSeqAndTime guards the domain's hash: an audit entry
// whose time or position can be edited without breaking the chain is not
// tamper-evident.
func TestComputeHashCoversSeqAndTime(t *testing.T) {
	if !hashCoversSeqAndTime() {
		t.Errorf("registry.AuditEvent.ComputeHash gives the same hash for different Seq or Time: " +
			"in registry/audit.go, encode Seq and Time into a buffer other than the length prefix's n")
	}
}

func TestVerifyPaging(t *testing.T) {
	for _, n := range []int{999, 1000, 1001, 2000, 2500} {
		m := newMemLog(n)
		r, err := audit.Verify(context.Background(), m, nil)
		if err != nil || r.Size != int64(n) {
			t.Errorf("audit.Verify of %d events = %+v, %v; want size %d", n, r, err, n)
		}
	}
	m := newMemLog(2500)
	m.events[1700].Details = `{"visits_deleted":2}`
	var ve *audit.VerifyError
	if _, err := audit.Verify(context.Background(), m, nil); !errors.As(err, &ve) || ve.Seq != 1701 {
		t.Errorf("audit.Verify with seq 1701 changed = %v; want it named", err)
	}
}

func TestVerifyRefusesBadCheckpoint(t *testing.T) {
	s, _ := sqliteLog(t, 2)
	cp := &audit.Checkpoint{Origin: "registry.test/audit", Size: 1, Hash: []byte("short")}
	if _, err := audit.Verify(context.Background(), s, cp); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("audit.Verify with a malformed checkpoint: %v, want EINVALID", err)
	}
}

func TestVerifyPostgres(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	appendEvents(t, s, 12)
	r, err := audit.Verify(ctx, s, nil)
	if err != nil || r.Size != 12 {
		t.Fatalf("audit.Verify = %+v, %v; want 12 intact events", r, err)
	}
	cp := audit.NewCheckpoint("registry.test/audit", r)
	appendEvents(t, s, 2)
	if r, err := audit.Verify(ctx, s, &cp); err != nil || r.Size != 14 {
		t.Errorf("audit.Verify with checkpoint = %+v, %v; want 14 events extending it", r, err)
	}
}

func BenchmarkVerify(b *testing.B) {
	m := newMemLog(100_000)
	for b.Loop() {
		if _, err := audit.Verify(context.Background(), m, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "events/s")
}
