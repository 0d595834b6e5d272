package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type tokenRow struct {
	ID        string        `db:"id"`
	Role      string        `db:"role"`
	Site      string        `db:"site"`
	Office    string        `db:"office"`
	Label     string        `db:"label"`
	Hash      []byte        `db:"hash"`
	CreatedAt int64         `db:"created_at"`
	RevokedAt sql.NullInt64 `db:"revoked_at"`
	ExpiresAt sql.NullInt64 `db:"expires_at"`
}

func (r *tokenRow) token() *registry.Token {
	return &registry.Token{
		ID: r.ID, Role: registry.Role(r.Role), Site: r.Site, Office: r.Office, Label: r.Label, Hash: r.Hash,
		CreatedAt: fromMicros(r.CreatedAt), RevokedAt: fromNullMicros(r.RevokedAt), ExpiresAt: fromNullMicros(r.ExpiresAt),
	}
}

const tokenColumns = `id, role, site, office, label, hash, created_at, revoked_at, expires_at`

// CreateToken stores t with an AuditTokenCreated event (role and site, never
// the hash). EINVALID without id or hash, ECONFLICT for a duplicate id or
// hash.
func (s *Store) CreateToken(ctx context.Context, actor registry.Actor, t *registry.Token) error {
	if t.ID == "" || len(t.Hash) == 0 || t.Role == "" {
		return registry.Errorf(registry.EINVALID, "A token needs an id, a role and a hash.")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	t.CreatedAt = utcMicro(t.CreatedAt)
	if t.ExpiresAt != nil {
		exp := utcMicro(*t.ExpiresAt)
		if !exp.After(t.CreatedAt) {
			return registry.Errorf(registry.EINVALID, "A token must expire after it is created.")
		}
		t.ExpiresAt = &exp
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			t.ID, string(t.Role), t.Site, t.Office, t.Label, t.Hash, micros(t.CreatedAt), nullMicros(t.RevokedAt), nullMicros(t.ExpiresAt))
		if err != nil {
			return s.errorf(err, "insert token")
		}
		return s.audit(ctx, tx, t.CreatedAt, actor, t.ID, registry.TokenCreated{Role: t.Role, Site: t.Site, Office: t.Office, ExpiresAt: t.ExpiresAt})
	})
}

// FindTokenByHash returns the token with the hash, revoked or not, or
// ENOTFOUND.
func (s *Store) FindTokenByHash(ctx context.Context, hash []byte) (*registry.Token, error) {
	var row tokenRow
	err := s.read.GetContext(ctx, &row, s.rebind(`SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`), hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Token not found.")
	} else if err != nil {
		return nil, s.errorf(err, "find token")
	}
	return row.token(), nil
}

// Tokens lists all tokens, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]*registry.Token, error) {
	var rows []tokenRow
	if err := s.read.SelectContext(ctx, &rows, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`); err != nil {
		return nil, s.errorf(err, "list tokens")
	}
	tokens := make([]*registry.Token, len(rows))
	for i := range rows {
		tokens[i] = rows[i].token()
	}
	return tokens, nil
}

// RevokeToken revokes a token with an AuditTokenRevoked event. ENOTFOUND for
// an unknown id, ECONFLICT when it is already revoked.
func (s *Store) RevokeToken(ctx context.Context, actor registry.Actor, id string, at time.Time) error {
	at = utcMicro(at)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var revoked sql.NullInt64
		err := tx.GetContext(ctx, &revoked, s.rebind(`SELECT revoked_at FROM tokens WHERE id = ?`), id)
		if errors.Is(err, sql.ErrNoRows) {
			return registry.Errorf(registry.ENOTFOUND, "Token %s not found.", id)
		} else if err != nil {
			return s.errorf(err, "read token")
		} else if revoked.Valid {
			return registry.Errorf(registry.ECONFLICT, "Token %s is already revoked.", id)
		}
		err = s.update(ctx, tx, "The token is already revoked.", `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, at, actor, id, registry.TokenRevoked{})
	})
}
