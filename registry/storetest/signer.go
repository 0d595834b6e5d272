package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Signer is an approver's key with its registration, for tests.
type Signer struct {
	Key      *crypto.SigningKey
	Approver *registry.Approver
}

// NewSigner returns a fresh key for an approver named name, not yet
// registered (its Approver describes it as a person of its own).
func NewSigner(t testing.TB, name string, now time.Time) *Signer {
	t.Helper()
	k := crypto.GenerateSigningKey()
	return &Signer{Key: k, Approver: &registry.Approver{ID: k.ID(), Person: k.ID(), Name: name,
		PublicKey: registry.FormatPublicKey(k.Public()), AddedAt: now}}
}

// Endorse signs c with each signer.
func Endorse(c *registry.ApproverChange, by ...*Signer) {
	for _, g := range by {
		c.Endorsements = append(c.Endorsements, registry.Endorsement{Key: g.Key.ID(),
			Signature: g.Key.Sign(registry.PurposeApproverChange, c.Statement())})
	}
}

// Propose makes a change of s's approver set (see
// registry.NewApproverChange), endorses it by the signers and proposes it.
func Propose(t testing.TB, s registry.ApproverStore, op, name, person, key string, now time.Time, by ...*Signer) (*registry.ApproverChange, bool, error) {
	t.Helper()
	set, err := s.Approvers(context.Background())
	if err != nil {
		t.Fatalf("Approvers() = %v", err)
	}
	c, err := registry.NewApproverChange(set, op, name, person, key, "dpo:it", now)
	if err != nil {
		return nil, false, err
	}
	Endorse(c, by...)
	applied, err := s.ProposeApproverChange(context.Background(), "dpo:it", c)
	return c, applied, err
}

// AddSigner registers a new approver (person) named name with a fresh
// key, endorsed by by (none for the first approver), and fails unless the
// change is applied.
func AddSigner(t testing.TB, s registry.ApproverStore, name string, now time.Time, by ...*Signer) *Signer {
	t.Helper()
	g := NewSigner(t, name, now)
	if _, applied, err := Propose(t, s, registry.ChangeAddPerson, name, "", g.Approver.PublicKey, now, by...); err != nil || !applied {
		t.Fatalf("add approver %q: applied %v, %v", name, applied, err)
	}
	set, _ := s.Approvers(context.Background())
	g.Approver, _ = set.Key(g.Key.ID())
	return g
}

// AddKey registers another key of g's person, endorsed by by, and returns
// a Signer of the new key.
func AddKey(t testing.TB, s registry.ApproverStore, g *Signer, now time.Time, by ...*Signer) *Signer {
	t.Helper()
	k := NewSigner(t, g.Approver.Name, now)
	if _, applied, err := Propose(t, s, registry.ChangeAddKey, "", g.Approver.Person, k.Approver.PublicKey, now, by...); err != nil || !applied {
		t.Fatalf("add a key of %q: applied %v, %v", g.Approver.Name, applied, err)
	}
	set, _ := s.Approvers(context.Background())
	k.Approver, _ = set.Key(k.Key.ID())
	return k
}

// Decision returns g's signed decision on r.
func (g *Signer) Decision(r *registry.TraceRequest, decision string, expires time.Time, note string) *registry.Approval {
	return &registry.Approval{RequestID: r.ID, ApproverID: g.Key.ID(), Decision: decision, ExpiresAt: expires, Note: note,
		Signature: g.Key.Sign(registry.PurposeDecision, registry.DecisionStatement(r, decision, expires))}
}

// RecipientsSignature returns g's signature over a recipients
// fingerprint.
func (g *Signer) RecipientsSignature(fingerprint string) registry.RecipientsSignature {
	return registry.RecipientsSignature{Key: g.Key.ID(), Signature: g.Key.Sign(registry.PurposeRecipients, []byte(fingerprint))}
}

// Approve has each signer approve the request id at now until expires
// and returns the request as stored afterwards.
func Approve(t testing.TB, s registry.Store, id string, now, expires time.Time, signers ...*Signer) *registry.TraceRequest {
	t.Helper()
	var r *registry.TraceRequest
	for _, g := range signers {
		cur, err := s.FindTraceRequest(context.Background(), id)
		if err != nil {
			t.Fatalf("FindTraceRequest() = %v", err)
		}
		if r, err = s.DecideTraceRequest(context.Background(), g.Decision(cur, registry.DecisionApprove, expires, "ok"), now); err != nil {
			t.Fatalf("DecideTraceRequest(%s) = %v", g.Approver.Name, err)
		}
	}
	return r
}

// Reject has g reject the request id at now.
func Reject(t testing.TB, s registry.Store, id string, now time.Time, g *Signer) *registry.TraceRequest {
	t.Helper()
	cur, err := s.FindTraceRequest(context.Background(), id)
	if err != nil {
		t.Fatalf("FindTraceRequest() = %v", err)
	}
	r, err := s.DecideTraceRequest(context.Background(), g.Decision(cur, registry.DecisionReject, time.Time{}, "no"), now)
	if err != nil {
		t.Fatalf("DecideTraceRequest(reject) = %v", err)
	}
	return r
}

// FirstSigner returns the store's first approver, registering it on
// first use (one per store: tests of a fresh store call it once).
func FirstSigner(t testing.TB, s registry.Store, now time.Time) *Signer {
	t.Helper()
	return AddSigner(t, s, "Anna DSB", now)
}
