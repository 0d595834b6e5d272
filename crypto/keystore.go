package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
)

// Names of epoch key files: "epoch-YYYY-MM-DD.age".
const (
	epochPrefix = "epoch-"
	epochSuffix = ".age"
)

// KeyStore is a directory of per-day epoch identity files
// ("epoch-YYYY-MM-DD.age", age-keygen format, mode 0600) in a directory of
// mode 0700. It holds the only private halves of the epoch keys: it must
// live outside the database and never be backed up for longer than the
// retention period. It is safe for concurrent use within one process.
type KeyStore struct {
	// Dir is the key store directory.
	Dir string

	mu    sync.Mutex
	cache map[registry.Day]cachedKey
}

// OpenKeyStore opens the key store in dir, creating it with mode 0700 when
// missing. It returns EINVALID, with a hint, when dir is not a directory or
// is accessible to group or others.
func OpenKeyStore(dir string) (*KeyStore, error) {
	if dir == "" {
		return nil, registry.Errorf(registry.EINVALID, "No key store directory given.")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot create key store %q: %v.", dir, pathErrReason(err))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot open key store %q: %v.", dir, pathErrReason(err))
	}
	if !fi.IsDir() {
		return nil, registry.Errorf(registry.EINVALID, "Key store %q is not a directory.", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, registry.Errorf(registry.EINVALID,
			"Key store %q is accessible to group or others (mode %04o): run chmod 700 %q.", dir, perm, dir)
	}
	return &KeyStore{Dir: dir, cache: map[registry.Day]cachedKey{}}, nil
}

func (k *KeyStore) path(day registry.Day) string {
	return filepath.Join(k.Dir, epochPrefix+string(day)+epochSuffix)
}

// Create generates the day's key pair of kind, writes its identity file
// atomically (temporary file of mode 0600, fsync, link into place,
// directory fsync) and returns the public half. It returns EINVALID for a
// malformed day and ECONFLICT when the day already has a key file, which is
// never replaced.
func (k *KeyStore) Create(day registry.Day, kind KeyKind, now time.Time) (*registry.EpochKey, error) {
	if _, err := registry.ParseDay(string(day)); err != nil {
		return nil, err
	}
	id, err := generateKeyPair(kind)
	if err != nil {
		return nil, fmt.Errorf("generate epoch key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	err = writeNewFile(k.path(day), identityFile(id, now))
	if errors.Is(err, fs.ErrExist) {
		return nil, registry.Errorf(registry.ECONFLICT, "The epoch key of %s already exists; it is never replaced.", day)
	} else if err != nil {
		return nil, fmt.Errorf("write epoch key of %s: %w", day, err)
	}
	return &registry.EpochKey{Day: day, Recipient: id.recipient, CreatedAt: now.UTC()}, nil
}

// Identity returns the day's private key. The file is read on every call,
// so a key destroyed or replaced by another process is never served from
// memory; only the parsed identity is cached, by the file's SHA-256. It
// returns ENOTFOUND when the day has no key file (destroyed or never
// created) and EINVALID when the file is malformed.
func (k *KeyStore) Identity(day registry.Day) (age.Identity, error) {
	c, err := k.identity(day)
	if err != nil {
		return nil, err
	}
	return c.id, nil
}

// cachedKey is a parsed identity, its public half and the hash of the file
// it came from.
type cachedKey struct {
	sum       [sha256.Size]byte
	id        age.Identity
	kind      KeyKind
	recipient string
}

func (k *KeyStore) identity(day registry.Day) (*cachedKey, error) {
	if _, err := registry.ParseDay(string(day)); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	data, err := readEpochKey(k.path(day), day)
	if err != nil {
		delete(k.cache, day)
		return nil, err
	}
	defer clear(data)
	sum := sha256.Sum256(data)
	if c, ok := k.cache[day]; ok && c.sum == sum {
		return &c, nil
	}
	if k.cache == nil {
		k.cache = map[registry.Day]cachedKey{}
	}
	c, err := parseEpochIdentity(data, day)
	if err != nil {
		delete(k.cache, day)
		return nil, err
	}
	c.sum = sum
	k.cache[day] = *c
	return c, nil
}

// readEpochKey returns the content of a key file, ENOTFOUND when absent.
func readEpochKey(path string, day registry.Day) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.Errorf(registry.ENOTFOUND, "The key store holds no epoch key of %s (destroyed or never created).", day)
	} else if err != nil {
		return nil, fmt.Errorf("read epoch key of %s: %w", day, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, keyFileSizeLimit+1))
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("read epoch key of %s: %w", day, err)
	}
	return data, nil
}

