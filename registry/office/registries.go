package office

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

type registryRow struct {
	ID              string        `db:"id"`
	Name            string        `db:"name"`
	URL             string        `db:"url"`
	Token           []byte        `db:"token"`
	Trust           []byte        `db:"trust"`
	TrustDigest     string        `db:"trust_digest"`
	ConfirmedDigest string        `db:"confirmed_digest"`
	ConfirmedBy     string        `db:"confirmed_by"`
	ConfirmedAt     sql.NullInt64 `db:"confirmed_at"`
	Sites           string        `db:"sites"`
	SitesAt         sql.NullInt64 `db:"sites_at"`
	CreatedAt       int64         `db:"created_at"`
}

const registryColumns = `id, name, url, token, trust, trust_digest, confirmed_digest, confirmed_by, confirmed_at, sites, sites_at, created_at`

func (s *Store) registryOf(row *registryRow) (*Registry, error) {
	token, err := s.open(row.ID, row.Token)
	if err != nil {
		return nil, err
	}
	r := &Registry{ID: row.ID, Name: row.Name, URL: row.URL, Token: token, Trust: row.Trust, TrustDigest: row.TrustDigest,
		ConfirmedDigest: row.ConfirmedDigest, ConfirmedBy: row.ConfirmedBy, ConfirmedAt: timePtr(row.ConfirmedAt),
		SitesAt: timePtr(row.SitesAt), CreatedAt: fromMicros(row.CreatedAt)}
	if err := json.Unmarshal([]byte(row.Sites), &r.Sites); err != nil {
		return nil, fmt.Errorf("sites of registry %s: %w", row.ID, err)
	}
	return r, nil
}

// ParseTrustFile checks a trust file (as 'registry trust export' writes
// it) and returns its digest.
func ParseTrustFile(data []byte) (string, error) {
	t, err := export.ParseTrust(bytes.NewReader(data), "trust file")
	if err != nil {
		return "", err
	}
	return t.Digest(), nil
}

