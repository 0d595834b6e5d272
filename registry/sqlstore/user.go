package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/names"
)

type userRow struct {
	Login         string        `db:"login"`
	Name          string        `db:"name"`
	Role          string        `db:"role"`
	Sites         string        `db:"sites"`
	PasswordHash  string        `db:"password_hash"`
	MustChange    bool          `db:"must_change"`
	FailedSignIns int           `db:"failed_sign_ins"`
	LockedUntil   sql.NullInt64 `db:"locked_until"`
	CreatedAt     int64         `db:"created_at"`
	DisabledAt    sql.NullInt64 `db:"disabled_at"`
	Host          string        `db:"host"`
}

const userColumns = `login, name, role, sites, password_hash, must_change, failed_sign_ins, locked_until, created_at, disabled_at, host`

func (r *userRow) user() *registry.User {
	return &registry.User{
		Login: r.Login, Name: r.Name, Role: registry.UserRole(r.Role), Sites: strings.Split(r.Sites, ","),
		PasswordHash: r.PasswordHash, MustChange: r.MustChange, FailedSignIns: r.FailedSignIns,
		LockedUntil: fromNullMicros(r.LockedUntil), CreatedAt: fromMicros(r.CreatedAt), DisabledAt: fromNullMicros(r.DisabledAt), Host: r.Host,
	}
}

// subjectOf is the audit subject naming an account: the commitment to its
// actor under the salt of the actor and month ("actor:" and hex), which
// the staff retention rule erases with the name; see registry.UserChanged.
func (s *Store) subjectOf(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, at time.Time) (string, error) {
	if err := s.dialect.LockAudit(ctx, tx); err != nil {
		return "", s.errorf(err, "lock audit log")
	}
	salt, err := s.actorSalt(ctx, tx, actor, at)
	if err != nil {
		return "", err
	}
	return "actor:" + hex.EncodeToString(registry.ActorCommitment(salt, actor)), nil
}

// auditUser appends the AuditUserChanged event of u.
func (s *Store) auditUser(ctx context.Context, tx *sqlx.Tx, actor registry.Actor, u *registry.User, p registry.AuditPayload) error {
	now := s.now()
	subject, err := s.subjectOf(ctx, tx, u.Actor(), now)
	if err != nil {
		return err
	}
	return s.audit(ctx, tx, now, actor, subject, p)
}

// CreateUser stores a new account; see registry.UserStore.
func (s *Store) CreateUser(ctx context.Context, actor registry.Actor, u *registry.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	u.CreatedAt = s.now()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.checkStaffName(ctx, tx, u); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			u.Login, u.Name, string(u.Role), strings.Join(u.Sites, ","), u.PasswordHash, u.MustChange, 0, nil, micros(u.CreatedAt), nil, u.Host)
		if registry.ErrorCode(s.errorf(err, "")) == registry.ECONFLICT {
			return registry.Errorf(registry.ECONFLICT, "The login %s is taken.", u.Login)
		} else if err != nil {
			return s.errorf(err, "create account")
		}
		return s.auditUser(ctx, tx, actor, u, registry.UserChanged{Change: "created", Role: u.Role, Sites: u.Sites})
	})
}

// checkStaffName refuses a staff name that mixes writing systems in a
// word or looks like another account's (names.CheckUnlike): the desk's
// lists and the audit log show names, and "Anna" must not pass for
// "Аnna".
func (s *Store) checkStaffName(ctx context.Context, q sqlx.QueryerContext, u *registry.User) error {
	var others []string
	if err := sqlx.SelectContext(ctx, q, &others, s.rebind(`SELECT name FROM users WHERE login <> ? AND name <> ''`), u.Login); err != nil {
		return s.errorf(err, "list account names")
	}
	return names.CheckUnlike("name", u.Name, others)
}

// User returns an account, or ENOTFOUND.
func (s *Store) User(ctx context.Context, login string) (*registry.User, error) {
	return s.user(ctx, s.read, login)
}

func (s *Store) user(ctx context.Context, q sqlx.QueryerContext, login string) (*registry.User, error) {
	var row userRow
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT `+userColumns+` FROM users WHERE login = ?`), login)
	if err != nil {
		if registry.ErrorCode(s.errorf(err, "")) == registry.ENOTFOUND {
			return nil, registry.Errorf(registry.ENOTFOUND, "There is no account %s.", login)
		}
		return nil, s.errorf(err, "read account")
	}
	return row.user(), nil
}

// Users lists every account by login.
func (s *Store) Users(ctx context.Context) ([]*registry.User, error) {
	var rows []userRow
	if err := s.read.SelectContext(ctx, &rows, `SELECT `+userColumns+` FROM users ORDER BY login`); err != nil {
		return nil, s.errorf(err, "list accounts")
	}
	users := make([]*registry.User, len(rows))
	for i := range rows {
		users[i] = rows[i].user()
	}
	return users, nil
}

// UpdateUser replaces an account's settings; see registry.UserStore.
func (s *Store) UpdateUser(ctx context.Context, actor registry.Actor, u *registry.User, what string) error {
	if err := u.Validate(); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		old, err := s.user(ctx, tx, u.Login)
		if err != nil {
			return err
		}
		if old.Name != u.Name {
			if err := s.checkStaffName(ctx, tx, u); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.rebind(`UPDATE users SET name = ?, role = ?, sites = ?, password_hash = ?, must_change = ?,
failed_sign_ins = ?, locked_until = ?, disabled_at = ?, host = ? WHERE login = ?`),
			u.Name, string(u.Role), strings.Join(u.Sites, ","), u.PasswordHash, u.MustChange,
			u.FailedSignIns, nullMicros(u.LockedUntil), nullMicros(u.DisabledAt), u.Host, u.Login)
		if err != nil {
			return s.errorf(err, "update account")
		}
		if old.PasswordHash != u.PasswordHash || u.DisabledAt != nil {
			if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM sessions WHERE login = ?`), u.Login); err != nil {
				return s.errorf(err, "end sessions")
			}
		}
		return s.auditUser(ctx, tx, actor, u, registry.UserChanged{Change: "updated", What: what, Role: u.Role, Sites: u.Sites})
	})
}