// parseEpochIdentity accepts exactly one hybrid or X25519 identity.
func parseEpochIdentity(data []byte, day registry.Day) (*cachedKey, error) {
	name := fmt.Sprintf("epoch key file of %s", day)
	ids, err := parseIdentities(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	kind, rcpt, ok := identityRecipient(ids[0])
	if len(ids) != 1 || !ok {
		return nil, registry.Errorf(registry.EINVALID, "The %s must hold exactly one hybrid or X25519 identity.", name)
	}
	return &cachedKey{id: ids[0], kind: kind, recipient: rcpt}, nil
}

// Recipient returns the public half ("age1pq1…" or "age1…") of the day's
// stored key, with the errors of Identity.
func (k *KeyStore) Recipient(day registry.Day) (string, error) {
	c, err := k.identity(day)
	if err != nil {
		return "", err
	}
	return c.recipient, nil
}

// Kind returns the kind of the day's stored key, with the errors of
// Identity.
func (k *KeyStore) Kind(day registry.Day) (KeyKind, error) {
	c, err := k.identity(day)
	if err != nil {
		return 0, err
	}
	return c.kind, nil
}

// Days lists the days that have a private key file, oldest first. Other
// files in the directory are ignored, the temporary files of a Create in
// progress (in this or another process sharing the directory) included.
func (k *KeyStore) Days() ([]registry.Day, error) {
	return k.list(func(name string) (registry.Day, bool) {
		return keyFileDay(name)
	})
}

// LeftoverDays lists the days that have a temporary file of an interrupted
// (or running) Create, oldest first. Destroy removes them with the day's
// key, so that no copy of a key escapes the purge.
func (k *KeyStore) LeftoverDays() ([]registry.Day, error) {
	return k.list(func(name string) (registry.Day, bool) {
		tmp, ok := strings.CutPrefix(name, ".")
		if !ok {
			return "", false
		}
		base, _, found := strings.Cut(tmp, ".tmp-")
		if !found {
			return "", false
		}
		return keyFileDay(base)
	})
}

func (k *KeyStore) list(dayOf func(name string) (registry.Day, bool)) ([]registry.Day, error) {
	entries, err := os.ReadDir(k.Dir)
	if err != nil {
		return nil, fmt.Errorf("list key store: %w", err)
	}
	var days []registry.Day
	for _, e := range entries {
		if day, ok := dayOf(e.Name()); ok && e.Type().IsRegular() {
			days = append(days, day)
		}
	}
	slices.Sort(days)
	return slices.Compact(days), nil
}

// keyFileDay returns the day of a key file name "epoch-YYYY-MM-DD.age".
func keyFileDay(name string) (registry.Day, bool) {
	s, ok := strings.CutPrefix(name, epochPrefix)
	if !ok {
		return "", false
	}
	if s, ok = strings.CutSuffix(s, epochSuffix); !ok {
		return "", false
	}
	day, err := registry.ParseDay(s)
	return day, err == nil
}

// Destroy crypto-shreds the day's key: it evicts the cached identity,
// overwrites the file with random bytes of the same length, fsyncs it,
// removes it and fsyncs the directory. Leftover temporary files of an
// interrupted Create for the day go the same way. It returns true when a
// file was destroyed and false, without error, when there was none.
//
// The overwrite defeats recovery from the file's blocks on file systems
// that write in place (ext4, xfs); on copy-on-write file systems and SSDs
// old blocks may survive, so the key store belongs on storage that is
// neither snapshotted nor backed up beyond the retention period.
func (k *KeyStore) Destroy(day registry.Day) (bool, error) {
	if _, err := registry.ParseDay(string(day)); err != nil {
		return false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.cache, day)
	leftovers, err := filepath.Glob(tempPattern(k.path(day)))
	if err != nil {
		return false, fmt.Errorf("list leftovers of %s: %w", day, err)
	}
	destroyed := false
	for _, p := range append([]string{k.path(day)}, leftovers...) {
		ok, err := destroyFile(p)
		if err != nil {
			return destroyed, fmt.Errorf("destroy epoch key of %s: %w", day, err)
		}
		destroyed = destroyed || ok
	}
	if destroyed {
		if err := syncDir(k.Dir); err != nil {
			return true, fmt.Errorf("destroy epoch key of %s: %w", day, err)
		}
	}
	return destroyed, nil
}

// destroyFile overwrites a regular file with random bytes, fsyncs and
// removes it. It reports false when there is no file.
func destroyFile(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false, err
	}
	_, err = io.CopyN(f, rand.Reader, fi.Size())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	return true, os.Remove(path)
}

// tempPattern is the glob of writeNewFile's temporary files for path.
func tempPattern(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}

// writeNewFile writes data to path atomically without ever replacing an
// existing file: a temporary file (mode 0600) is written and fsynced, then
// hard-linked to path (link, unlike rename, fails when path exists), then
// removed, and the directory is fsynced. It returns an error matching
// fs.ErrExist when path exists.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making created and removed names durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
