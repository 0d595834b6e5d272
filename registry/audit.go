package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Audit actions. Details never hold contact data: counts, windows, digests,
// ids.
const (
	AuditVisitsRegistered  = "visits.registered"
	AuditPurge             = "purge"
	AuditTokenCreated      = "token.created"
	AuditTokenRevoked      = "token.revoked"
	AuditEpochKeysCreated  = "epoch_keys.created"
	AuditRecipientsChanged = "recipients.changed"
	AuditRequestCreated    = "request.created"
	AuditRequestApproved   = "request.approved"
	AuditRequestRejected   = "request.rejected"
	AuditRequestExported   = "request.exported"
	AuditExportDenied      = "export.denied"
	AuditVisitsCheckedOut  = "visits.checked_out"
	AuditSiteChanged       = "site.changed"
	AuditUserChanged       = "user.changed"
	AuditApproverChanged   = "approver.changed"
	AuditApproverProposed  = "approver.proposed"
	AuditApprovalWithdrawn = "approval.withdrawn"
	AuditRequestWithdrawn  = "request.withdrawn"
	AuditRequestNarrowed   = "request.narrowed"
	AuditAppointment       = "appointment.changed"
	AuditClockReset        = "purge.clock_reset"
	AuditPurgeDryRun       = "purge.dry_run"
	AuditCertificate       = "certificate.issued"
	AuditAccess            = "access"
	AuditSignInFailed      = "signin.failed"
	AuditApprovalRefused   = "request.approval_refused"
)

// AuditActions lists every action above, for readers that filter by
// action (registry audit list --action).
var AuditActions = []string{AuditVisitsRegistered, AuditPurge, AuditTokenCreated, AuditTokenRevoked,
	AuditEpochKeysCreated, AuditRecipientsChanged, AuditRequestCreated, AuditRequestApproved,
	AuditRequestRejected, AuditRequestExported, AuditExportDenied, AuditVisitsCheckedOut,
	AuditSiteChanged, AuditUserChanged, AuditApproverChanged, AuditApproverProposed, AuditApprovalWithdrawn,
	AuditRequestWithdrawn, AuditRequestNarrowed, AuditAppointment, AuditClockReset, AuditPurgeDryRun,
	AuditAccess, AuditSignInFailed, AuditApprovalRefused, AuditCertificate}

// AuditVersion is the hash scheme of the events a store appends now.
// Version 1 (the first release) hashed the actor's name itself; version 2
// hashes a salted commitment to it (ActorCommit), so that the name can be
// erased after the staff retention period while the chain still verifies.
const AuditVersion = 2

// AuditEvent is one entry of the hash-linked audit log.
type AuditEvent struct {
	Seq     int64 // 1, 2, 3, … without gaps
	Version int   // hash scheme, see AuditVersion
	Time    time.Time
	// Actor names who acted; "" once erased (version 2 only).
	Actor Actor
	// ActorSalt and ActorCommit (version 2): ActorCommit is
	// ActorCommitment(ActorSalt, Actor) and is what the hash covers. A
	// store keeps one salt per actor and month, apart from the events, and
	// erases name and salt together after the staff retention period.
	ActorSalt   []byte
	ActorCommit []byte
	Action      string
	Subject     string // id of the thing acted on, or ""
	Details     string // a JSON object, never contact data: the action's AuditPayload
	PrevHash    []byte // Hash of entry Seq-1; 32 zero bytes for Seq 1
	Hash        []byte // ComputeHash()
}

// GenesisHash is the PrevHash of the first audit event.
var GenesisHash = make([]byte, sha256.Size)

// NewSalt returns 16 random bytes for an actor commitment.
func NewSalt() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// ActorCommitment is SHA-256 over a domain separator, the salt and the
// actor's name: it binds an event to its actor without revealing a name
// that is erased later (the salt makes guessing names useless).
func ActorCommitment(salt []byte, actor Actor) []byte {
	h := sha256.New()
	h.Write([]byte("registry audit actor\x00"))
	h.Write(salt)
	h.Write([]byte(actor))
	return h.Sum(nil)
}

