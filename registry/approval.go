package registry

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Disclosure is decided by keys, not by names: every person who may
// approve a trace request (an approver, usually a data-protection officer)
// holds an Ed25519 signing key that never lives on the server. Approving,
// rejecting and withdrawing are signatures over a canonical statement of
// the request (DecisionStatement); the export refuses a request unless it
// carries RequiredApprovals valid signatures of distinct registered
// approvers (CheckApprovals), and the bundle carries the statements and
// signatures so that the health office verifies them against the keys it
// pinned (export.Trust).

// PublicKeyPrefix starts the text form of a signing public key.
const PublicKeyPrefix = "registry-ed25519:"

// Signature purposes: every signature covers its purpose, so that a
// signature made for one thing cannot be presented as another.
const (
	PurposeDecision   = "registry-trace-decision/1"
	PurposeApprover   = "registry-approver/1"
	PurposeRecipients = "registry-recipients/1"
	PurposeBundle     = "registry-export-bundle/2"
)

// Approval decisions.
const (
	DecisionApprove  = "approve"
	DecisionReject   = "reject"
	DecisionWithdraw = "withdraw"
)

// ParseInstanceKey parses the text form of an Ed25519 signing public key
// ("registry-ed25519:" and 32 bytes in standard base64): the registry
// instance's key, which signs export bundles.
func ParseInstanceKey(s string) (ed25519.PublicKey, error) {
	k, err := ParsePublicKey(s)
	if err != nil || k.Kind != KeyRegistry {
		return nil, Errorf(EINVALID, "Not a signing public key: expected %s followed by 32 bytes in base64.", PublicKeyPrefix)
	}
	return k.ed, nil
}

// FormatPublicKey returns the text form of a signing public key.
func FormatPublicKey(k ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k)
}

// KeyID is the id of a signing public key: the first 8 bytes of its
// SHA-256 in hex, short enough to read aloud and compare on the phone.
func KeyID(k ed25519.PublicKey) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

// Signed returns the bytes a signature covers: the purpose, a NUL and the
// message.
func Signed(purpose string, msg []byte) []byte {
	return append(append([]byte(purpose), 0), msg...)
}

// VerifySignature reports whether sig is k's signature over msg for
// purpose.
func VerifySignature(k ed25519.PublicKey, purpose string, msg, sig []byte) bool {
	return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, Signed(purpose, msg), sig)
}

// Approval is one approver's signed decision on a trace request.
type Approval struct {
	ID         string `json:"id"` // the store's id of the decision
	RequestID  string `json:"request_id"`
	ApproverID string `json:"approver_id"` // the signing key's id
	// Name and Person are the approver's registered name and person id,
	// when read back.
	Name      string    `json:"name"`
	Person    string    `json:"person,omitempty"`
	PublicKey string    `json:"public_key"`
	Decision  string    `json:"decision"` // DecisionApprove or DecisionReject
	ExpiresAt time.Time `json:"expires_at"`
	SignedAt  time.Time `json:"signed_at"`
	Note      string    `json:"note,omitempty"`
	Signature []byte    `json:"signature"`
	// WithdrawnAt is set when the approver withdrew the decision
	// (a signed DecisionWithdraw statement) before the export.
	WithdrawnAt *time.Time `json:"withdrawn_at,omitempty"`
}

// Origin of a trace request: filed by a health office over the API, or
// recorded by the DPO from a letter, fax or call.
const (
	OriginOffice = "office"
	OriginLetter = "letter"
)

// Origin returns how the request reached the registry.
func (r *TraceRequest) Origin() string {
	if r.OwnerToken != "" || r.OwnerOffice != "" {
		return OriginOffice
	}
	return OriginLetter
}

// RequiredApprovals is the number of distinct approvers whose signed
// approvals the export needs: one besides the health office's own
// request, two for a request recorded from a letter (nobody else's
// authenticated request stands behind it).
func RequiredApprovals(r *TraceRequest) int {
	if r.Origin() == OriginOffice {
		return 1
	}
	return 2
}

// Statement is what a decision statement says, in its fixed field order
// (DecisionStatement writes it, ParseStatement reads it back).
type Statement struct {
	Decision   string   `json:"decision"`
	Request    string   `json:"request"`
	Nonce      string   `json:"nonce"`
	Origin     string   `json:"origin"`
	CaseRef    string   `json:"case_ref"`
	Office     string   `json:"office"`
	LegalBasis string   `json:"legal_basis"`
	From       string   `json:"from"`
	To         string   `json:"to"`
	Sites      []string `json:"sites"`
	Areas      []string `json:"areas"`
	Hosts      []string `json:"hosts,omitempty"`
	Codes      []string `json:"appointments,omitempty"`
	// The index scope (absent without one, so that statements of
	// requests by window stay as they were).
	Index       []string `json:"index,omitempty"`
	IndexVisits []string `json:"index_visits,omitempty"`
	Tolerance   *int     `json:"tolerance_minutes,omitempty"`
	MinContact  *int     `json:"min_contact_minutes,omitempty"`
	WholeSite   string   `json:"whole_site_reason,omitempty"`
	ExpiresAt   string   `json:"expires_at"`
}

