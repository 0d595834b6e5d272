package crypto

import (
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
)

// KeyKind is the kind of an age key pair.
type KeyKind uint8

const (
	// Hybrid is age's post-quantum hybrid key, ML-KEM-768 with X25519
	// ("age1pq1…", "AGE-SECRET-KEY-PQ-1…"): what is sealed to it stays
	// sealed against a future quantum computer, and deleting its identity
	// stays deleting. The registry's default for the keys it makes.
	Hybrid KeyKind = iota
	// X25519 is age's classic key ("age1…", "AGE-SECRET-KEY-1…"), for
	// offices whose tools predate age 1.3.
	X25519
)

// String returns "hybrid" or "x25519", the names Set accepts.
func (k KeyKind) String() string {
	if k == X25519 {
		return "x25519"
	}
	return "hybrid"
}

// Describe returns the kind for people: "post-quantum hybrid (ML-KEM-768 +
// X25519)" or "classic (X25519)".
func (k KeyKind) Describe() string {
	if k == X25519 {
		return "classic (X25519)"
	}
	return "post-quantum hybrid (ML-KEM-768 + X25519)"
}

// Set parses "hybrid" or "x25519" (a pflag.Value).
func (k *KeyKind) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "hybrid", "pq":
		*k = Hybrid
	case "x25519", "classic":
		*k = X25519
	default:
		return registry.Errorf(registry.EINVALID, "Unknown key kind %q: want hybrid (post-quantum, the default) or x25519 (classic).", s)
	}
	return nil
}

// Type names the values for a flag's help.
func (k *KeyKind) Type() string { return "hybrid|x25519" }

// KindOf returns the kind of an age recipient string by its prefix, false
// when it is neither an "age1pq1…" nor an "age1…" recipient. It does not
// parse the key.
func KindOf(recipient string) (KeyKind, bool) {
	switch {
	case strings.HasPrefix(recipient, "age1pq1"):
		return Hybrid, true
	case strings.HasPrefix(recipient, "age1"):
		return X25519, true
	}
	return 0, false
}

// keyPair is a new identity with its encodings.
type keyPair struct {
	id        age.Identity
	secret    string // AGE-SECRET-KEY-…
	recipient string // age1…
}

func generateKeyPair(kind KeyKind) (*keyPair, error) {
	switch kind {
	case Hybrid:
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, err
		}
		return &keyPair{id: id, secret: id.String(), recipient: id.Recipient().String()}, nil
	case X25519:
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		return &keyPair{id: id, secret: id.String(), recipient: id.Recipient().String()}, nil
	}
	return nil, fmt.Errorf("unknown key kind %d", kind)
}

// identityRecipient returns the kind and public half of an X25519 or
// hybrid identity, false for any other identity.
func identityRecipient(id age.Identity) (KeyKind, string, bool) {
	switch id := id.(type) {
	case *age.HybridIdentity:
		return Hybrid, id.Recipient().String(), true
	case *age.X25519Identity:
		return X25519, id.Recipient().String(), true
	}
	return 0, "", false
}

// parseRecipient parses one X25519 or hybrid recipient and returns it with
// its kind and canonical encoding. Its error completes the sentence "line
// N …" and never quotes s, which might be a secret pasted into the wrong
// place.
func parseRecipient(s string) (age.Recipient, KeyKind, string, error) {
	if strings.HasPrefix(s, "AGE-") {
		return nil, 0, "", errors.New("holds a private key (identity), not a recipient: remove it and keep it secret")
	}
	kind, ok := KindOf(s)
	if !ok {
		return nil, 0, "", errors.New("is not an age recipient: only age1pq1… (post-quantum hybrid) and age1… (X25519) recipients are accepted, no SSH keys")
	}
	switch kind {
	case Hybrid:
		if r, err := age.ParseHybridRecipient(s); err == nil {
			return r, kind, r.String(), nil
		}
	case X25519:
		if r, err := age.ParseX25519Recipient(s); err == nil {
			return r, kind, r.String(), nil
		}
	}
	return nil, 0, "", errors.New("is not a valid age recipient: only age1pq1… (post-quantum hybrid) and age1… (X25519) recipients are accepted, no plugin recipients")
}
