package export

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// Trust is what the health office pins at setup and checks every bundle
// against: the registry instance's public key (it signs every bundle) and
// the approvers' public keys with their names. The registry writes it
// (`registry trust export`); the office keeps it beside its identity and
// compares its digest with the city hall on the phone.
type Trust struct {
	Instance  ed25519.PublicKey
	Approvers map[string]TrustedApprover // by key id
}

// TrustedApprover is a pinned approver key.
type TrustedApprover struct {
	Name string
	Key  ed25519.PublicKey
}

// trustHeader is the first line of a trust file.
const trustHeader = "# registry trust file v1"

// Marshal returns the trust file: the instance line and one line per
// approver ("approver KEY NAME"), sorted by key id.
func (t *Trust) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: pin it at the health office; `registry decrypt --trust` checks every bundle against it.\n", trustHeader)
	fmt.Fprintf(&b, "instance %s\n", registry.FormatPublicKey(t.Instance))
	ids := make([]string, 0, len(t.Approvers))
	for id := range t.Approvers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := t.Approvers[id]
		fmt.Fprintf(&b, "approver %s %s\n", registry.FormatPublicKey(a.Key), a.Name)
	}
	return b.Bytes()
}

// Digest is the SHA-256 of the trust file's content lines, in hex
// groups, to compare on the phone.
func (t *Trust) Digest() string {
	sum := sha256.Sum256(t.Marshal())
	h := fmt.Sprintf("%x", sum[:12])
	var parts []string
	for i := 0; i < len(h); i += 4 {
		parts = append(parts, h[i:i+4])
	}
	return strings.Join(parts, "-")
}

// ReadTrust reads a trust file.
func ReadTrust(path string) (*Trust, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read trust file %q: %v.", path, err)
	}
	defer f.Close()
	return ParseTrust(f, path)
}

// ParseTrust parses a trust file; name names it in errors.
func ParseTrust(r io.Reader, name string) (*Trust, error) {
	t := &Trust{Approvers: map[string]TrustedApprover{}}
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		keyText, approverName, _ := strings.Cut(rest, " ")
		key, err := registry.ParsePublicKey(keyText)
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "Trust file %q, line %d: not a registry public key.", name, n)
		}
		switch kind {
		case "instance":
			if t.Instance != nil {
				return nil, registry.Errorf(registry.EINVALID, "Trust file %q names two instance keys (line %d).", name, n)
			}
			t.Instance = key
		case "approver":
			if a, err := registry.NewApprover(approverName, keyText, time.Time{}); err != nil {
				return nil, registry.Errorf(registry.EINVALID, "Trust file %q, line %d: %s", name, n, registry.ErrorMessage(err))
			} else {
				t.Approvers[a.ID] = TrustedApprover{Name: a.Name, Key: key}
			}
		default:
			return nil, registry.Errorf(registry.EINVALID, "Trust file %q, line %d: expected \"instance KEY\" or \"approver KEY NAME\".", name, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Trust file %q: %v.", name, err)
	}
	if t.Instance == nil || len(t.Approvers) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "Trust file %q needs the instance key and at least one approver.", name)
	}
	return t, nil
}

// verifyHeader checks the header's instance key and approvals against
// the trust: the instance key must be the pinned one; every approval's
// key must be pinned and its signature must cover DecisionStatement of
// the header's request, unexpired when the bundle was made; at least
// registry.RequiredApprovals distinct approvers. It replaces the names
// with the pinned ones.
func verifyHeader(h *Header, t *Trust) error {
	if t == nil || t.Instance == nil {
		return registry.Errorf(registry.EINVALID, "Opening a bundle needs the trust file pinned at setup (--trust).")
	}
	inst, err := registry.ParsePublicKey(h.Instance)
	if err != nil || !inst.Equal(t.Instance) {
		return registry.Errorf(registry.EINVALID, "The bundle is not signed by the pinned registry instance: refuse it and call the city hall.")
	}
	if h.Origin != registry.OriginOffice && h.Origin != registry.OriginLetter {
		return registry.Errorf(registry.EINVALID, "The bundle header names no origin of the request.")
	}
	req := h.request()
	seen := map[string]bool{}
	for i := range h.Approvals {
		a := &h.Approvals[i]
		k, err := registry.ParsePublicKey(a.PublicKey)
		if err != nil {
			return registry.Errorf(registry.EINVALID, "Approval %d of the bundle has a malformed key.", i+1)
		}
		pinned, ok := t.Approvers[registry.KeyID(k)]
		switch {
		case !ok || !pinned.Key.Equal(k):
			return registry.Errorf(registry.EINVALID, "Approval %d of the bundle is by key %s, which the trust file does not pin.", i+1, registry.KeyID(k))
		case !registry.VerifySignature(k, registry.PurposeDecision, registry.DecisionStatement(req, registry.DecisionApprove, a.ExpiresAt), a.Signature):
			return registry.Errorf(registry.EINVALID, "The approval of %s does not cover this request as the bundle states it.", pinned.Name)
		case !h.CreatedAt.Before(a.ExpiresAt):
			return registry.Errorf(registry.EINVALID, "The approval of %s had expired when the bundle was made.", pinned.Name)
		}
		a.Name = pinned.Name
		seen[registry.KeyID(k)] = true
	}
	if need := registry.RequiredApprovals(req); len(seen) < need {
		return registry.Errorf(registry.EINVALID, "The bundle carries the approvals of %d distinct pinned approvers; a %s request needs %d.", len(seen), h.Origin, need)
	}
	return nil
}
