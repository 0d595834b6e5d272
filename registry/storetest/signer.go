package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Signer is an approver with its signing key, for tests.
type Signer struct {
	Key      *crypto.SigningKey
	Approver *registry.Approver
}

// NewSigner returns an approver named name with a fresh key, not yet
// registered.
func NewSigner(t testing.TB, name string, now time.Time) *Signer {
	t.Helper()
	k := crypto.GenerateSigningKey()
	a, err := registry.NewApprover(name, registry.FormatPublicKey(k.Public()), now)
	if err != nil {
		t.Fatalf("NewApprover(%q) = %v", name, err)
	}
	return &Signer{Key: k, Approver: a}
}

// AddSigner registers a new approver named name, signed by by (nil for
// the first approver).
func AddSigner(t testing.TB, s registry.ApproverStore, name string, by *Signer, now time.Time) *Signer {
	t.Helper()
	g := NewSigner(t, name, now)
	if by != nil {
		g.Approver.AddedBy = by.Key.ID()
		g.Approver.Signature = by.Key.Sign(registry.PurposeApprover, registry.ApproverStatement("add", g.Approver))
	}
	if err := s.AddApprover(context.Background(), g.Approver); err != nil {
		t.Fatalf("AddApprover(%q) = %v", name, err)
	}
	return g
}

// Decision returns g's signed decision on r.
func (g *Signer) Decision(r *registry.TraceRequest, decision string, expires time.Time, note string) *registry.Approval {
	return &registry.Approval{RequestID: r.ID, ApproverID: g.Key.ID(), Decision: decision, ExpiresAt: expires, Note: note,
		Signature: g.Key.Sign(registry.PurposeDecision, registry.DecisionStatement(r, decision, expires))}
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
	return AddSigner(t, s, "Anna DSB", nil, now)
}
