package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// UserRole is what a staff account of the web pages may do.
type UserRole string

// The staff roles. Desk staff (the Pforte) register visitors for their
// sites, see who is present (never names) and check visitors out; they
// never see stored contact data, since the desk only writes.
const (
	UserDesk UserRole = "desk"
	// UserHost accounts are staff members or departments that receive
	// visitors by appointment: they see their own appointments of the day
	// and who has arrived (by code, never by name), and nothing else.
	UserHost UserRole = "host"
	// UserScheduler accounts are the service line's: they make and cancel
	// appointments on the desk pages, and see the day's list.
	UserScheduler UserRole = "scheduler"
	// UserDPO accounts are the data-protection officer's (and deputies'):
	// they read the DPO's pages (pending requests with their statements
	// and scope, purges, day keys, checks, approvers) and upload decisions
	// signed offline; they work for no site. Signing happens on the
	// approver's own computer, never on the server.
	UserDPO UserRole = "dpo"
)

// ParseUserRole returns the role named s, or EINVALID.
func ParseUserRole(s string) (UserRole, error) {
	switch r := UserRole(s); r {
	case UserDesk, UserHost, UserScheduler, UserDPO:
		return r, nil
	}
	return "", Errorf(EINVALID, "unknown role %q: use desk, host, scheduler or dpo.", s)
}

// Sign-in rules: a password of at least MinPasswordLen characters;
// MaxFailedSignIns failed attempts in a row lock the account for
// LockoutPeriod; a session ends after SessionIdle without a request and
// SessionMax after sign-in in any case.
const (
	MinPasswordLen   = 12
	MaxPasswordLen   = 256
	MaxFailedSignIns = 5
	LockoutPeriod    = 15 * time.Minute
	SessionIdle      = 30 * time.Minute
	SessionMax       = 12 * time.Hour
)

// User is a staff account of the web pages: one person, bound to one or
// more sites. The password is stored only as an argon2id hash (see
// crypto.HashPassword).
type User struct {
	Login string   // ValidLogin: lowercase, as typed at sign-in
	Name  string   // the person's name, shown in lists; erased with the account
	Role  UserRole // see the UserRole constants
	Sites []string // the sites the account works for, by code
	// Host is, for a host account, the host its appointments name (one of
	// the sites' Hosts).
	Host string
	// PasswordHash is the PHC string of the password's argon2id hash.
	PasswordHash string
	// MustChange is set for a password IT handed out: the first sign-in
	// asks for a new one before anything else.
	MustChange bool
	// FailedSignIns counts failed sign-ins since the last good one;
	// LockedUntil is set when they reached MaxFailedSignIns.
	FailedSignIns int
	LockedUntil   *time.Time
	CreatedAt     time.Time
	DisabledAt    *time.Time
}

// Actor returns the audit actor of the account: "user:<login>".
func (u *User) Actor() Actor { return Actor("user:" + u.Login) }

// LogValue logs the login and role, never the name or hash.
func (u *User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("login", u.Login), slog.String("role", string(u.Role)))
}

// Registrar returns the registrar of a desk account: EUNAUTHORIZED for
// no or a disabled account, EFORBIDDEN for another role.
func (u *User) Registrar() (*Registrar, error) {
	switch {
	case u == nil || u.DisabledAt != nil:
		return nil, Errorf(EUNAUTHORIZED, "Please sign in.")
	case u.Role != UserDesk:
		return nil, Errorf(EFORBIDDEN, "Only desk accounts may register visitors.")
	}
	return &Registrar{Actor: u.Actor(), Scope: string(u.Actor()), Sites: u.Sites, MayWalkIn: true}, nil
}

// MaySite reports whether the account works for site.
func (u *User) MaySite(site string) bool { return slices.Contains(u.Sites, site) }

// Locked reports whether the account is locked at now.
func (u *User) Locked(now time.Time) bool { return u.LockedUntil != nil && now.Before(*u.LockedUntil) }