// checkRegistry validates what a clerk entered for a registry.
func checkRegistry(name, rawURL, token string) (string, error) {
	name, err := registry.CleanText("name", name)
	if err != nil {
		return "", err
	}
	if name == "" || len([]rune(name)) > 120 {
		return "", registry.FieldError("name", "Give the registry a name (at most 120 characters), for example \"Rathaus Musterstadt\".")
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", registry.FieldError("url", "The address must be the registry's https:// address, for example https://besuch.musterstadt.de.")
	}
	if token = strings.TrimSpace(token); token == "" || len(token) > 200 || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", registry.FieldError("token", "The token is the one line the registry's IT created with 'registry tokens create --role health-office'.")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// AddRegistry adds a registry to the directory, its trust file not yet
// confirmed. ECONFLICT for a name in use.
func (s *Store) AddRegistry(ctx context.Context, actor string, name, rawURL, token string, trust []byte) (*Registry, error) {
	u, err := checkRegistry(name, rawURL, token)
	if err != nil {
		return nil, err
	}
	digest, err := ParseTrustFile(trust)
	if err != nil {
		return nil, registry.FieldError("trust", "The trust file does not read: %s", registry.ErrorMessage(err))
	}
	name, _ = registry.CleanText("name", name)
	r := &Registry{ID: slug(name), Name: name, URL: u, Token: strings.TrimSpace(token), Trust: trust, TrustDigest: digest, CreatedAt: s.now()}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM registries WHERE name = ?`, name); err != nil {
			return err
		} else if n > 0 {
			return registry.FieldError("name", "A registry named %q is in the directory already.", name)
		}
		for base, i := r.ID, 2; ; i++ {
			if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM registries WHERE id = ?`, r.ID); err != nil {
				return err
			} else if n == 0 {
				break
			}
			r.ID = fmt.Sprintf("%s-%d", base, i)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO registries (id, name, url, token, trust, trust_digest, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Name, r.URL, s.seal(r.ID, r.Token), r.Trust, r.TrustDigest, micros(r.CreatedAt))
		if err != nil {
			return err
		}
		return s.logTx(ctx, tx, actor, "registry.added", r.ID, map[string]string{"name": r.Name, "url": r.URL, "trust_digest": r.TrustDigest})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Registries lists the directory by name.
func (s *Store) Registries(ctx context.Context) ([]*Registry, error) {
	var rows []registryRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+registryColumns+` FROM registries ORDER BY name`); err != nil {
		return nil, err
	}
	out := make([]*Registry, 0, len(rows))
	for i := range rows {
		r, err := s.registryOf(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Registry returns one registry; ENOTFOUND for an unknown id.
func (s *Store) Registry(ctx context.Context, id string) (*Registry, error) {
	var row registryRow
	err := s.db.GetContext(ctx, &row, `SELECT `+registryColumns+` FROM registries WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "There is no registry %q in the directory.", id)
	} else if err != nil {
		return nil, err
	}
	return s.registryOf(&row)
}

// normDigest is a digest as a clerk may type it: without dashes and
// spaces, in lower case.
func normDigest(d string) string {
	return strings.ToLower(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(strings.TrimSpace(d)))
}

// ConfirmTrust records that a clerk compared the registry's trust-file
// digest on the phone with the registry's DPO. digest must be the current
// one (EINVALID otherwise: the file changed while the clerk looked).
func (s *Store) ConfirmTrust(ctx context.Context, actor, id, digest string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var current string
		if err := tx.GetContext(ctx, &current, `SELECT trust_digest FROM registries WHERE id = ?`, id); errors.Is(err, sql.ErrNoRows) {
			return registry.Errorf(registry.ENOTFOUND, "There is no registry %q in the directory.", id)
		} else if err != nil {
			return err
		}
		if normDigest(digest) != normDigest(current) {
			return registry.FieldError("digest", "This is not the digest of the registry's trust file; compare again.")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE registries SET confirmed_digest = ?, confirmed_by = ?, confirmed_at = ? WHERE id = ?`,
			current, actor, micros(s.now()), id); err != nil {
			return err
		}
		return s.logTx(ctx, tx, actor, "registry.trust_confirmed", id, map[string]string{"trust_digest": current})
	})
}

// ReplaceTrust stores a changed trust file (new approvers, a new
// instance key); it must be confirmed again before bundles are opened.
func (s *Store) ReplaceTrust(ctx context.Context, actor, id string, trust []byte) (string, error) {
	digest, err := ParseTrustFile(trust)
	if err != nil {
		return "", registry.FieldError("trust", "The trust file does not read: %s", registry.ErrorMessage(err))
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE registries SET trust = ?, trust_digest = ? WHERE id = ?`, trust, digest, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return registry.Errorf(registry.ENOTFOUND, "There is no registry %q in the directory.", id)
		}
		return s.logTx(ctx, tx, actor, "registry.trust_replaced", id, map[string]string{"trust_digest": digest})
	})
	return digest, err
}

// SetToken replaces the office's token for a registry.
func (s *Store) SetToken(ctx context.Context, actor, id, token string) error {
	if token = strings.TrimSpace(token); token == "" {
		return registry.FieldError("token", "The token is empty.")
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE registries SET token = ? WHERE id = ?`, s.seal(id, token), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return registry.Errorf(registry.ENOTFOUND, "There is no registry %q in the directory.", id)
		}
		return s.logTx(ctx, tx, actor, "registry.token_replaced", id, map[string]string{})
	})
}

// SetSites stores the sites a registry listed.
func (s *Store) SetSites(ctx context.Context, id string, sites []RemoteSite) error {
	_, err := s.db.ExecContext(ctx, `UPDATE registries SET sites = ?, sites_at = ? WHERE id = ?`, toJSON(sites), micros(s.now()), id)
	return err
}

// RemoveRegistry removes a registry no open case uses.
func (s *Store) RemoveRegistry(ctx context.Context, actor, id string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM requests WHERE registry_id = ?`, id); err != nil {
			return err
		} else if n > 0 {
			return registry.Errorf(registry.ECONFLICT, "Cases still hold requests to this registry; it goes with them (retention) or when they are deleted.")
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM registries WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return registry.Errorf(registry.ENOTFOUND, "There is no registry %q in the directory.", id)
		}
		return s.logTx(ctx, tx, actor, "registry.removed", id, map[string]string{})
	})
}
