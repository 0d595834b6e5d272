package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/cityhall/registry/registry"
)

// maxCheckpoint bounds the size of a signed checkpoint Open accepts.
const maxCheckpoint = 16 << 10

// Checkpoint is the state of the audit log at one time: its origin (a name
// for the log, for example "registry.meschede.de/audit"), its size and the
// hash of its last entry (registry.GenesisHash for an empty log).
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   []byte
}

// NewCheckpoint returns the checkpoint of a verified log.
func NewCheckpoint(origin string, r *Result) Checkpoint {
	return Checkpoint{Origin: origin, Size: r.Size, Hash: bytes.Clone(r.Head)}
}

func (cp *Checkpoint) check() error {
	switch {
	case cp.Origin == "" || len(cp.Origin) > 256 || !utf8.ValidString(cp.Origin) ||
		strings.IndexFunc(cp.Origin, unicode.IsControl) >= 0 || strings.TrimSpace(cp.Origin) != cp.Origin:
		return registry.Errorf(registry.EINVALID, "A checkpoint origin is one line of 1 to 256 characters without surrounding space.")
	case cp.Size < 0:
		return registry.Errorf(registry.EINVALID, "A checkpoint's size cannot be negative.")
	case len(cp.Hash) != sha256.Size:
		return registry.Errorf(registry.EINVALID, "A checkpoint's hash has %d bytes, want %d.", len(cp.Hash), sha256.Size)
	}
	return nil
}

// text returns "<origin>\n<size>\n<base64 hash>\n".
func (cp *Checkpoint) text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Hash))
}

// GenerateSignerKey returns a new ed25519 signer key and its verifier key
// in the note format ("PRIVATE+KEY+<name>+…" and "<name>+…"). The signer
// key is a secret: keep it off the server, in a file of mode 0600. name
// must be non-empty without spaces or '+' (EINVALID).
func GenerateSignerKey(name string) (skey, vkey string, err error) {
	if name == "" || strings.ContainsAny(name, "+") || strings.IndexFunc(name, unicode.IsSpace) >= 0 || !utf8.ValidString(name) {
		return "", "", registry.Errorf(registry.EINVALID, "A key name must be non-empty, without spaces or '+'.")
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate checkpoint key: %w", err)
	}
	return skey, vkey, nil
}

// Sign returns cp as a signed note: the text "<origin>\n<size>\n<base64
// hash>\n", a blank line and the signature line. EINVALID for a malformed
// checkpoint or signer key (the message never holds the key).
func Sign(cp Checkpoint, skey string) ([]byte, error) {
	if err := cp.check(); err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The checkpoint signer key is malformed.")
	}
	msg, err := note.Sign(&note.Note{Text: cp.text()}, signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// Open verifies a signed checkpoint with the verifier key and parses it
// strictly (exactly three lines, canonical size and hash). It returns
// EINVALID when the key is malformed, when no signature by the key is
// present or a signature does not verify (an edited checkpoint), or when
// the text is not a checkpoint.
func Open(msg []byte, vkey string) (*Checkpoint, error) {
	verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The checkpoint verifier key is malformed.")
	}
	if len(msg) > maxCheckpoint {
		return nil, registry.Errorf(registry.EINVALID, "The checkpoint is larger than %d bytes.", maxCheckpoint)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return nil, openError(err, verifier.Name())
	}
	return parseText(n.Text)
}

func openError(err error, name string) error {
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		return registry.Errorf(registry.EINVALID, "The checkpoint is not signed by the key %q.", name)
	case errors.As(err, &invalid):
		return registry.Errorf(registry.EINVALID, "The checkpoint's signature does not verify: it was altered after signing.")
	}
	return registry.Errorf(registry.EINVALID, "The checkpoint is not a signed note.")
}

func parseText(text string) (*Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return nil, registry.Errorf(registry.EINVALID, "The checkpoint text must have exactly three lines.")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || strconv.FormatInt(size, 10) != lines[1] {
		return nil, registry.Errorf(registry.EINVALID, "The checkpoint's size is not a canonical number.")
	}
	hash, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || base64.StdEncoding.EncodeToString(hash) != lines[2] {
		return nil, registry.Errorf(registry.EINVALID, "The checkpoint's hash is not canonical base64.")
	}
	cp := &Checkpoint{Origin: lines[0], Size: size, Hash: hash}
	if err := cp.check(); err != nil {
		return nil, err
	}
	return cp, nil
}
