package office

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// Scope is what a case asks of one registry: sites (none: every site),
// areas of those sites (none: all), and, where the office knows them,
// hosts and appointment codes.
type Scope struct {
	RegistryID   string
	Sites        []string
	Areas        []string
	Hosts        []string
	Appointments []string
	// Index are the index case's codes: a visitor slip's code, an
	// appointment's code, or a visit's id read from a slip's QR code.
	Index []string
}

// CaseInput is a new case.
type CaseInput struct {
	Ref, LegalBasis, Contact string
	From, To                 time.Time
	Scopes                   []Scope
}

// check validates the case; the registries check the window against
// their retention when the requests are filed.
func (in *CaseInput) check(now time.Time) error {
	var errs []error
	for _, f := range []struct {
		field string
		value *string
		max   int
	}{{"ref", &in.Ref, 100}, {"legal_basis", &in.LegalBasis, 300}, {"contact", &in.Contact, 300}} {
		v, err := registry.CleanText(f.field, *f.value)
		switch {
		case err != nil:
			errs = append(errs, err)
		case v == "":
			errs = append(errs, registry.FieldError(f.field, "This is required."))
		case len([]rune(v)) > f.max:
			errs = append(errs, registry.FieldError(f.field, "At most %d characters.", f.max))
		}
		*f.value = v
	}
	switch {
	case in.From.IsZero() || in.To.IsZero():
		errs = append(errs, registry.FieldError("from", "Give the window: from and to."))
	case !in.From.Before(in.To):
		errs = append(errs, registry.FieldError("to", "The window must end after it starts."))
	case in.To.After(now.Add(time.Minute)):
		errs = append(errs, registry.FieldError("to", "The window may not end in the future."))
	}
	if len(in.Scopes) == 0 {
		errs = append(errs, registry.FieldError("registries", "Choose at least one registry."))
	}
	return registry.Invalid(errs...)
}

