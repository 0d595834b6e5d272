package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type traceRow struct {
	ID           string         `db:"id"`
	CaseRef      string         `db:"case_ref"`
	Office       string         `db:"office"`
	LegalBasis   string         `db:"legal_basis"`
	Contact      string         `db:"contact"`
	From         int64          `db:"window_from"`
	To           int64          `db:"window_to"`
	Sites        string         `db:"sites"`
	Areas        string         `db:"areas"`
	Status       string         `db:"status"`
	OwnerToken   string         `db:"owner_token"`
	CreatedBy    string         `db:"created_by"`
	CreatedAt    int64          `db:"created_at"`
	DecidedBy    string         `db:"decided_by"`
	DecidedAt    sql.NullInt64  `db:"decided_at"`
	DecisionNote string         `db:"decision_note"`
	ExpiresAt    sql.NullInt64  `db:"expires_at"`
	ExportedAt   sql.NullInt64  `db:"exported_at"`
	ExportCount  int            `db:"export_count"`
	ExportDigest sql.NullString `db:"export_digest"`
	Nonce        string         `db:"nonce"`
}

func (r *traceRow) request() (*registry.TraceRequest, error) {
	t := &registry.TraceRequest{
		ID: r.ID, CaseRef: r.CaseRef, Office: r.Office, LegalBasis: r.LegalBasis, Contact: r.Contact,
		From: fromMicros(r.From), To: fromMicros(r.To), Status: registry.TraceStatus(r.Status),
		OwnerToken: r.OwnerToken, CreatedBy: registry.Actor(r.CreatedBy), CreatedAt: fromMicros(r.CreatedAt),
		DecidedBy: registry.Actor(r.DecidedBy), DecidedAt: fromNullMicros(r.DecidedAt), DecisionNote: r.DecisionNote,
		ExpiresAt: fromNullMicros(r.ExpiresAt), ExportedAt: fromNullMicros(r.ExportedAt),
		ExportCount: r.ExportCount, ExportDigest: r.ExportDigest.String, Nonce: r.Nonce,
	}
	if err := json.Unmarshal([]byte(r.Sites), &t.Sites); err != nil {
		return nil, fmt.Errorf("decode sites of request %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Areas), &t.Areas); err != nil {
		return nil, fmt.Errorf("decode areas of request %s: %w", r.ID, err)
	}
	if len(t.Areas) == 0 {
		t.Areas = nil // "every area" reads back as it was written
	}
	return t, nil
}

const traceColumns = `id, case_ref, office, legal_basis, contact, window_from, window_to, sites, areas, status,
owner_token, created_by, created_at, decided_by, decided_at, decision_note, expires_at, exported_at,
export_count, export_digest, nonce`

// CreateTraceRequest stores r as a pending request with an
// AuditRequestCreated event (office, window, sites, areas). It fills in ID
// and CreatedAt when they are empty. EINVALID without sites or with an empty
// window, ECONFLICT for a duplicate ID.
func (s *Store) CreateTraceRequest(ctx context.Context, actor registry.Actor, r *registry.TraceRequest) error {
	if len(r.Sites) == 0 || !r.From.Before(r.To) {
		return registry.Errorf(registry.EINVALID, "A trace request needs at least one site and a window with from before to.")
	}
	if r.ID == "" {
		r.ID = registry.NewID()
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	if r.CreatedBy == "" {
		r.CreatedBy = actor
	}
	if r.Nonce == "" {
		r.Nonce = registry.NewNonce()
	}
	r.CreatedAt, r.From, r.To = utcMicro(r.CreatedAt), utcMicro(r.From), utcMicro(r.To)
	r.Status = registry.TracePending
	sites, _ := json.Marshal(nonNil(r.Sites))
	areas, _ := json.Marshal(nonNil(r.Areas))
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO trace_requests (id, case_ref, office, legal_basis, contact,
window_from, window_to, sites, areas, status, owner_token, created_by, created_at, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			r.ID, r.CaseRef, r.Office, r.LegalBasis, r.Contact, micros(r.From), micros(r.To), string(sites), string(areas),
			string(r.Status), r.OwnerToken, string(r.CreatedBy), micros(r.CreatedAt), r.Nonce)
		if err != nil {
			return s.errorf(err, "insert trace request")
		}
		return s.audit(ctx, tx, r.CreatedAt, actor, r.ID, registry.RequestCreated{Office: r.Office, From: r.From, To: r.To, Sites: nonNil(r.Sites), Areas: nonNil(r.Areas)})
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// FindTraceRequest returns a request with its approvals, or ENOTFOUND.
func (s *Store) FindTraceRequest(ctx context.Context, id string) (*registry.TraceRequest, error) {
	return s.findTraceRequest(ctx, s.read, id)
}

func (s *Store) findTraceRequest(ctx context.Context, q sqlx.QueryerContext, id string) (*registry.TraceRequest, error) {
	var row traceRow
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT `+traceColumns+` FROM trace_requests WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Trace request not found.")
	} else if err != nil {
		return nil, s.errorf(err, "find trace request")
	}
	r, err := row.request()
	if err != nil {
		return nil, err
	}
	if _, err := s.withApprovals(ctx, q, r); err != nil {
		return nil, err
	}
	return r, nil
}

// TraceRequests lists requests matching f, newest first.
func (s *Store) TraceRequests(ctx context.Context, f registry.TraceFilter) ([]*registry.TraceRequest, error) {
	var rows []traceRow
	q := s.rebind(`SELECT ` + traceColumns + ` FROM trace_requests
WHERE (? = '' OR status = ?) AND (? = '' OR owner_token = ?) ORDER BY created_at DESC, id DESC`)
	err := s.read.SelectContext(ctx, &rows, q, string(f.Status), string(f.Status), f.OwnerToken, f.OwnerToken)
	if err != nil {
		return nil, s.errorf(err, "list trace requests")
	}
	reqs := make([]*registry.TraceRequest, len(rows))
	for i := range rows {
		if reqs[i], err = rows[i].request(); err != nil {
			return nil, err
		}
	}
	return reqs, nil
}

// expired reports whether an approval has lapsed at now.
func expired(r *registry.TraceRequest, now time.Time) bool {
	return r.ExpiresAt == nil || !now.Before(*r.ExpiresAt)
}