// ComputeHash returns SHA-256 over a domain separator and every field but
// Hash, each length-prefixed, so that no two different events share an
// encoding. Version 2 events cover ActorCommit instead of Actor.
func (e *AuditEvent) ComputeHash() []byte {
	h := sha256.New()
	var n, v [8]byte // n: length prefixes; v: integer fields
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	actor := []byte(e.Actor)
	if e.Version >= 2 {
		put([]byte("registry audit v2"))
		actor = e.ActorCommit
	} else {
		put([]byte("registry audit v1"))
	}
	binary.BigEndian.PutUint64(v[:], uint64(e.Seq))
	put(v[:])
	binary.BigEndian.PutUint64(v[:], uint64(e.Time.UnixMicro()))
	put(v[:])
	put(actor)
	put([]byte(e.Action))
	put([]byte(e.Subject))
	put([]byte(e.Details))
	put(e.PrevHash)
	return h.Sum(nil)
}

// Link sets Seq, PrevHash, the actor commitment and Hash so that e follows
// prev (nil for the first event), as a version AuditVersion event. A store
// sets ActorSalt first (its salt of the actor and month); without one,
// Link draws a fresh salt. Stores call it inside the transaction that
// appends e.
func (e *AuditEvent) Link(prev *AuditEvent) {
	e.Seq, e.PrevHash = 1, GenesisHash
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	}
	e.Version = AuditVersion
	if e.ActorSalt == nil {
		e.ActorSalt = NewSalt()
	}
	e.ActorCommit = ActorCommitment(e.ActorSalt, e.Actor)
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Hash = e.ComputeHash()
}

// AuditPayload is the typed details of one audit action. Each action has
// its payload type here, next to the event, so that stores write and
// readers (registry audit, audit.Verify) read one shape.
type AuditPayload interface {
	AuditAction() string
}

// NewAuditEvent returns the unlinked event of payload p.
func NewAuditEvent(at time.Time, actor Actor, subject string, p AuditPayload) (*AuditEvent, error) {
	details, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshal %s details: %w", p.AuditAction(), err)
	}
	return &AuditEvent{Time: at, Actor: actor, Action: p.AuditAction(), Subject: subject, Details: string(details)}, nil
}

// VisitsRegistered is the payload of a registration batch of one actor.
type VisitsRegistered struct {
	Count int            `json:"count"`
	Sites map[string]int `json:"sites"`
	// Leaves commits to every visit of the batch: per check-in day, the
	// standard base64 of the 16-byte VisitLeaf of each visit, in order.
	Leaves map[Day]string `json:"leaves"`
	// Departures commits to the check-outs of visits registered with one
	// (paper forms typed in afterwards): per check-in day, the
	// DepartureLeaf of each, in order.
	Departures map[Day]string `json:"departures,omitempty"`
	// Appointments counts the parties registered for an appointment, and
	// WalkIns those admitted without one at a site that requires one, by
	// the reason the desk chose (WalkInReasons).
	Appointments int            `json:"appointments,omitempty"`
	WalkIns      map[string]int `json:"walk_ins,omitempty"`
}

func (VisitsRegistered) AuditAction() string { return AuditVisitsRegistered }

