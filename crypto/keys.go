package crypto

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
)

// Limits on key files, the same as the age CLI's.
const (
	keyFileSizeLimit = 16 << 20 // 16 MiB
	keyLineLimit     = 8 << 10  // 8 KiB
)

// WriteIdentityFile writes a new identity of kind to path in age-keygen's
// format ("# created: …", "# public key: age1…", "AGE-SECRET-KEY-…") with
// mode 0600 and returns its recipient string. The file appears atomically
// and complete; an existing file is never replaced (ECONFLICT). A missing
// or unwritable directory is EINVALID.
func WriteIdentityFile(path string, kind KeyKind, now time.Time) (recipient string, err error) {
	return WriteProtectedIdentityFile(path, nil, kind, now)
}

// WriteProtectedIdentityFile is WriteIdentityFile with the file sealed
// with an age passphrase (scrypt), exactly as `age -p` seals one, when
// passphrase is not nil; ReadIdentityFile asks for it.
func WriteProtectedIdentityFile(path string, passphrase []byte, kind KeyKind, now time.Time) (recipient string, err error) {
	id, err := generateKeyPair(kind)
	if err != nil {
		return "", fmt.Errorf("generate identity: %w", err)
	}
	data := identityFile(id, now)
	if passphrase != nil {
		if data, err = protect(data, passphrase); err != nil {
			return "", err
		}
	}
	err = writeNewFile(path, data)
	switch {
	case errors.Is(err, fs.ErrExist):
		return "", registry.Errorf(registry.ECONFLICT, "Identity file %q already exists; it is never overwritten.", path)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return "", registry.Errorf(registry.EINVALID, "Cannot write identity file %q: %v.", path, pathErrReason(err))
	case err != nil:
		return "", fmt.Errorf("write identity file: %w", err)
	}
	return id.recipient, nil
}

// identityFile returns the contents age-keygen writes for id.
func identityFile(id *keyPair, now time.Time) []byte {
	return fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n",
		now.Format(time.RFC3339), id.recipient, id.secret)
}

// ReadIdentities parses the age identity file at path: one identity per
// line (X25519 or post-quantum hybrid), '#' comments and blank lines
// ignored, as age -i reads it. It returns EINVALID, naming the path and line
// but never the content, when the file cannot be read, is malformed or holds
// no identity.
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read identity file %q: %v.", path, pathErrReason(err))
	}
	defer f.Close()
	ids, err := parseIdentities(f, fmt.Sprintf("identity file %q", path))
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// parseIdentities parses identities line by line, so that an error names
// the line without quoting it (age's own messages may echo key characters).
func parseIdentities(r io.Reader, name string) ([]age.Identity, error) {
	var ids []age.Identity
	err := scanKeyLines(r, name, func(n int, line string) error {
		parsed, err := age.ParseIdentities(strings.NewReader(line))
		if err != nil || len(parsed) != 1 {
			return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d is not an age identity (AGE-SECRET-KEY-PQ-1… or AGE-SECRET-KEY-1…).", name, n)
		}
		ids = append(ids, parsed[0])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "The %s holds no identity.", name)
	}
	return ids, nil
}

// scanKeyLines calls fn for every line of an age key file that is neither
// blank nor a '#' comment, with the line's 1-based number. It enforces the
// age CLI's limits and returns EINVALID when they are exceeded.
func scanKeyLines(r io.Reader, name string, fn func(n int, line string) error) error {
	lr := &io.LimitedReader{R: r, N: keyFileSizeLimit + 1}
	sc := bufio.NewScanner(lr)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case !utf8.ValidString(line):
			return registry.Errorf(registry.EINVALID, "The %s is not valid UTF-8 (line %d).", name, n)
		case len(line) > keyLineLimit:
			return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d is too long.", name, n)
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d is too long.", name, n+1)
	} else if sc.Err() != nil {
		return fmt.Errorf("read %s: %w", name, sc.Err())
	}
	if lr.N == 0 {
		return registry.Errorf(registry.EINVALID, "The %s is larger than %d MiB.", name, keyFileSizeLimit>>20)
	}
	return nil
}

