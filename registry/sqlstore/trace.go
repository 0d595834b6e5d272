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
	Hosts        string         `db:"hosts"`
	Appointments string         `db:"appointments"`
	Status       string         `db:"status"`
	OwnerToken   string         `db:"owner_token"`
	OwnerOffice  string         `db:"owner_office"`
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
	IndexScope   string         `db:"index_scope"`
}

// indexScope is the index scope of a request as stored.
type indexScope struct {
	Index       []string `json:"index"`
	IndexVisits []string `json:"index_visits"`
	Tolerance   int      `json:"tolerance_minutes"`
	MinContact  int      `json:"min_contact_minutes"`
	WholeSite   string   `json:"whole_site_reason,omitempty"`
}

func (r *traceRow) request() (*registry.TraceRequest, error) {
	t := &registry.TraceRequest{
		ID: r.ID, CaseRef: r.CaseRef, Office: r.Office, LegalBasis: r.LegalBasis, Contact: r.Contact,
		From: fromMicros(r.From), To: fromMicros(r.To), Status: registry.TraceStatus(r.Status),
		OwnerToken: r.OwnerToken, OwnerOffice: r.OwnerOffice, CreatedBy: registry.Actor(r.CreatedBy), CreatedAt: fromMicros(r.CreatedAt),
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
	if err := json.Unmarshal([]byte(r.Hosts), &t.Hosts); err != nil {
		return nil, fmt.Errorf("decode hosts of request %s: %w", r.ID, err)
	}
	if len(t.Hosts) == 0 {
		t.Hosts = nil
	}
	if err := json.Unmarshal([]byte(r.Appointments), &t.Appointments); err != nil {
		return nil, fmt.Errorf("decode appointments of request %s: %w", r.ID, err)
	}
	if len(t.Appointments) == 0 {
		t.Appointments = nil
	}
	if r.IndexScope != "" {
		var x indexScope
		if err := json.Unmarshal([]byte(r.IndexScope), &x); err != nil {
			return nil, fmt.Errorf("decode the index scope of request %s: %w", r.ID, err)
		}
		t.Index, t.IndexVisits, t.Tolerance, t.MinContact, t.WholeSite = x.Index, x.IndexVisits, x.Tolerance, x.MinContact, x.WholeSite
	}
	return t, nil
}

// indexScopeOf is the stored form of r's index scope, "" without one.
func indexScopeOf(r *registry.TraceRequest) string {
	if len(r.Index) == 0 {
		return ""
	}
	b, _ := json.Marshal(indexScope{Index: r.Index, IndexVisits: nonNil(r.IndexVisits), Tolerance: r.Tolerance, MinContact: r.MinContact, WholeSite: r.WholeSite})
	return string(b)
}

const traceColumns = `id, case_ref, office, legal_basis, contact, window_from, window_to, sites, areas, status,
owner_token, created_by, created_at, decided_by, decided_at, decision_note, expires_at, exported_at,
export_count, export_digest, nonce, owner_office, hosts, appointments, index_scope`

// CreateTraceRequest stores r as a pending request with an
// AuditRequestCreated event (office, window, sites, areas, codes). It fills in ID
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
	hosts, _ := json.Marshal(nonNil(r.Hosts))
	codes, _ := json.Marshal(nonNil(r.Appointments))
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO trace_requests (id, case_ref, office, legal_basis, contact,
window_from, window_to, sites, areas, status, owner_token, created_by, created_at, nonce, owner_office, hosts, appointments, index_scope)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			r.ID, r.CaseRef, r.Office, r.LegalBasis, r.Contact, micros(r.From), micros(r.To), string(sites), string(areas),
			string(r.Status), r.OwnerToken, string(r.CreatedBy), micros(r.CreatedAt), r.Nonce, r.OwnerOffice, string(hosts), string(codes), indexScopeOf(r))
		if err != nil {
			return s.errorf(err, "insert trace request")
		}
		return s.audit(ctx, tx, r.CreatedAt, actor, r.ID, registry.RequestCreated{Office: r.Office, From: r.From, To: r.To, Sites: nonNil(r.Sites), Areas: nonNil(r.Areas),
			Appointments: r.Appointments})
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
WHERE (? = '' OR status = ?) AND (? = '' OR owner_token = ?) AND (? = '' OR owner_office = ?) ORDER BY created_at DESC, id DESC`)
	err := s.read.SelectContext(ctx, &rows, q, string(f.Status), string(f.Status), f.OwnerToken, f.OwnerToken, f.OwnerOffice, f.OwnerOffice)
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

// openTraceRequest finds a request that is still pending or approved, or
// returns ECONFLICT saying it can no longer be done (withdrawn, narrowed).
func (s *Store) openTraceRequest(ctx context.Context, tx *sqlx.Tx, id, done string) (*registry.TraceRequest, error) {
	r, err := s.findTraceRequest(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != registry.TracePending && r.Status != registry.TraceApproved {
		return nil, registry.Errorf(registry.ECONFLICT, "The request is %s; it can no longer be %s.", r.Status, done)
	}
	return r, nil
}

// WithdrawTraceRequest withdraws a request; see registry.TraceStore.
func (s *Store) WithdrawTraceRequest(ctx context.Context, actor registry.Actor, id string, now time.Time) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	var r *registry.TraceRequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.openTraceRequest(ctx, tx, id, "withdrawn"); err != nil {
			return err
		}
		old := r.Status
		r.Status, r.ExpiresAt = registry.TraceWithdrawn, nil
		err = s.update(ctx, tx, "The request changed concurrently.", `UPDATE trace_requests SET status = ?, expires_at = NULL,