// TokenCreated is the payload of AuditTokenCreated (never the hash).
type TokenCreated struct {
	Role      Role       `json:"role"`
	Site      string     `json:"site"`
	Office    string     `json:"office,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (TokenCreated) AuditAction() string { return AuditTokenCreated }

// TokenRevoked is the payload of AuditTokenRevoked.
type TokenRevoked struct{}

func (TokenRevoked) AuditAction() string { return AuditTokenRevoked }

// EpochKeysCreated is the payload of AuditEpochKeysCreated.
type EpochKeysCreated struct {
	Days []Day `json:"days"`
}

func (EpochKeysCreated) AuditAction() string { return AuditEpochKeysCreated }

// RecipientsChanged is the payload of AuditRecipientsChanged: the old and
// the new fingerprint of the health office's recipients ("" at the first
// pin) and the approvers' signatures over the new one. The log is the pin
// (PinnedRecipients): no table holds it.
type RecipientsChanged struct {
	Old string `json:"old"`
	New string `json:"new"`
	// Signatures are the approvers' signatures (PurposeRecipients) over
	// New; none for the first pin (trust on first use at installation).
	Signatures []RecipientsSignature `json:"signatures,omitempty"`
	// SignedBy and Signature: the one signature of a change made before
	// persons (releases before issue 20); SignedBy is kept with Signatures
	// too, naming the first signer.
	SignedBy  string `json:"signed_by,omitempty"`
	Signature []byte `json:"signature,omitempty"`
}

func (RecipientsChanged) AuditAction() string { return AuditRecipientsChanged }

// RequestCreated is the payload of AuditRequestCreated: the scope asked
// for, appointment codes included (hosts are not: a staff name would
// outlive the staff retention period in the log).
type RequestCreated struct {
	Office       string    `json:"office"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	Sites        []string  `json:"sites"`
	Areas        []string  `json:"areas"`
	Appointments []string  `json:"appointments,omitempty"`
}

func (RequestCreated) AuditAction() string { return AuditRequestCreated }

// RequestApproved is the payload of AuditRequestApproved: one approver's
// signed approval. Signature is over DecisionStatement of the request as
// it was then, so that the log alone proves who approved what.
// Complete is true when this approval was the last one the request
// needed.
type RequestApproved struct {
	Approver  string    `json:"approver"` // key id
	ExpiresAt time.Time `json:"expires_at"`
	Signature []byte    `json:"signature"`
	Complete  bool      `json:"complete"`
}

func (RequestApproved) AuditAction() string { return AuditRequestApproved }

// RequestRejected is the payload of AuditRequestRejected: the approver's
// signed rejection.
type RequestRejected struct {
	Approver  string `json:"approver"`
	Signature []byte `json:"signature"`
}

func (RequestRejected) AuditAction() string { return AuditRequestRejected }

// RequestExported is the payload of AuditRequestExported: the bundle and
// the signed approvals it consumed (key ids and their signatures).
type RequestExported struct {
	Count     int      `json:"count"`
	Digest    string   `json:"digest"`
	Approvers []string `json:"approvers"`
	// Signatures are the consumed approvals' signatures, in the order
	// of Approvers.
	Signatures [][]byte `json:"signatures"`
}

func (RequestExported) AuditAction() string { return AuditRequestExported }

// ApprovalWithdrawn is the payload of AuditApprovalWithdrawn: the
// approver's signed withdrawal of an earlier decision.
type ApprovalWithdrawn struct {
	Approver  string `json:"approver"`
	Signature []byte `json:"signature"`
}

func (ApprovalWithdrawn) AuditAction() string { return AuditApprovalWithdrawn }

// RequestWithdrawn is the payload of AuditRequestWithdrawn: the health
// office withdrew its request before the export.
type RequestWithdrawn struct{}

func (RequestWithdrawn) AuditAction() string { return AuditRequestWithdrawn }

// RequestNarrowed is the payload of AuditRequestNarrowed: the DPO narrowed
// the scope of a pending request to the window, sites and areas given
// (decisions signed before over the wider scope were withdrawn).
type RequestNarrowed struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Sites []string  `json:"sites"`
	Areas []string  `json:"areas"`
}

func (RequestNarrowed) AuditAction() string { return AuditRequestNarrowed }

// AppointmentChanged is the payload of AuditAppointment (subject: the
// appointment's id): created (with its site, day, code, area and source),
// arrived (with the visit), or cancelled. No visitor data (an appointment
// holds none), and not the host: a staff name would outlive the staff
// retention period in the log.
type AppointmentChanged struct {
	Change string `json:"change"`
	Site   string `json:"site"`
	Day    Day    `json:"day"`
	Code   string `json:"code"`
	Area   string `json:"area,omitempty"`
	Source string `json:"source,omitempty"`
	Visit  string `json:"visit,omitempty"`
	// Note says that a sealed note for the health office was stored
	// (never its text, which the server cannot read).
	Note bool `json:"note,omitempty"`
}