// RemoveUser deletes an account and its sessions.
func (s *Store) RemoveUser(ctx context.Context, actor registry.Actor, login string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		u, err := s.user(ctx, tx, login)
		if err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM sessions WHERE login = ?`, `DELETE FROM users WHERE login = ?`} {
			if _, err := tx.ExecContext(ctx, s.rebind(q), login); err != nil {
				return s.errorf(err, "remove account")
			}
		}
		return s.auditUser(ctx, tx, actor, u, registry.UserChanged{Change: "removed"})
	})
}

// RecordSignIn records a sign-in's outcome; see registry.UserStore.
func (s *Store) RecordSignIn(ctx context.Context, login string, ok bool, now time.Time) (*registry.User, error) {
	var u *registry.User
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if u, err = s.user(ctx, tx, login); err != nil {
			return err
		}
		switch {
		case !ok && u.DisabledAt != nil:
			return s.auditUser(ctx, tx, registry.ActorAnonymous, u, registry.SignInFailed{Reason: "disabled"})
		case !ok && u.Locked(now):
			return s.auditUser(ctx, tx, registry.ActorAnonymous, u, registry.SignInFailed{Reason: "locked"})
		}
		if ok {
			u.FailedSignIns, u.LockedUntil = 0, nil
		} else {
			u.FailedSignIns++
		}
		lock := !ok && u.FailedSignIns >= registry.MaxFailedSignIns && !u.Locked(now)
		if lock {
			until := utcMicro(now.Add(registry.LockoutPeriod))
			u.LockedUntil, u.FailedSignIns = &until, 0
		}
		_, err = tx.ExecContext(ctx, s.rebind(`UPDATE users SET failed_sign_ins = ?, locked_until = ? WHERE login = ?`),
			u.FailedSignIns, nullMicros(u.LockedUntil), login)
		if err != nil {
			return s.errorf(err, "record sign-in")
		}
		if ok {
			return nil
		}
		if err := s.auditUser(ctx, tx, registry.ActorAnonymous, u, registry.SignInFailed{Reason: "password"}); err != nil {
			return err
		}
		if lock {
			return s.auditUser(ctx, tx, registry.ActorSystem, u, registry.UserChanged{Change: "locked"})
		}
		return nil
	})
	return u, err
}

// CreateSession stores a session and deletes every expired one.
func (s *Store) CreateSession(ctx context.Context, sess *registry.Session) error {
	now := utcMicro(sess.CreatedAt)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM sessions WHERE last_seen <= ? OR created_at <= ?`),
			micros(now.Add(-registry.SessionIdle)), micros(now.Add(-registry.SessionMax))); err != nil {
			return s.errorf(err, "delete expired sessions")
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO sessions (hash, login, created_at, last_seen) VALUES (?, ?, ?, ?)`),
			sess.Hash, sess.Login, micros(now), micros(utcMicro(sess.LastSeen)))
		return s.errorf(err, "create session")
	})
}

// Session returns the session with the hash, or ENOTFOUND.
func (s *Store) Session(ctx context.Context, hash []byte) (*registry.Session, error) {
	var row struct {
		Hash      []byte `db:"hash"`
		Login     string `db:"login"`
		CreatedAt int64  `db:"created_at"`
		LastSeen  int64  `db:"last_seen"`
	}
	err := s.read.GetContext(ctx, &row, s.rebind(`SELECT hash, login, created_at, last_seen FROM sessions WHERE hash = ?`), hash)
	if err != nil {
		if registry.ErrorCode(s.errorf(err, "")) == registry.ENOTFOUND {
			return nil, registry.Errorf(registry.ENOTFOUND, "No such session.")
		}
		return nil, s.errorf(err, "read session")
	}
	return &registry.Session{Hash: row.Hash, Login: row.Login, CreatedAt: fromMicros(row.CreatedAt), LastSeen: fromMicros(row.LastSeen)}, nil
}

// TouchSession sets a session's LastSeen.
func (s *Store) TouchSession(ctx context.Context, hash []byte, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.rebind(`UPDATE sessions SET last_seen = ? WHERE hash = ?`), micros(utcMicro(now)), hash)
	return s.errorf(err, "touch session")
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM sessions WHERE hash = ?`), hash)
	return s.errorf(err, "end session")
}