closed_at = ? WHERE id = ? AND status = ?`, string(r.Status), micros(now), id, string(old))
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, now, actor, id, registry.RequestWithdrawn{})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// NarrowTraceRequest narrows a request; see registry.TraceStore.
func (s *Store) NarrowTraceRequest(ctx context.Context, actor registry.Actor, id string, n registry.Narrowing, now time.Time) (*registry.TraceRequest, error) {
	now = utcMicro(now)
	var r *registry.TraceRequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.openTraceRequest(ctx, tx, id, "narrowed"); err != nil {
			return err
		}
		if err := r.Narrow(n); err != nil {
			return err
		}
		old := r.Status
		r.Status, r.ExpiresAt = registry.TracePending, nil
		sites, _ := json.Marshal(nonNil(r.Sites))
		areas, _ := json.Marshal(nonNil(r.Areas))
		err = s.update(ctx, tx, "The request changed concurrently.", `UPDATE trace_requests SET window_from = ?, window_to = ?,
sites = ?, areas = ?, status = ?, expires_at = NULL WHERE id = ? AND status = ?`,
			micros(r.From), micros(r.To), string(sites), string(areas), string(r.Status), id, string(old))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE trace_approvals SET withdrawn_at = ? WHERE request_id = ? AND withdrawn_at IS NULL`), micros(now), id); err != nil {
			return s.errorf(err, "withdraw approvals")
		}
		for _, a := range r.Approvals {
			if a.WithdrawnAt == nil {
				a.WithdrawnAt = &now
			}
		}
		return s.audit(ctx, tx, now, actor, id, registry.RequestNarrowed{From: r.From, To: r.To, Sites: nonNil(r.Sites), Areas: nonNil(r.Areas)})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ScopeSummary counts a request's scope; see registry.TraceStore.
func (s *Store) ScopeSummary(ctx context.Context, r *registry.TraceRequest, maxStay time.Duration) ([]registry.ScopeCount, error) {
	query, args, err := scopeQuery(`site, area, check_in / 3600000000 AS hour, count(*) AS n`, r, maxStay, false)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Site string `db:"site"`
		Area string `db:"area"`
		Hour int64  `db:"hour"`
		N    int    `db:"n"`
	}
	if err := s.read.SelectContext(ctx, &rows, s.rebind(query+` GROUP BY site, area, hour ORDER BY site, area, hour`), args...); err != nil {
		return nil, s.errorf(err, "summarise scope")
	}
	out := make([]registry.ScopeCount, len(rows))
	for i, row := range rows {
		out[i] = registry.ScopeCount{Site: row.Site, Area: row.Area, Hour: time.Unix(row.Hour*3600, 0).UTC(), Visits: row.N}
	}
	return out, nil
}
