package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// SecretFileName is the name of the server secret inside the key store
// directory, where `registry serve` keeps it unless told otherwise.
const SecretFileName = "server.secret"

// secretPrefix starts the one line of a server secret file.
const secretPrefix = "REGISTRY-SERVER-SECRET-1 "

// Secret is the server secret: 32 random bytes in a file of mode 0600
// beside the key store, never in the database. From it, by HMAC-SHA256
// with a distinct label each, come the keys of everything a reader of the
// database must not be able to compute or test:
//
//   - checkout tokens ("rgc_…"), so that nobody forges one;
//   - idempotency hashes and request MACs, so that a stolen database does
//     not let anyone confirm guessed idempotency keys or guessed contact
//     data against the stored values;
//   - the ids of visits registered with an idempotency key;
//   - the signatures of the public form's nonces;
//   - the stored form of a booking system's or calendar's event ids
//     (BookingUID), which that system could map to the citizen who booked.
//
// Every node that serves intake, the intake-only nodes included, holds a
// copy of the same file. Losing it costs only the open visits' checkout
// tokens and the idempotency of retries in flight; it opens no data.
type Secret struct {
	checkout, idem, mac, visitID, form, code, uid []byte
}

// NewSecret derives the keys from 32 secret bytes.
func NewSecret(master []byte) (*Secret, error) {
	if len(master) != 32 {
		return nil, registry.Errorf(registry.EINVALID, "A server secret has 32 bytes, not %d.", len(master))
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte("registry server secret\x00" + label))
		return m.Sum(nil)
	}
	return &Secret{
		checkout: derive("checkout token"), idem: derive("idempotency hash"), mac: derive("request mac"),
		visitID: derive("visit id"), form: derive("form nonce"), code: derive("short code"), uid: derive("booking uid"),
	}, nil
}

// BookingUID returns the stored form of a booking or calendar system's
// event id at a site: "h1:" and 32 hex digits of an HMAC, so that a
// retry or a re-import with the same id books once, while the database
// holds nothing the booking system could map to the citizen who booked.
// "" stays "".
func (s *Secret) BookingUID(site, uid string) string {
	if uid == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.uid)
	m.Write([]byte(site + "\x00" + uid))
	return "h1:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// CreateSecretFile writes a new server secret to path (mode 0600, never
// replacing an existing file: ECONFLICT) and returns it.
func CreateSecretFile(path string, now time.Time) (*Secret, error) {
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		return nil, err
	}
	body := fmt.Sprintf("# registry server secret, created %s. Keep it beside the key store, mode 0600;\n"+
		"# copy it to every intake node. It opens no visitor data.\n%s%s\n",
		now.UTC().Format(time.RFC3339), secretPrefix, base64.RawURLEncoding.EncodeToString(master))
	err := writeNewFile(path, []byte(body))
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, registry.Errorf(registry.ECONFLICT, "The server secret %q already exists; it is never overwritten.", path)
	case err != nil:
		return nil, registry.Errorf(registry.EINVALID, "Cannot write the server secret %q: %v.", path, pathErrReason(err))
	}
	return NewSecret(master)
}

// ReadSecretFile reads the server secret at path. EINVALID, naming the path
// but never the content, when it cannot be read, is malformed, or can be
// read by group or others; ENOTFOUND when it does not exist.
func ReadSecretFile(path string) (*Secret, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.Errorf(registry.ENOTFOUND, "There is no server secret at %q.", path)
	} else if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read the server secret %q: %v.", path, pathErrReason(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat server secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, registry.Errorf(registry.EINVALID, "The server secret %q can be read by group or others (mode %04o): run chmod 600 %q.", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read server secret: %w", err)
	}
	defer clear(data)
	for _, line := range bytes.Split(data, []byte("\n")) {
		rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte(secretPrefix))
		if !ok {
			continue
		}
		master, err := base64.RawURLEncoding.Strict().DecodeString(string(rest))
		if err != nil || len(master) != 32 {
			break
		}
		defer clear(master)
		return NewSecret(master)
	}
	return nil, registry.Errorf(registry.EINVALID, "The server secret %q is malformed.", path)
}

func (s *Secret) sum(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// CheckoutToken returns the checkout token of a visit: "rgc_" and the
// unpadded base64url HMAC of the visit id, 47 characters in all. Nothing
// is stored to verify it.
func (s *Secret) CheckoutToken(visitID string) string {
	return checkoutTokenPrefix + base64.RawURLEncoding.EncodeToString(s.sum(s.checkout, visitID))
}

// VerifyCheckoutToken reports whether token is the checkout token of the
// visit, comparing in constant time. It is false for anything not shaped
// like a token.
func (s *Secret) VerifyCheckoutToken(visitID, token string) bool {
	if len(token) != len(checkoutTokenPrefix)+43 || token[:len(checkoutTokenPrefix)] != checkoutTokenPrefix {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(token[len(checkoutTokenPrefix):])
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.sum(s.checkout, visitID))
}

// IdempotencyHash returns the stored form of a client's Idempotency-Key,
// scoped to the token that sent it.
func (s *Secret) IdempotencyHash(tokenID, idempotencyKey string) []byte {
	return s.sum(s.idem, tokenID, idempotencyKey)
}

// RequestMAC binds an idempotency key to the request body, so that a key
// reused for another body is detected. Compare with hmac.Equal.
func (s *Secret) RequestMAC(idempotencyKey string, body []byte) []byte {
	return s.sum(s.mac, idempotencyKey, string(body))
}

// KeyedVisitID returns the id of visit index (0 for the registrant, 1… for
// companions) of a registration with an idempotency key, checked in at
// checkIn: the check-in's prefix (registry.NewVisitID) and 92 bits of
// HMAC, as unguessable as a random id, and the same for every retry, so
// that a replay can answer the stored visits without the database storing
// their ids next to the key.
func (s *Secret) KeyedVisitID(checkIn time.Time, tokenID, idempotencyKey string, index int) string {
	sum := s.sum(s.visitID, tokenID, idempotencyKey, fmt.Sprint(index))
	return registry.VisitIDAt(checkIn, hex.EncodeToString(sum[:12])[:23])
}

// ShortCode returns a visit's short code for the reception desk: six
// characters of Crockford base32 (no I, L, O, U), for example "K7QD2M".
func (s *Secret) ShortCode(visitID string) string {
	alphabet := registry.ShortCodeAlphabet
	sum := s.sum(s.code, visitID)
	var b strings.Builder
	for i := range 6 {
		b.WriteByte(alphabet[sum[i]&31])
	}
	return b.String()
}

// FormKey returns the key that signs the public form's nonces.
func (s *Secret) FormKey() []byte { return bytes.Clone(s.form) }
