package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite" for raw tampering

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/sqlite"
)

var testStart = time.Date(2021, 3, 5, 8, 0, 0, 0, time.UTC)

// appendEvents appends n events through the store, a minute apart after
// the last one.
func appendEvents(t *testing.T, s registry.AuditStore, n int) {
	t.Helper()
	ctx := context.Background()
	last, err := s.LastAudit(ctx, "")
	at := testStart
	if err == nil {
		at = last.Time
	} else if registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Fatalf("LastAudit: %v", err)
	}
	for i := range n {
		at = at.Add(time.Minute)
		e := &registry.AuditEvent{
			Time: at, Actor: registry.Actor(fmt.Sprintf("dpo:tester%d", i%3)), Action: registry.AuditVisitsRegistered,
			Subject: registry.NewID(), Details: fmt.Sprintf(`{"count":%d,"sites":{"rathaus":%d}}`, i+1, i+1),
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
	}
}

// sqliteLog returns a SQLite store holding n audit events and a raw
// connection to its file for tampering.
func sqliteLog(t *testing.T, n int) (*sqlite.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	appendEvents(t, s, n)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open raw: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	return s, raw
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// readEvent reads one event straight from the tables.
func readEvent(t *testing.T, db *sql.DB, seq int64) *registry.AuditEvent {
	t.Helper()
	var e registry.AuditEvent
	var at int64
	var actor string
	err := db.QueryRow(`SELECT e.seq, e.v, e.at, coalesce(a.actor, ''), a.salt, e.actor_commit, e.action, e.subject, e.details, e.prev_hash, e.hash
FROM audit_events e LEFT JOIN audit_actors a ON a.commit_hash = e.actor_commit WHERE e.seq = ?`, seq).
		Scan(&e.Seq, &e.Version, &at, &actor, &e.ActorSalt, &e.ActorCommit, &e.Action, &e.Subject, &e.Details, &e.PrevHash, &e.Hash)
	if err != nil {
		t.Fatalf("read seq %d: %v", seq, err)
	}
	e.Time, e.Actor = time.UnixMicro(at).UTC(), registry.Actor(actor)
	return &e
}

// writeEvent overwrites the row of e.Seq with e (the actor's name stays in
// audit_actors, under its commitment).
func writeEvent(t *testing.T, db *sql.DB, e *registry.AuditEvent) {
	t.Helper()
	exec(t, db, `UPDATE audit_events SET v = ?, at = ?, actor_commit = ?, action = ?, subject = ?, details = ?, prev_hash = ?, hash = ? WHERE seq = ?`,
		e.Version, e.Time.UnixMicro(), e.ActorCommit, e.Action, e.Subject, e.Details, e.PrevHash, e.Hash, e.Seq)
}

// memLog is an in-memory AuditStore, for paging and benchmarks.
type memLog struct {
	registry.AuditStore // unused methods panic
	events              []*registry.AuditEvent
}

func newMemLog(n int) *memLog {
	m := &memLog{}
	var prev *registry.AuditEvent
	for i := range n {
		e := &registry.AuditEvent{Time: testStart.Add(time.Duration(i) * time.Second), Actor: "system", Action: registry.AuditPurge, Details: `{"visits_deleted":1}`}
		e.Link(prev)
		m.events, prev = append(m.events, e), e
	}
	return m
}

func (m *memLog) AuditEvents(_ context.Context, after int64, limit int) ([]*registry.AuditEvent, error) {
	var page []*registry.AuditEvent
	for _, e := range m.events {
		if e.Seq > after && len(page) < limit {
			page = append(page, e)
		}
	}
	return page, nil
}
