package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
	"time"
)

// Role scopes what a token may do.
type Role string

// The roles. Intake tokens register visits (optionally for one site only);
// health-office tokens file trace requests and download approved exports;
// dpo tokens are reserved for the data-protection officer's HTTP use (the
// DPO normally works through the CLI on the server host).
const (
	RoleIntake       Role = "intake"
	RoleHealthOffice Role = "health-office"
	RoleDPO          Role = "dpo"
	// RoleScheduler tokens are the city's booking or calendar system's:
	// they make and cancel appointments (optionally for one site only).
	RoleScheduler Role = "scheduler"
)

// ParseRole returns the role named s, or EINVALID.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleIntake, RoleHealthOffice, RoleDPO, RoleScheduler:
		return r, nil
	}
	return "", Errorf(EINVALID, "unknown role %q: use intake, health-office, scheduler or dpo.", s)
}

// Token is an API credential. The secret itself is shown once at creation
// and stored only as Hash.
type Token struct {
	ID   string // public handle for list and revoke, 16 hex digits
	Role Role
	Site string // intake tokens: the only site they may register for; "" = any
	// Office is the health office a health-office token speaks for (a
	// code like "ga-musterstadt"): its trace requests belong to the
	// office, so that a replaced token keeps seeing them. "" on tokens
	// made before offices existed: their requests belong to the token.
	Office    string
	Label     string // free text for the operator, for example "Pforte Rathaus"
	Hash      []byte // HashToken of the secret
	CreatedAt time.Time
	RevokedAt *time.Time
	// ExpiresAt, when set, ends the token at that time as a revocation
	// would.
	ExpiresAt *time.Time
}

// Usable reports whether the token works at now: not revoked, not
// expired.
func (t *Token) Usable(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// LogValue logs the token's handle, never its hash.
func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", t.ID), slog.String("role", string(t.Role)))
}

// OwnsTrace reports whether the health-office token t may see and export
// r: r belongs to t's office, or, for requests filed before offices
// existed (or by a token without an office), to t itself.
func (t *Token) OwnsTrace(r *TraceRequest) bool {
	if r.OwnerOffice != "" {
		return t.Office == r.OwnerOffice
	}
	return r.OwnerToken != "" && r.OwnerToken == t.ID
}

// Actor returns the audit actor of the token.
func (t *Token) Actor() Actor { return TokenActor(t.ID) }

// Registrar returns the registrar of an intake token: EUNAUTHORIZED for no
// or a revoked token, EFORBIDDEN for another role.
func (t *Token) Registrar() (*Registrar, error) {
	switch {
	case t == nil || t.RevokedAt != nil:
		return nil, Errorf(EUNAUTHORIZED, "A valid intake token is required.")
	case t.Role != RoleIntake:
		return nil, Errorf(EFORBIDDEN, "Only intake tokens may register visits.")
	}
	r := &Registrar{Actor: t.Actor(), Scope: t.ID, MayWalkIn: true}
	if t.Site != "" {
		r.Sites = []string{t.Site}
	}
	return r, nil
}

// TokenPrefix starts every API token, so that leaked tokens are easy to
// recognise in scanners.
const TokenPrefix = "rgt_"

// NewToken returns a new token secret (256 random bits) and its record.
func NewToken(role Role, site, label string, now time.Time) (secret string, t *Token) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	id := NewID()[:16]
	return secret, &Token{ID: id, Role: role, Site: site, Label: label, Hash: HashToken(secret), CreatedAt: now.UTC()}
}

// HashToken returns the stored form of a token secret. Tokens carry 256
// random bits, so a plain SHA-256 is enough; no salt or stretching needed.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// LooksLikeToken reports whether s has the shape of a token secret, so that
// garbage is refused before a database look-up.
func LooksLikeToken(s string) bool {
	return strings.HasPrefix(s, TokenPrefix) && len(s) == len(TokenPrefix)+43
}