// CreateCase stores a case and one request per scope, to be filed by
// the next sync.
func (s *Store) CreateCase(ctx context.Context, actor string, in *CaseInput) (*Case, error) {
	now := s.now()
	if err := in.check(now); err != nil {
		return nil, err
	}
	c := &Case{ID: registry.NewID(), Ref: in.Ref, LegalBasis: in.LegalBasis, Contact: in.Contact,
		From: in.From.UTC().Truncate(time.Microsecond), To: in.To.UTC().Truncate(time.Microsecond), CreatedBy: actor, CreatedAt: now}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cases (id, ref, legal_basis, contact, from_at, to_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Ref, c.LegalBasis, c.Contact, micros(c.From), micros(c.To), c.CreatedBy, micros(c.CreatedAt)); err != nil {
			return err
		}
		var names []string
		for _, sc := range in.Scopes {
			var name string
			if err := tx.GetContext(ctx, &name, `SELECT name FROM registries WHERE id = ?`, sc.RegistryID); errors.Is(err, sql.ErrNoRows) {
				return registry.FieldError("registries", "There is no registry %q in the directory.", sc.RegistryID)
			} else if err != nil {
				return err
			}
			r := &Request{ID: registry.NewID(), CaseID: c.ID, RegistryID: sc.RegistryID, Sites: nonNil(sc.Sites), Areas: nonNil(sc.Areas),
				Hosts: nonNil(sc.Hosts), Appointments: nonNil(sc.Appointments), Index: nonNil(sc.Index), Status: StatusFiling, NextCheck: now, UpdatedAt: now}
			if err := insertRequest(ctx, tx, r); err != nil {
				return err
			}
			c.Requests = append(c.Requests, r)
			names = append(names, name)
		}
		return s.logTx(ctx, tx, actor, "case.created", c.ID, map[string]string{"ref": c.Ref, "registries": strings.Join(names, ", "),
			"from": c.From.Format(time.RFC3339), "to": c.To.Format(time.RFC3339)})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func nonNil(list []string) []string {
	out := []string{}
	for _, v := range list {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

type caseRow struct {
	ID         string `db:"id"`
	Ref        string `db:"ref"`
	LegalBasis string `db:"legal_basis"`
	Contact    string `db:"contact"`
	From       int64  `db:"from_at"`
	To         int64  `db:"to_at"`
	CreatedBy  string `db:"created_by"`
	CreatedAt  int64  `db:"created_at"`
}

func (r *caseRow) caseOf() *Case {
	return &Case{ID: r.ID, Ref: r.Ref, LegalBasis: r.LegalBasis, Contact: r.Contact, From: fromMicros(r.From), To: fromMicros(r.To),
		CreatedBy: r.CreatedBy, CreatedAt: fromMicros(r.CreatedAt)}
}

type requestRow struct {
	ID           string        `db:"id"`
	CaseID       string        `db:"case_id"`
	RegistryID   string        `db:"registry_id"`
	RemoteID     string        `db:"remote_id"`
	Sites        string        `db:"sites"`
	Areas        string        `db:"areas"`
	Hosts        string        `db:"hosts"`
	Appointments string        `db:"appointments"`
	IndexCodes   string        `db:"index_codes"`
	Status       string        `db:"status"`
	Note         string        `db:"note"`
	FiledAt      sql.NullInt64 `db:"filed_at"`
	CheckedAt    sql.NullInt64 `db:"checked_at"`
	NextCheck    int64         `db:"next_check"`
	Failures     int           `db:"failures"`
	ExportDigest string        `db:"export_digest"`
	DownloadedAt sql.NullInt64 `db:"downloaded_at"`
	UpdatedAt    int64         `db:"updated_at"`
}

const requestColumns = `id, case_id, registry_id, remote_id, sites, areas, hosts, appointments, index_codes, status, note, filed_at, checked_at, next_check, failures, export_digest, downloaded_at, updated_at`

// insertRequest stores a new request to be filed.
func insertRequest(ctx context.Context, tx *sqlx.Tx, r *Request) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO requests (id, case_id, registry_id, sites, areas, hosts, appointments, index_codes, status, next_check, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.CaseID, r.RegistryID, toJSON(r.Sites), toJSON(r.Areas), toJSON(r.Hosts), toJSON(r.Appointments),
		toJSON(nonNil(r.Index)), r.Status, micros(r.NextCheck), micros(r.UpdatedAt))
	return err
}

func (r *requestRow) requestOf() *Request {
	q := &Request{ID: r.ID, CaseID: r.CaseID, RegistryID: r.RegistryID, RemoteID: r.RemoteID, Status: Status(r.Status), Note: r.Note,
		FiledAt: timePtr(r.FiledAt), CheckedAt: timePtr(r.CheckedAt), NextCheck: fromMicros(r.NextCheck), Failures: r.Failures,
		ExportDigest: r.ExportDigest, DownloadedAt: timePtr(r.DownloadedAt), UpdatedAt: fromMicros(r.UpdatedAt)}
	for _, f := range []struct {
		text string
		dst  *[]string
	}{{r.Sites, &q.Sites}, {r.Areas, &q.Areas}, {r.Hosts, &q.Hosts}, {r.Appointments, &q.Appointments}, {r.IndexCodes, &q.Index}} {
		json.Unmarshal([]byte(f.text), f.dst)
	}
	return q
}

// Cases lists the cases, newest first, with their requests.
func (s *Store) Cases(ctx context.Context) ([]*Case, error) {
	var rows []caseRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, ref, legal_basis, contact, from_at, to_at, created_by, created_at FROM cases ORDER BY created_at DESC`); err != nil {
		return nil, err
	}
	var reqs []requestRow
	if err := s.db.SelectContext(ctx, &reqs, `SELECT `+requestColumns+` FROM requests ORDER BY registry_id, id`); err != nil {
		return nil, err
	}
	byCase := map[string]*Case{}
	out := make([]*Case, 0, len(rows))
	for i := range rows {
		c := rows[i].caseOf()
		byCase[c.ID] = c
		out = append(out, c)
	}
	for i := range reqs {
		if c := byCase[reqs[i].CaseID]; c != nil {
			c.Requests = append(c.Requests, reqs[i].requestOf())
		}
	}
	return out, nil
}

// Case returns one case with its requests; ENOTFOUND for an unknown id.
func (s *Store) Case(ctx context.Context, id string) (*Case, error) {
	var row caseRow
	err := s.db.GetContext(ctx, &row, `SELECT id, ref, legal_basis, contact, from_at, to_at, created_by, created_at FROM cases WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "There is no such case (deleted after the retention period?).")
	} else if err != nil {
		return nil, err
	}
	c := row.caseOf()
	var reqs []requestRow
	if err := s.db.SelectContext(ctx, &reqs, `SELECT `+requestColumns+` FROM requests WHERE case_id = ? ORDER BY registry_id, id`, id); err != nil {
		return nil, err
	}
	for i := range reqs {
		c.Requests = append(c.Requests, reqs[i].requestOf())
	}
	return c, nil
}