// Validate cleans the account's texts and checks its fields, returning one
// EINVALID *Error naming every field at fault.
func (u *User) Validate() error {
	var errs []error
	if !ValidLogin(u.Login) {
		errs = append(errs, FieldError("login", "A login is 2 to 64 lowercase letters a-z, digits, '.', '-' or '_', starting with a letter."))
	}
	errs = append(errs, fieldRule{"name", &u.Name, true, 120, nil, ""}.apply())
	if _, err := ParseUserRole(string(u.Role)); err != nil {
		errs = append(errs, FieldError("role", "%s", ErrorMessage(err)))
	}
	switch {
	case u.Role == UserHost && u.Host == "":
		errs = append(errs, FieldError("host", "A host account names its host (one of the site's hosts)."))
	case u.Role != UserHost && u.Host != "":
		errs = append(errs, FieldError("host", "Only host accounts name a host."))
	case u.Host != "":
		errs = append(errs, fieldRule{"host", &u.Host, true, 100, nil, ""}.apply())
	}
	switch {
	case u.Role == UserDPO && len(u.Sites) > 0:
		errs = append(errs, FieldError("sites", "A DPO account works for no site: it sees the whole registry."))
	case u.Role != UserDPO && len(u.Sites) == 0:
		errs = append(errs, FieldError("sites", "An account works for at least one site."))
	}
	for _, s := range u.Sites {
		if !ValidSite(s) {
			errs = append(errs, FieldError("sites", "A site code is lowercase letters, digits and '-'."))
			break
		}
	}
	if u.PasswordHash == "" {
		errs = append(errs, FieldError("password", "An account needs a password."))
	}
	return Invalid(errs...)
}

// ValidLogin reports whether s is a login: 2 to 64 of a-z, 0-9, '.', '-'
// and '_', starting with a letter. Logins are plain ASCII so that no two
// accounts look alike ("Alice", "alice" with an invisible character, a
// Cyrillic "а").
func ValidLogin(s string) bool {
	if len(s) < 2 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CheckPassword returns EINVALID (field "password") unless pw may be a
// password of login: MinPasswordLen to MaxPasswordLen characters, valid
// UTF-8, and not the login itself.
func CheckPassword(login, pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return FieldError("password", "The password is not valid text.")
	case n < MinPasswordLen:
		return FieldError("password", "The password must have at least %d characters.", MinPasswordLen)
	case n > MaxPasswordLen:
		return FieldError("password", "The password must have at most %d characters.", MaxPasswordLen)
	case strings.Contains(strings.ToLower(pw), login):
		return FieldError("password", "The password must not contain the login.")
	}
	return nil
}

// NewPassword returns a random password for an account IT creates or
// resets: 20 characters of base32 without look-alikes, grouped by four.
func NewPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789" // no i, l, o, 0, 1
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}

// Session is a signed-in staff member's session. Its secret is in the
// browser's cookie only; the store keeps its SHA-256.
type Session struct {
	Hash      []byte
	Login     string
	CreatedAt time.Time
	LastSeen  time.Time
}

// Expired reports whether the session has ended at now (idle or too old).
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.LastSeen.Add(SessionIdle)) || !now.Before(s.CreatedAt.Add(SessionMax))
}

// NewSessionSecret returns a new session secret (256 random bits) and the
// hash the store keeps.
func NewSessionSecret() (secret string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSessionSecret(secret)
}

// HashSessionSecret returns the stored form of a session secret.
func HashSessionSecret(secret string) []byte {
	h := sha256.Sum256([]byte("registry session\x00" + secret))
	return h[:]
}

// UserStore keeps staff accounts and their sessions. Changes to accounts
// are audited (AuditUserChanged); sign-ins are not (they would fill the
// log), but a lock-out is.
type UserStore interface {
	// CreateUser stores a new account. ECONFLICT for an existing login.
	CreateUser(ctx context.Context, actor Actor, u *User) error
	// User returns an account, or ENOTFOUND.
	User(ctx context.Context, login string) (*User, error)
	// Users lists every account by login.
	Users(ctx context.Context) ([]*User, error)
	// UpdateUser replaces the name, role, sites, password hash, MustChange
	// and DisabledAt of an account; what names the change in the audit
	// log ("sites", "password", "disabled", …). Disabling or a new
	// password ends the account's sessions. ENOTFOUND for an unknown
	// login.
	UpdateUser(ctx context.Context, actor Actor, u *User, what string) error
	// RemoveUser deletes an account and its sessions. ENOTFOUND for an
	// unknown login.
	RemoveUser(ctx context.Context, actor Actor, login string) error
	// RecordSignIn records the outcome of a sign-in at now: a good one
	// resets the count of failures, a failed one counts and, at
	// MaxFailedSignIns, locks the account for LockoutPeriod (audited).
	// Every failed one is an AuditSignInFailed entry; one on a locked or
	// disabled account is recorded without counting. It returns the
	// account as stored afterwards.
	RecordSignIn(ctx context.Context, login string, ok bool, now time.Time) (*User, error)

	// CreateSession stores a session.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with the hash, or ENOTFOUND.
	Session(ctx context.Context, hash []byte) (*Session, error)
	// TouchSession sets a session's LastSeen to now.
	TouchSession(ctx context.Context, hash []byte, now time.Time) error
	// DeleteSession ends a session; a missing one is no error.
	DeleteSession(ctx context.Context, hash []byte) error
}