func (AppointmentChanged) AuditAction() string { return AuditAppointment }

// ApproverChanged is the payload of AuditApproverChanged: one change of
// the approver set (see approver.go), which ReplayApprovers verifies.
//
// Rule 2 (this release): Op is add, add-key or remove; Serial the number
// of approver changes before it; Person the person it is about; the new
// person's name only as NameCommit (its salt and the name live in the
// approvers table, erasable); Endorsements the signatures over
// ApproverChange.Statement of the persons who allowed it. Op "rule" marks
// the end of rule 1: a rule-1 entry after it counts for nothing.
//
// Rule 1 (releases before persons): Op is add or remove, Name the name in
// clear, By the key id whose Signature (over the rule-1 statement) allowed
// it; "" for the first approver.
type ApproverChanged struct {
	Op        string `json:"op"`
	ID        string `json:"id"`
	PublicKey string `json:"public_key,omitempty"`
	Name      string `json:"name,omitempty"`
	By        string `json:"by,omitempty"`
	Signature []byte `json:"signature,omitempty"`

	Rule         int           `json:"rule,omitempty"`
	Serial       int           `json:"serial,omitempty"`
	Person       string        `json:"person,omitempty"`
	NameCommit   []byte        `json:"name_commit,omitempty"`
	Endorsements []Endorsement `json:"endorsements,omitempty"`
}

func (ApproverChanged) AuditAction() string { return AuditApproverChanged }

// ApproverProposed is the payload of AuditApproverProposed: a change of
// the approver set proposed or endorsed, not yet applied (subject: the
// change's id). Key ids only; the name is in the change.
type ApproverProposed struct {
	Op        string   `json:"op"`
	ID        string   `json:"id"`
	Person    string   `json:"person"`
	Serial    int      `json:"serial"`
	Endorsers []string `json:"endorsers"` // key ids
}

func (ApproverProposed) AuditAction() string { return AuditApproverProposed }

// ExportDenied is the payload of AuditExportDenied: the error code of the
// refusal.
type ExportDenied struct {
	Reason string `json:"reason"`
	// Detail says what an export found changed in the database (request,
	// visit and key ids, never data); "" for an ordinary refusal.
	Detail string `json:"detail,omitempty"`
}

func (ExportDenied) AuditAction() string { return AuditExportDenied }

// VisitsCheckedOut is the payload of a batch of check-outs of one actor
// and reason: the count per site and, per check-in day, the standard
// base64 of the 16-byte DepartureLeaf of each check-out, in order.
type VisitsCheckedOut struct {
	Count  int            `json:"count"`
	Reason CheckoutReason `json:"reason,omitempty"`
	Sites  map[string]int `json:"sites"`
	Leaves map[Day]string `json:"leaves"`
}

func (VisitsCheckedOut) AuditAction() string { return AuditVisitsCheckedOut }

// SiteChanged is the payload of AuditSiteChanged (subject: the site's
// code): the change ("created", "updated", "removed") and the site's
// configuration afterwards (none after removal). A site's configuration
// is public: what the poster and the form show.
type SiteChanged struct {
	Change string `json:"change"`
	Site   *Site  `json:"site,omitempty"`
}

func (SiteChanged) AuditAction() string { return AuditSiteChanged }

// UserChanged is the payload of AuditUserChanged. The subject is the
// account's actor commitment ("actor:" and hex, see
// AuditEvent.Subject), so that the login is erased with the other staff
// names after the staff retention period. Change is "created",
// "updated", "removed" or "locked"; What names the fields an update
// changed.
type UserChanged struct {
	Change string   `json:"change"`
	What   string   `json:"what,omitempty"`
	Role   UserRole `json:"role,omitempty"`
	Sites  []string `json:"sites,omitempty"`
}

func (UserChanged) AuditAction() string { return AuditUserChanged }

// ClockReset is the payload of AuditClockReset: the DPO declared that
// the clock ran ahead when it stamped the last purge (Reference) and the
// newest data (Newest), and that the clock reads right now. From this
// event on, the purge's clock guard measures from the event's time and
// takes no stored time up to Newest as evidence that the clock is behind.
// Ahead counts the visits stamped with a check-in after the reset's time:
// they keep their times and are purged by them.
type ClockReset struct {
	Reference time.Time `json:"reference"`
	Newest    time.Time `json:"newest"`
	Ahead     int64     `json:"ahead"`
}

