package office

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// User is a clerk who signs in to the workspace when it listens beyond
// the local machine.
type User struct {
	Login, Name  string
	PasswordHash string
	CreatedAt    time.Time
}

// Session lengths: idle and at most.
const (
	sessionIdle = 30 * time.Minute
	sessionMax  = 10 * time.Hour
)

// AddUser adds a clerk with a new random password, which it returns.
func (s *Store) AddUser(ctx context.Context, actor, login, name string) (string, error) {
	if !registry.ValidLogin(login) {
		return "", registry.FieldError("login", "A login is 2 to 32 lowercase letters, digits, '.', '_' or '-'.")
	}
	name, err := registry.CleanText("name", name)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", registry.FieldError("name", "Give the clerk's name.")
	}
	pw := registry.NewPassword()
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM users WHERE login = ?`, login); err != nil {
			return err
		} else if n > 0 {
			return registry.Errorf(registry.ECONFLICT, "The login %s is taken.", login)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (login, name, password_hash, created_at) VALUES (?, ?, ?, ?)`,
			login, name, crypto.HashPassword(pw), micros(s.now())); err != nil {
			return err
		}
		return s.logTx(ctx, tx, actor, "user.added", login, map[string]string{})
	})
	if err != nil {
		return "", err
	}
	return pw, nil
}

// RemoveUser removes a clerk and ends their sessions.
func (s *Store) RemoveUser(ctx context.Context, actor, login string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE login = ?`, login)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return registry.Errorf(registry.ENOTFOUND, "There is no clerk %s.", login)
		}
		return s.logTx(ctx, tx, actor, "user.removed", login, map[string]string{})
	})
}

// Users lists the clerks.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	var rows []struct {
		Login     string `db:"login"`
		Name      string `db:"name"`
		CreatedAt int64  `db:"created_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT login, name, created_at FROM users ORDER BY login`); err != nil {
		return nil, err
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = User{Login: r.Login, Name: r.Name, CreatedAt: fromMicros(r.CreatedAt)}
	}
	return out, nil
}

// HasUsers reports whether any clerk exists.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM users`)
	return n > 0, err
}

// SignIn checks a clerk's password and starts a session: the cookie's
// secret, or "" for a wrong login or password (recorded in the log,
// without what was typed).
func (s *Store) SignIn(ctx context.Context, login, pw string) (secret string, err error) {
	var hash string
	err = s.db.GetContext(ctx, &hash, `SELECT password_hash FROM users WHERE login = ?`, login)
	ok := false
	switch {
	case errors.Is(err, sql.ErrNoRows):
		crypto.VerifyNothing(pw)
	case err != nil:
		return "", err
	default:
		ok = crypto.VerifyPassword(hash, pw)
	}
	if !ok {
		subject := ""
		if hash != "" {
			subject = login
		}
		return "", s.Log(ctx, "anonymous", "signin.failed", subject, map[string]string{})
	}
	secret, sh := registry.NewSessionSecret()
	now := s.now()
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE last_seen <= ? OR created_at <= ?`, micros(now.Add(-sessionIdle)), micros(now.Add(-sessionMax))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, login, created_at, last_seen) VALUES (?, ?, ?, ?)`, sh, login, micros(now), micros(now))
		return err
	})
	return secret, err
}

// Session returns the clerk of a session cookie's secret, "" when it is
// unknown or ended; it keeps the session alive.
func (s *Store) Session(ctx context.Context, secret string) (*User, error) {
	h := registry.HashSessionSecret(secret)
	var row struct {
		Login     string `db:"login"`
		Name      string `db:"name"`
		CreatedAt int64  `db:"created_at"`
		LastSeen  int64  `db:"last_seen"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT u.login, u.name, s.created_at, s.last_seen FROM sessions s JOIN users u ON u.login = s.login WHERE s.hash = ?`, h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if now.Sub(fromMicros(row.LastSeen)) >= sessionIdle || now.Sub(fromMicros(row.CreatedAt)) >= sessionMax {
		return nil, nil
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE hash = ?`, micros(now), h); err != nil {
		return nil, err
	}
	return &User{Login: row.Login, Name: row.Name}, nil
}

// EndSession ends a session.
func (s *Store) EndSession(ctx context.Context, secret string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, registry.HashSessionSecret(secret))
	return err
}
