package office

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/text/unicode/norm"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/cityhall/registry/registry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Status is where an office's request stands.
type Status string

const (
	// StatusFiling: not yet accepted by the registry (it is filed, or
	// filed again after a network error, by the next sync).
	StatusFiling Status = "filing"
	// The registry's statuses.
	StatusPending   Status = "pending"
	StatusApproved  Status = "approved"
	StatusRejected  Status = "rejected"
	StatusExpired   Status = "expired"
	StatusWithdrawn Status = "withdrawn"
	StatusExported  Status = "exported" // exported, but not by this workspace
	// StatusDownloaded: the bundle is here, its digest checked.
	StatusDownloaded Status = "downloaded"
	// StatusRefused: the registry refused to file it (Note says why).
	StatusRefused Status = "refused"
	// StatusLost: the download broke off after the registry recorded the
	// export; a new request is needed.
	StatusLost Status = "lost"
)

// Final reports whether a request in this status changes no more.
func (s Status) Final() bool {
	switch s {
	case StatusRejected, StatusExpired, StatusWithdrawn, StatusExported, StatusDownloaded, StatusRefused, StatusLost:
		return true
	}
	return false
}

// Registry is a registry in the office's directory.
type Registry struct {
	ID, Name, URL string
	// Token is the office's token for the registry (opened; stored
	// sealed with the workspace key).
	Token string
	// Trust is the trust file the registry's DPO exported, TrustDigest
	// its digest; ConfirmedDigest the digest a clerk compared on the
	// phone ("" until then).
	Trust                        []byte
	TrustDigest, ConfirmedDigest string
	ConfirmedBy                  string
	ConfirmedAt                  *time.Time
	Sites                        []RemoteSite
	SitesAt                      *time.Time
	CreatedAt                    time.Time
}

// Confirmed reports whether the registry's current trust file is the one
// a clerk confirmed: only then are its bundles opened.
func (r *Registry) Confirmed() bool {
	return r.ConfirmedDigest != "" && r.ConfirmedDigest == r.TrustDigest
}

// RemoteSite is a site as the registry lists it (GET /v1/sites).
type RemoteSite struct {
	Code    string   `json:"code"`
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Areas   []string `json:"areas"`
}

// Case is one case of the office, filed to one or more registries.
type Case struct {
	ID, Ref, LegalBasis, Contact string
	From, To                     time.Time
	CreatedBy                    string
	CreatedAt                    time.Time
	Requests                     []*Request
}

// Request is one trace request of a case to one registry.
type Request struct {
	ID, CaseID, RegistryID, RemoteID  string
	Sites, Areas, Hosts, Appointments []string
	// Index are the index case's codes (none: everyone in the window).
	Index  []string
	Status Status
	// Note is the registry's decision note, or why filing or the
	// download failed.
	Note         string
	FiledAt      *time.Time
	CheckedAt    *time.Time
	NextCheck    time.Time
	Failures     int
	ExportDigest string
	DownloadedAt *time.Time
	UpdatedAt    time.Time
}

// Notice is a change the clerk is told about.
type Notice struct {
	ID     int64
	At     time.Time
	CaseID string
	Text   string
}

// Store is the workspace's directory: the database workspace.db, the
// workspace key workspace.key and the bundles in bundles/, all private to
// the user who runs it.
type Store struct {
	Dir string
	db  *sqlx.DB
	key []byte
	Now func() time.Time
}

const (
	dbName     = "workspace.db"
	keyName    = "workspace.key"
	bundlesDir = "bundles"
)

// Open opens (or creates) the workspace in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, bundlesDir), 0o700); err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot create the workspace directory %s: %v.", dir, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, bundlesDir)} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o077 != 0 {
			return nil, registry.Errorf(registry.EINVALID, "The workspace directory %s is open to other users of this machine; chmod 700 it.", d)
		}
	}
	key, err := workspaceKey(filepath.Join(dir, keyName))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, dbName)
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "foreign_keys(ON)", "secure_delete(ON)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sqlx.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	db.SetMaxOpenConns(1)
	sub, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, db.DB, sub)
	if err == nil {
		_, err = p.Up(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate workspace: %w", err)
	}
	return &Store{Dir: dir, db: db, key: key, Now: time.Now}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// workspaceKey reads the 32-byte key that seals the registries' tokens,
// creating it (mode 0600) on first use.
func workspaceKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, chacha20poly1305.KeySize)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return workspaceKey(path) // another process made it first
		} else if err != nil {
			return nil, fmt.Errorf("create the workspace key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("write the workspace key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return key, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the workspace key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, registry.Errorf(registry.EINVALID, "The workspace key %s may be read by others; chmod 600 it.", path)
	}
	if len(key) != chacha20poly1305.KeySize {
		return nil, registry.Errorf(registry.EINVALID, "The workspace key %s is damaged.", path)
	}
	return key, nil
}

// seal and open protect a token at rest (XChaCha20-Poly1305, the
// registry's id as associated data: a token cannot be moved to another
// registry's row).
func (s *Store) seal(id, token string) []byte {
	aead, _ := chacha20poly1305.NewX(s.key)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(token), []byte(id))
}

func (s *Store) open(id string, sealed []byte) (string, error) {
	aead, _ := chacha20poly1305.NewX(s.key)
	if len(sealed) < aead.NonceSize() {
		return "", registry.Errorf(registry.EINTERNAL, "The token of registry %s is damaged.", id)
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
	if err != nil {
		return "", registry.Errorf(registry.EINTERNAL, "The token of registry %s does not open with the workspace key.", id)
	}
	return string(plain), nil
}

// Setting returns a setting, "" when unset.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, `SELECT value FROM settings WHERE name = ?`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetSetting stores a setting.
func (s *Store) SetSetting(ctx context.Context, name, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

// inTx runs fn in a transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func timePtr(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromMicros(us.Int64)
	return &t
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// slug makes a registry's id from its name: "Rathaus Musterstadt" →
// "rathaus-musterstadt".
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(strings.ToLower(name)) {
		switch {
		case r == 'ß':
			b.WriteString("ss")
			dash = false
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
			dash = false
		case unicode.Is(unicode.Mn, r):
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = strings.Trim(out[:40], "-")
	}
	if out == "" {
		out = "register"
	}
	return out
}