func (ClockReset) AuditAction() string { return AuditClockReset }

// CertificateIssued is the payload of AuditCertificate: a month's
// deletion certificate, by the SHA-256 of its signed file.
type CertificateIssued struct {
	Month      string `json:"month"`
	Digest     string `json:"digest"`
	Registered int    `json:"visits_registered"`
	Deleted    int    `json:"visits_deleted"`
}

func (CertificateIssued) AuditAction() string { return AuditCertificate }

// PurgeDryRun is the payload of AuditPurgeDryRun: what a dry run
// reported. It is no purge: the clock guard and doctor look for
// AuditPurge only.
type PurgeDryRun struct{ PurgeReport }

func (PurgeDryRun) AuditAction() string { return AuditPurgeDryRun }

// Access is the payload of AuditAccess: someone looked at or copied
// something without changing it. What names it:
//
//   - "backup": a copy of the database, recorded before it is taken so
//     that the copy holds the entry;
//   - "list.present", "list.close", "list.day", "list.host": a desk or
//     host list of Site and Day with Rows rows (a list that refreshes
//     itself is recorded once per session, list and quarter of an hour);
//   - "request.show", "request.preview": a trace request (the subject),
//     Rows the visits the preview counted.
//
// Never what the list showed: counts, sites and days only.
type Access struct {
	What string `json:"what"`
	Site string `json:"site,omitempty"`
	Day  Day    `json:"day,omitempty"`
	Rows int    `json:"rows"`
}

func (Access) AuditAction() string { return AuditAccess }

// SignInFailed is the payload of AuditSignInFailed: a desk or host
// sign-in that failed. The subject is the account's actor commitment (see
// UserChanged) when the login names an account, else empty: what was
// typed is never recorded (it may be a password). Reason is "password",
// "locked", "disabled" or "unknown login".
type SignInFailed struct {
	Reason string `json:"reason"`
}

func (SignInFailed) AuditAction() string { return AuditSignInFailed }

// ApprovalRefused is the payload of AuditApprovalRefused (subject: the
// request): a decision signed with a key that may not decide (Key, its
// id), refused with Reason (an error code).
type ApprovalRefused struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

func (ApprovalRefused) AuditAction() string { return AuditApprovalRefused }

// DepartureLeaf commits to a check-out: the first 16 bytes of SHA-256 over
// a domain separator, the visit id, the check-out time and the reason.
func DepartureLeaf(id string, at time.Time, reason CheckoutReason) []byte {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte("registry departure leaf v1"))
	put([]byte(id))
	binary.BigEndian.PutUint64(n[:], uint64(at.UnixMicro()))
	h.Write(n[:])
	put([]byte(reason))
	return h.Sum(nil)[:16]
}

// AuditAction makes the purge report the payload of AuditPurge.
func (PurgeReport) AuditAction() string { return AuditPurge }

// VisitLeaf commits to the unchangeable part of a visit: the first 16
// bytes of SHA-256 over a domain separator, its id, site, area, check-in
// and sealed bytes and, for a visit registered for an appointment, the
// appointment's id, each length-prefixed. A registration batch's audit
// event lists the leaves of its visits, so that `registry audit verify`
// finds a visit altered, injected or deleted in the database, or moved
// out of (or into) a trace request's scope by its appointment link.
func VisitLeaf(v *Visit) []byte {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte("registry visit leaf v1"))
	put([]byte(v.ID))
	put([]byte(v.Site))
	put([]byte(v.Area))
	binary.BigEndian.PutUint64(n[:], uint64(v.CheckIn.UnixMicro()))
	h.Write(n[:])
	put(v.Sealed)
	if v.Appointment != "" { // visits stored before the link keep their leaves
		put([]byte("appointment"))
		put([]byte(v.Appointment))
	}
	return h.Sum(nil)[:16]
}