// Recipients is a parsed health-office recipients file: the standard age
// recipients file format (one age1… per line, '#' comments, blank lines),
// restricted to post-quantum hybrid (age1pq1…) or X25519 (age1…)
// recipients, all of one kind, at least one, without duplicates. It is
// immutable and safe for concurrent use.
type Recipients struct {
	list        []age.Recipient // in the order of strs
	strs        []string        // canonical encodings, sorted
	kind        KeyKind
	fingerprint string
}

// ReadRecipients reads and parses the recipients file at path, see
// ParseRecipients. Errors are EINVALID and name the path.
func ReadRecipients(path string) (*Recipients, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read recipients file %q: %v.", path, pathErrReason(err))
	}
	defer f.Close()
	return parseRecipients(f, fmt.Sprintf("recipients file %q", path))
}

// ParseRecipients parses an age recipients file. It returns EINVALID, with
// the line number, for anything but hybrid ("age1pq1…") and X25519
// ("age1…") recipients (SSH and plugin recipients are refused), for a
// private key found in the file, for a duplicate, for a file without
// recipients, and for a file that mixes the two kinds: age seals a file to
// post-quantum recipients only or to classic ones only, because one classic
// recipient would leave the file open to a quantum computer.
func ParseRecipients(r io.Reader) (*Recipients, error) {
	return parseRecipients(r, "recipients file")
}

func parseRecipients(r io.Reader, name string) (*Recipients, error) {
	byStr := map[string]age.Recipient{}
	var first struct {
		line int
		kind KeyKind
	}
	err := scanKeyLines(r, name, func(n int, line string) error {
		rec, kind, s, err := parseRecipient(line)
		if err != nil {
			return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d %s.", name, n, err)
		}
		if first.line == 0 {
			first.line, first.kind = n, kind
		} else if kind != first.kind {
			return registry.Errorf(registry.EINVALID,
				"The %s mixes key kinds: line %d is %s, line %d is %s. age seals a file to post-quantum recipients only or to classic ones only; "+
					"give every key of the health office as a post-quantum hybrid key (registry keygen writes one) or list only the classic ones.",
				name, first.line, first.kind.Describe(), n, kind.Describe())
		}
		if _, dup := byStr[s]; dup {
			return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d repeats recipient %.24s….", name, n, s)
		}
		byStr[s] = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(byStr) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "The %s holds no recipient: add the health office's age1… public key.", name)
	}
	return newRecipients(byStr, first.kind), nil
}

func newRecipients(byStr map[string]age.Recipient, kind KeyKind) *Recipients {
	r := &Recipients{kind: kind}
	for s := range byStr {
		r.strs = append(r.strs, s)
	}
	slices.Sort(r.strs)
	for _, s := range r.strs {
		r.list = append(r.list, byStr[s])
	}
	sum := sha256.Sum256([]byte(strings.Join(r.strs, "\n")))
	r.fingerprint = "sha256:" + hex.EncodeToString(sum[:])
	return r
}

// Kind is the kind of every recipient in the set.
func (r *Recipients) Kind() KeyKind { return r.kind }

// Strings returns the canonical recipient strings, sorted.
func (r *Recipients) Strings() []string { return slices.Clone(r.strs) }

// Fingerprint identifies the recipient set independently of order and
// formatting: "sha256:" and the hex SHA-256 of the sorted canonical strings
// joined by "\n". The store pins it (registry.EpochStore.PinRecipients).
func (r *Recipients) Fingerprint() string { return r.fingerprint }

// List returns the recipients for age.Encrypt, in the order of Strings.
func (r *Recipients) List() []age.Recipient { return slices.Clone(r.list) }

// pathErrReason returns the reason of a file system error without its
// operation and path, which the caller's message already names.
func pathErrReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
