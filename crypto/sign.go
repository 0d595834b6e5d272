package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// signingKeyPrefix starts the secret line of a signing key file.
const signingKeyPrefix = "REGISTRY-ED25519-SECRET-KEY-1:"

// SigningKey is an Ed25519 signing key: an approver's (held by the
// person, never on the server) or the registry instance's (in the key
// store, signing export bundles). Signatures cover a purpose and the
// message (registry.Signed), so that a signature for one purpose is never
// valid for another.
type SigningKey struct {
	priv ed25519.PrivateKey
}

// GenerateSigningKey returns a new random signing key.
func GenerateSigningKey() *SigningKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return &SigningKey{priv: priv}
}

// Public returns the public key.
func (k *SigningKey) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// ID returns the key id of the public key (registry.KeyID).
func (k *SigningKey) ID() string { return registry.KeyID(k.Public()) }

// Sign signs msg for purpose.
func (k *SigningKey) Sign(purpose string, msg []byte) []byte {
	return ed25519.Sign(k.priv, registry.Signed(purpose, msg))
}

// marshal returns the key file: comments with the creation time, the
// public key and the key id, and the secret line.
func (k *SigningKey) marshal(now time.Time) []byte {
	return fmt.Appendf(nil, "# registry signing key, created: %s\n# public key: %s\n# key id: %s\n%s%s\n",
		now.UTC().Format(time.RFC3339), registry.FormatPublicKey(k.Public()), k.ID(),
		signingKeyPrefix, base64.StdEncoding.EncodeToString(k.priv.Seed()))
}

// WriteSigningKeyFile writes a new signing key to path (mode 0600, never
// replacing a file: ECONFLICT). With passphrase, the file is sealed with
// age's passphrase (scrypt) encryption, exactly as `age -p` would, and
// ReadSigningKeyFile asks for the passphrase.
func WriteSigningKeyFile(path string, passphrase []byte, now time.Time) (*SigningKey, error) {
	k := GenerateSigningKey()
	data := k.marshal(now)
	if passphrase != nil {
		var err error
		if data, err = protect(data, passphrase); err != nil {
			return nil, err
		}
	}
	err := writeNewFile(path, data)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, registry.Errorf(registry.ECONFLICT, "Key file %q already exists; it is never overwritten.", path)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, registry.Errorf(registry.EINVALID, "Cannot write key file %q: %v.", path, pathErrReason(err))
	case err != nil:
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return k, nil
}

// ReadSigningKeyFile reads a signing key file; a passphrase-protected one
// is opened with the passphrase that ask returns (ask may be nil when no
// prompt is possible: such a file is then EINVALID). Errors never quote
// the file's content.
func ReadSigningKeyFile(path string, ask Passphrase) (*SigningKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if data, err = unprotect(data, fmt.Sprintf("key file %q", path), ask); err != nil {
		return nil, err
	}
	return parseSigningKey(data, path)
}

func parseSigningKey(data []byte, path string) (*SigningKey, error) {
	var key *SigningKey
	err := scanKeyLines(bytes.NewReader(data), fmt.Sprintf("key file %q", path), func(n int, line string) error {
		b64, ok := strings.CutPrefix(line, signingKeyPrefix)
		seed, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(seed) != ed25519.SeedSize || key != nil {
			return registry.Errorf(registry.EINVALID, "The key file %q is malformed: line %d is not a registry signing key.", path, n)
		}
		key = &SigningKey{priv: ed25519.NewKeyFromSeed(seed)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, registry.Errorf(registry.EINVALID, "The key file %q holds no signing key.", path)
	}
	return key, nil
}

// readKeyFile reads a small key file, refusing an unprotected one that
// group or others may read (a secret key readable by others is a leaked
// key). A passphrase-protected file may be readable (a USB stick's FAT
// file system shows every file as such): the passphrase protects it.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read key file %q: %v.", path, pathErrReason(err))
	}
	if fi.Size() > keyFileSizeLimit {
		return nil, registry.Errorf(registry.EINVALID, "The key file %q is larger than %d MiB.", path, keyFileSizeLimit>>20)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read key file %q: %v.", path, pathErrReason(err))
	}
	if fi.Mode().Perm()&0o077 != 0 && !protected(data) {
		return nil, registry.Errorf(registry.EINVALID, "The key file %q may be read by others (mode %04o); chmod 600 it, or protect it with a passphrase.", path, fi.Mode().Perm())
	}
	return data, nil
}

// instanceKeyFile is the instance's signing key in the key store.
const instanceKeyFile = "instance.key"

// InstanceKey returns the registry instance's signing key from the key
// store, creating it on first use. It signs every export bundle; the
// health office pins its public key (registry trust export).
func (k *KeyStore) InstanceKey(now time.Time) (*SigningKey, error) {
	path := k.Dir + string(os.PathSeparator) + instanceKeyFile
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := writeNewFile(path, GenerateSigningKey().marshal(now)); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create instance key: %w", err)
		}
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return parseSigningKey(data, path)
}
