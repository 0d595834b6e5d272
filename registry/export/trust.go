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

// TrustedApprover is a pinned approver key and the person it belongs
// to: approvals count per person, whatever keys the person used.
type TrustedApprover struct {
	Name   string
	Person string
	Key    *registry.PublicKey
}

// trustHeader is the first line of a trust file; trustHeader1 that of
// the files written before approvers were persons ("approver KEY NAME",
// each key its own person), which ParseTrust still reads.
const (
	trustHeader  = "# registry trust file v2"
	trustHeader1 = "# registry trust file v1"
)

// TrustFromSet returns the trust of an instance key and the active
// approvers of set.
func TrustFromSet(instance ed25519.PublicKey, set *registry.ApproverSet) *Trust {
	t := &Trust{Instance: instance, Approvers: map[string]TrustedApprover{}}
	for _, a := range set.Active() {
		t.Approvers[a.ID] = TrustedApprover{Name: a.Name, Person: a.Person, Key: a.Key()}
	}
	return t
}

// Marshal returns the trust file: the instance line and one line per
// approver key ("approver KEY PERSON NAME"), sorted by person and key id.
func (t *Trust) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: pin it at the health office; `registry decrypt --trust` checks every bundle against it.\n", trustHeader)
	fmt.Fprintf(&b, "instance %s\n", registry.FormatPublicKey(t.Instance))
	ids := make([]string, 0, len(t.Approvers))
	for id := range t.Approvers {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int {
		if c := strings.Compare(t.Approvers[x].Person, t.Approvers[y].Person); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	for _, id := range ids {
		a := t.Approvers[id]
		fmt.Fprintf(&b, "approver %s %s %s\n", a.Key, a.Person, a.Name)
	}
	return b.Bytes()
}

// Persons returns the number of distinct persons the trust pins.
func (t *Trust) Persons() int {
	seen := map[string]bool{}
	for _, a := range t.Approvers {
		seen[a.Person] = true
	}
	return len(seen)
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
	n, v1 := 0, false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, trustHeader1) {
			v1 = true
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		keyText, rest, _ := strings.Cut(rest, " ")
		switch kind {
		case "instance":
			key, err := registry.ParseInstanceKey(keyText)
			if err != nil {
				return nil, registry.Errorf(registry.EINVALID, "Trust file %q, line %d: not a registry public key.", name, n)
			}
			if t.Instance != nil {
				return nil, registry.Errorf(registry.EINVALID, "Trust file %q names two instance keys (line %d).", name, n)
			}
			t.Instance = key
		case "approver":
			a, err := parseTrustedApprover(keyText, rest, v1)
			if err != nil {
				return nil, registry.Errorf(registry.EINVALID, "Trust file %q, line %d: %s", name, n, registry.ErrorMessage(err))
			}
			t.Approvers[a.Key.ID()] = *a
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

// parseTrustedApprover parses the rest of an approver line: "PERSON NAME"
// (v2: PERSON a key id) or "NAME" (v1 files, each key its own person).
func parseTrustedApprover(keyText, rest string, v1 bool) (*TrustedApprover, error) {
	key, err := registry.ParsePublicKey(keyText)
	if err != nil {
		return nil, err
	}
	person, name := key.ID(), rest
	if p, n, ok := strings.Cut(rest, " "); ok && !v1 && registry.SafeKeyID(p) == p {
		person, name = p, n
	}
	if err := registry.CheckApproverName(&name); err != nil {
		return nil, err
	}
	return &TrustedApprover{Name: name, Person: person, Key: key}, nil
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
	inst, err := registry.ParseInstanceKey(h.Instance)
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
		pinned, ok := t.Approvers[k.ID()]
		switch {
		case !ok || !pinned.Key.Equal(k):
			return registry.Errorf(registry.EINVALID, "Approval %d of the bundle is by key %s, which the trust file does not pin.", i+1, k.ID())
		case !k.Verify(registry.PurposeDecision, registry.DecisionStatement(req, registry.DecisionApprove, a.ExpiresAt), a.Signature):
			return registry.Errorf(registry.EINVALID, "The approval of %s does not cover this request as the bundle states it.", registry.ShowScripts(pinned.Name))
		case !h.CreatedAt.Before(a.ExpiresAt):
			return registry.Errorf(registry.EINVALID, "The approval of %s had expired when the bundle was made.", registry.ShowScripts(pinned.Name))
		}
		a.Name = pinned.Name
		seen[pinned.Person] = true
	}
	if need := registry.RequiredApprovals(req); len(seen) < need {
		return registry.Errorf(registry.EINVALID, "The bundle carries the approvals of %d distinct pinned persons; a %s request needs %d (two keys of one person count once).", len(seen), h.Origin, need)
	}
	return nil
}
