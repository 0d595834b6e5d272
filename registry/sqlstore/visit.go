package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type visitRow struct {
	ID           string        `db:"id"`
	Site         string        `db:"site"`
	Area         string        `db:"area"`
	CheckIn      int64         `db:"check_in"`
	CheckOut     sql.NullInt64 `db:"check_out"`
	CheckoutAuto bool          `db:"checkout_auto"`
	Epoch        string        `db:"epoch"`
	Sealed       []byte        `db:"sealed"`
	CreatedAt    int64         `db:"created_at"`
	IdemHash     []byte        `db:"idem_hash"`
	RequestMAC   []byte        `db:"request_mac"`
}

func (r *visitRow) visit() *registry.Visit {
	return &registry.Visit{
		ID: r.ID, Site: r.Site, Area: r.Area, CheckIn: fromMicros(r.CheckIn),
		CheckOut: fromNullMicros(r.CheckOut), CheckoutAuto: r.CheckoutAuto,
		Epoch: registry.Day(r.Epoch), Sealed: r.Sealed, CreatedAt: fromMicros(r.CreatedAt),
		IdempotencyHash: r.IdemHash, RequestMAC: r.RequestMAC,
	}
}

const visitColumns = `id, site, area, check_in, check_out, checkout_auto, epoch, sealed, created_at, idem_hash, request_mac`

// insertVisit does nothing (and affects no row) when the idempotency hash is
// already stored; a NULL hash never conflicts.
const insertVisit = `INSERT INTO visits (` + visitColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (idem_hash) DO NOTHING`

// CreateVisits stores the visits in one transaction with one
// AuditVisitsRegistered event counting the newly stored visits per site.
// Replays (a stored IdempotencyHash) are filled from the stored row and
// marked Replayed; when every visit is a replay no event is written.
// EINVALID for a visit without ID, site or check-in; ECONFLICT for a
// duplicate ID.
func (s *Store) CreateVisits(ctx context.Context, actor registry.Actor, visits []*registry.Visit) error {
	if len(visits) == 0 {
		return nil
	}
	now := s.now()
	for _, v := range visits {
		if err := prepareVisit(v, now); err != nil {
			return err
		}
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		sites, err := s.insertVisits(ctx, tx, visits)
		if err != nil || len(sites) == 0 {
			return err
		}
		n := 0
		for _, c := range sites {
			n += c
		}
		details := map[string]any{"count": n, "sites": sites}
		return s.audit(ctx, tx, entry{actor: actor, action: registry.AuditVisitsRegistered, at: now, details: details})
	})
}

func prepareVisit(v *registry.Visit, now time.Time) error {
	if v.ID == "" || v.Site == "" || v.CheckIn.IsZero() || len(v.Sealed) == 0 {
		return registry.Errorf(registry.EINVALID, "A visit needs an id, a site, a check-in and sealed contact data.")
	}
	v.CheckIn = utcMicro(v.CheckIn)
	if v.Epoch == "" {
		v.Epoch = registry.DayOf(v.CheckIn)
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = now
	}
	v.CreatedAt = utcMicro(v.CreatedAt)
	v.Replayed = false
	return nil
}

// insertVisits inserts the visits and returns the count of newly inserted
// visits per site. Batches reuse one prepared statement: on PostgreSQL an
// unprepared exec costs two round trips, a prepared one one, while the
// prepare and close cost two more (so single visits are not prepared).
func (s *Store) insertVisits(ctx context.Context, tx *sqlx.Tx, visits []*registry.Visit) (map[string]int, error) {
	query := s.rebind(insertVisit)
	exec := func(args ...any) (sql.Result, error) { return tx.ExecContext(ctx, query, args...) }
	if len(visits) > 1 {
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return nil, s.errorf(err, "prepare visit insert")
		}
		defer stmt.Close()
		exec = func(args ...any) (sql.Result, error) { return stmt.ExecContext(ctx, args...) }
	}
	sites := map[string]int{}
	for _, v := range visits {
		res, err := exec(v.ID, v.Site, v.Area, micros(v.CheckIn), nullMicros(v.CheckOut), v.CheckoutAuto,
			string(v.Epoch), v.Sealed, micros(v.CreatedAt), nullBytes(v.IdempotencyHash), nullBytes(v.RequestMAC))
		if err != nil {
			return nil, s.errorf(err, "insert visit")
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, s.errorf(err, "insert visit")
		} else if n == 1 {
			sites[v.Site]++
			continue
		}
		if err := s.replay(ctx, tx, v); err != nil {
			return nil, err
		}
	}
	return sites, nil
}

// replay overwrites v with the visit stored under its idempotency hash.
func (s *Store) replay(ctx context.Context, tx *sqlx.Tx, v *registry.Visit) error {
	var row visitRow
	q := s.rebind(`SELECT ` + visitColumns + ` FROM visits WHERE idem_hash = ?`)
	if err := tx.GetContext(ctx, &row, q, v.IdempotencyHash); err != nil {
		return s.errorf(err, "read replayed visit")
	}
	*v = *row.visit()
	v.Replayed = true
	return nil
}

// FindVisit returns a visit by id, Sealed included, or ENOTFOUND.
func (s *Store) FindVisit(ctx context.Context, id string) (*registry.Visit, error) {
	return s.findVisit(ctx, s.read, id)
}

func (s *Store) findVisit(ctx context.Context, q sqlx.QueryerContext, id string) (*registry.Visit, error) {
	var row visitRow
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT `+visitColumns+` FROM visits WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Visit not found.")
	} else if err != nil {
		return nil, s.errorf(err, "find visit")
	}
	return row.visit(), nil
}

// CheckOutVisit records the departure of an open visit. ENOTFOUND when
// there is no such visit, ECONFLICT when it is already checked out, EINVALID
// when at lies before the check-in.
func (s *Store) CheckOutVisit(ctx context.Context, id string, at time.Time) error {
	at = utcMicro(at)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		v, err := s.findVisit(ctx, tx, id)
		if err != nil {
			return err
		}
		if v.CheckOut != nil {
			return registry.Errorf(registry.ECONFLICT, "The visit is already checked out.")
		}
		if at.Before(v.CheckIn) {
			return registry.FieldError("check_out", "The check-out lies before the check-in.")
		}
		return s.update(ctx, tx, "The visit is already checked out.",
			`UPDATE visits SET check_out = ? WHERE id = ? AND check_out IS NULL`, micros(at), id)
	})
}

const settingCheckoutKey = "checkout_key"

// CheckoutKey returns the 32-byte checkout secret, creating it on first use.
// Concurrent first calls agree on one key.
func (s *Store) CheckoutKey(ctx context.Context) ([]byte, error) {
	key, err := s.setting(ctx, s.read, settingCheckoutKey)
	if registry.ErrorCode(err) != registry.ENOTFOUND {
		return key, err
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), settingCheckoutKey, fresh)
		if err != nil {
			return s.errorf(err, "store checkout key")
		}
		key, err = s.setting(ctx, tx, settingCheckoutKey)
		return err
	})
	return key, err
}

// setting returns a stored setting, or ENOTFOUND.
func (s *Store) setting(ctx context.Context, q sqlx.QueryerContext, name string) ([]byte, error) {
	var value []byte
	err := sqlx.GetContext(ctx, q, &value, s.rebind(`SELECT value FROM settings WHERE name = ?`), name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Setting %s not found.", name)
	}
	return value, s.errorf(err, "read setting")
}