// ParseStatement reads a statement file (DecisionStatement's bytes);
// EINVALID for anything else.
func ParseStatement(b []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(b, &st); err != nil || !ValidID(st.Request) || st.Decision == "" {
		return nil, Errorf(EINVALID, "This is not a decision statement of the registry.")
	}
	return &st, nil
}

// DecisionStatement is the canonical statement an approver signs for a
// decision on r (approve, reject or withdraw): every field of the request
// that decides what is disclosed, the request's one-time nonce and, for an
// approval, when it lapses. The JSON is produced from a struct (fixed field
// order, no HTML escaping differences matter: both sides use this
// function).
func DecisionStatement(r *TraceRequest, decision string, expiresAt time.Time) []byte {
	areas := r.Areas
	if areas == nil {
		areas = []string{}
	}
	exp := ""
	if decision == DecisionApprove {
		exp = expiresAt.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(Statement{Decision: decision, Request: r.ID, Nonce: r.Nonce, Origin: r.Origin(), CaseRef: r.CaseRef,
		Office: r.Office, LegalBasis: r.LegalBasis, From: r.From.UTC().Format(time.RFC3339Nano), To: r.To.UTC().Format(time.RFC3339Nano),
		Sites: r.Sites, Areas: areas, Hosts: r.Hosts, Codes: r.Appointments, Index: r.Index, IndexVisits: r.IndexVisits,
		Tolerance: indexInt(r, r.Tolerance), MinContact: indexInt(r, r.MinContact), WholeSite: r.WholeSite, ExpiresAt: exp})
	return b
}

// indexInt is v for a request with an index scope, nil otherwise.
func indexInt(r *TraceRequest, v int) *int {
	if len(r.Index) == 0 {
		return nil
	}
	return &v
}

// CheckApprovals verifies r's approvals at now against the approver set:
// every approval that is not withdrawn must carry a valid signature over
// DecisionStatement by an active approver's key; a valid rejection
// refuses; at least RequiredApprovals(r) distinct persons must have
// approved, each approval unexpired (two keys of one person count once).
// It returns the valid approvals (names and persons from the set), or
// EFORBIDDEN saying what is missing ("1 of 2 approvals").
func CheckApprovals(r *TraceRequest, approvals []*Approval, set *ApproverSet, now time.Time) ([]*Approval, error) {
	valid, err := validApprovals(r, approvals, set, now)
	if err != nil {
		return nil, err
	}
	if need := RequiredApprovals(r); len(valid) < need {
		return nil, Errorf(EFORBIDDEN, "Request %s has %d of %d approvals (a %s request needs %d distinct persons); it cannot be exported yet.",
			r.ID, len(valid), need, r.Origin(), need)
	}
	return valid, nil
}

// ApprovalCount returns how many distinct persons validly approved r at
// now and how many it needs (have is 0 after a rejection or an invalid
// signature).
func ApprovalCount(r *TraceRequest, approvals []*Approval, set *ApproverSet, now time.Time) (have, need int) {
	valid, err := validApprovals(r, approvals, set, now)
	if err != nil {
		return 0, RequiredApprovals(r)
	}
	return len(valid), RequiredApprovals(r)
}

// validApprovals returns the unexpired approvals of distinct persons, or
// EFORBIDDEN for a rejection or a signature that does not verify.
func validApprovals(r *TraceRequest, approvals []*Approval, set *ApproverSet, now time.Time) ([]*Approval, error) {
	var valid []*Approval
	seen := map[string]bool{}
	for _, a := range approvals {
		if a.WithdrawnAt != nil {
			continue
		}
		ap, ok := set.Key(a.ApproverID)
		if !ok {
			return nil, Errorf(EFORBIDDEN, "An approval of request %s is by key %s, which is not an active approver.", r.ID, SafeKeyID(a.ApproverID))
		}
		if !ap.Key().Verify(PurposeDecision, DecisionStatement(r, a.Decision, a.ExpiresAt), a.Signature) {
			return nil, Errorf(EFORBIDDEN, "The signature of %s on request %s does not match the request as stored: it was altered after the decision.", a.ApproverID, r.ID)
		}
		switch {
		case a.Decision == DecisionReject:
			return nil, Errorf(EFORBIDDEN, "Request %s was rejected.", r.ID)
		case a.Decision != DecisionApprove:
			return nil, Errorf(EFORBIDDEN, "Request %s holds an approval of unknown kind.", r.ID)
		case !now.Before(a.ExpiresAt):
			continue
		case seen[ap.Person]:
			continue
		}
		seen[ap.Person] = true
		c := *a
		c.Name, c.Person = ap.Name, ap.Person
		valid = append(valid, &c)
	}
	return valid, nil
}

// NewNonce returns a request's one-time nonce.
func NewNonce() string { return NewID() }
