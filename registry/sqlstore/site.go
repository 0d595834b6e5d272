package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// PutSite stores a new site or replaces one, with an AuditSiteChanged
// event; see registry.SiteStore.
func (s *Store) PutSite(ctx context.Context, actor registry.Actor, site *registry.Site, create bool) error {
	if err := site.Validate(); err != nil {
		return err
	}
	now := s.now()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		old, err := s.site(ctx, tx, site.Code)
		switch {
		case create && err == nil:
			return registry.Errorf(registry.ECONFLICT, "The site %s exists already.", site.Code)
		case !create && registry.ErrorCode(err) == registry.ENOTFOUND:
			return registry.Errorf(registry.ENOTFOUND, "There is no site %s.", site.Code)
		case err != nil && registry.ErrorCode(err) != registry.ENOTFOUND:
			return err
		}
		change := "created"
		if create {
			site.CreatedAt = now
		} else {
			site.CreatedAt, change = old.CreatedAt, "updated"
		}
		config, err := json.Marshal(site)
		if err != nil {
			return fmt.Errorf("encode site: %w", err)
		}
		if create {
			_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO sites (code, config, created_at, updated_at) VALUES (?, ?, ?, ?)`),
				site.Code, string(config), micros(now), micros(now))
		} else {
			_, err = tx.ExecContext(ctx, s.rebind(`UPDATE sites SET config = ?, updated_at = ? WHERE code = ?`), string(config), micros(now), site.Code)
		}
		if err != nil {
			return s.errorf(err, "store site")
		}
		return s.audit(ctx, tx, now, actor, site.Code, registry.SiteChanged{Change: change, Site: site})
	})
}

// Site returns a site, or ENOTFOUND.
func (s *Store) Site(ctx context.Context, code string) (*registry.Site, error) {
	return s.site(ctx, s.read, code)
}

func (s *Store) site(ctx context.Context, q sqlx.QueryerContext, code string) (*registry.Site, error) {
	var row siteRow
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT code, config, created_at FROM sites WHERE code = ?`), code)
	if err != nil {
		if registry.ErrorCode(s.errorf(err, "")) == registry.ENOTFOUND {
			return nil, registry.Errorf(registry.ENOTFOUND, "There is no site %s.", code)
		}
		return nil, s.errorf(err, "read site")
	}
	return row.site()
}

// Sites lists every site by code.
func (s *Store) Sites(ctx context.Context) ([]*registry.Site, error) {
	var rows []siteRow
	if err := s.read.SelectContext(ctx, &rows, `SELECT code, config, created_at FROM sites ORDER BY code`); err != nil {
		return nil, s.errorf(err, "list sites")
	}
	sites := make([]*registry.Site, len(rows))
	for i := range rows {
		var err error
		if sites[i], err = rows[i].site(); err != nil {
			return nil, err
		}
	}
	return sites, nil
}

// RemoveSite removes a site with an AuditSiteChanged event.
func (s *Store) RemoveSite(ctx context.Context, actor registry.Actor, code string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM sites WHERE code = ?`), code)
		if err != nil {
			return s.errorf(err, "remove site")
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.errorf(err, "remove site")
		} else if n == 0 {
			return registry.Errorf(registry.ENOTFOUND, "There is no site %s.", code)
		}
		return s.audit(ctx, tx, time.Time{}, actor, code, registry.SiteChanged{Change: "removed"})
	})
}

type siteRow struct {
	Code      string `db:"code"`
	Config    string `db:"config"`
	CreatedAt int64  `db:"created_at"`
}

func (r *siteRow) site() (*registry.Site, error) {
	var site registry.Site
	if err := json.Unmarshal([]byte(r.Config), &site); err != nil {
		return nil, fmt.Errorf("site %s: stored configuration unreadable: %w", r.Code, err)
	}
	site.Code, site.CreatedAt = r.Code, fromMicros(r.CreatedAt)
	if site.Name == "" {
		site.Name = site.Code
	}
	return &site, nil
}