// DueRequests are the requests whose next check is due at now.
func (s *Store) DueRequests(ctx context.Context, now time.Time) ([]*Request, error) {
	var rows []requestRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+requestColumns+` FROM requests WHERE next_check <= ? AND status NOT IN ('rejected','expired','withdrawn','exported','downloaded','refused','lost') ORDER BY next_check`,
		micros(now)); err != nil {
		return nil, err
	}
	out := make([]*Request, len(rows))
	for i := range rows {
		out[i] = rows[i].requestOf()
	}
	return out, nil
}

// SaveRequest stores a request's new state; a changed status is a notice
// for the clerk (text) and a log entry.
func (s *Store) SaveRequest(ctx context.Context, r *Request, old Status, notice string) error {
	r.UpdatedAt = s.now()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE requests SET remote_id = ?, status = ?, note = ?, filed_at = ?, checked_at = ?, next_check = ?, failures = ?,
export_digest = ?, downloaded_at = ?, updated_at = ? WHERE id = ?`, r.RemoteID, r.Status, r.Note, nullMicros(r.FiledAt), nullMicros(r.CheckedAt),
			micros(r.NextCheck), r.Failures, r.ExportDigest, nullMicros(r.DownloadedAt), micros(r.UpdatedAt), r.ID)
		if err != nil || r.Status == old {
			return err
		}
		if notice != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notices (at, case_id, text) VALUES (?, ?, ?)`, micros(r.UpdatedAt), r.CaseID, notice); err != nil {
				return err
			}
		}
		return s.logTx(ctx, tx, "system", "request."+string(r.Status), r.ID, map[string]string{"case": r.CaseID, "registry": r.RegistryID, "remote_id": r.RemoteID, "was": string(old)})
	})
}

// Notices returns the newest notices, at most limit.
func (s *Store) Notices(ctx context.Context, limit int) ([]Notice, error) {
	var rows []struct {
		ID     int64  `db:"id"`
		At     int64  `db:"at"`
		CaseID string `db:"case_id"`
		Text   string `db:"text"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, at, case_id, text FROM notices ORDER BY id DESC LIMIT ?`, limit); err != nil {
		return nil, err
	}
	out := make([]Notice, len(rows))
	for i, r := range rows {
		out[i] = Notice{ID: r.ID, At: fromMicros(r.At), CaseID: r.CaseID, Text: r.Text}
	}
	return out, nil
}

// BundlePath is where the bundle of a request is kept.
func (s *Store) BundlePath(requestID string) string {
	return filepath.Join(s.Dir, bundlesDir, requestID+".registry-export.age")
}

// DeleteCase deletes a case, its requests, notices and bundles, with a
// log entry giving the reason ("retention", or who deleted it).
func (s *Store) DeleteCase(ctx context.Context, actor, id, reason string) error {
	c, err := s.Case(ctx, id)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{`DELETE FROM notices WHERE case_id = ?`, `DELETE FROM requests WHERE case_id = ?`, `DELETE FROM cases WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return s.logTx(ctx, tx, actor, "case.deleted", id, map[string]string{"ref": c.Ref, "reason": reason, "requests": fmt.Sprint(len(c.Requests))})
	})
	if err != nil {
		return err
	}
	for _, r := range c.Requests {
		if err := os.Remove(s.BundlePath(r.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the bundle of request %s: %w", r.ID, err)
		}
	}
	return nil
}

// Expired returns the cases created before cutoff.
func (s *Store) Expired(ctx context.Context, cutoff time.Time) ([]string, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT id FROM cases WHERE created_at < ? ORDER BY created_at`, micros(cutoff))
	return ids, err
}

// DefaultRetention is how long the workspace keeps a case: six months,
// as IRIS connect did.
const DefaultRetention = 183 * 24 * time.Hour

// Purge deletes every case created more than retention ago, with its
// bundles, and returns how many.
func (s *Store) Purge(ctx context.Context, retention time.Duration) (int, error) {
	ids, err := s.Expired(ctx, s.now().Add(-retention))
	if err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := s.DeleteCase(ctx, "system", id, "retention"); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}
