package registry

import (
	"context"
	"iter"
	"time"
)

// Store is everything the registry persists. registry/sqlite and
// registry/postgres implement it and pass registry/storetest. Every method
// that changes state and is named in an audit action appends its audit event
// in the same transaction: an action without its audit entry cannot exist.
type Store interface {
	VisitStore
	TokenStore
	EpochStore
	TraceStore
	AuditStore
	AuditFinder
	PurgeStore
	SiteStore
	UserStore
	ApproverStore
	AppointmentStore
	AlertStore

	// Ping returns an error unless the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// VisitStore keeps visits.
type VisitStore interface {
	// CreateParties stores the parties' visits in one transaction together
	// with one AuditVisitsRegistered event per actor (counts per site and
	// the leaves of the visits, no personal data). A party whose Key.Hash
	// is already stored is not stored again: its Replay is set to the
	// stored record instead, and the caller answers with the visits that
	// record names. When the parties come from several callers (group
	// commit), a failure fails all. EINVALID for a party without visits or
	// a visit without id, site, check-in or sealed data; ECONFLICT for a
	// visit id that is already stored.
	CreateParties(ctx context.Context, parties []*Party) error
	// FindVisit returns a visit by id, Sealed included, or ENOTFOUND.
	FindVisit(ctx context.Context, id string) (*Visit, error)
	// CheckOutVisits records the departures of open visits in one
	// transaction, setting each Departure's Err (see there), and appends
	// one AuditVisitsCheckedOut event for those recorded. Departures of
	// another reason than CheckoutVisitor and CheckoutDesk are refused
	// (EINVALID); the purge and the closing job use their own methods.
	// The error is for the transaction as a whole.
	CheckOutVisits(ctx context.Context, actor Actor, deps []*Departure) error
	// CloseVisits checks out, at the time at, every open visit of site
	// checked in at or after from and before at, with reason
	// CheckoutClosing and one AuditVisitsCheckedOut event, and returns how
	// many it checked out.
	CloseVisits(ctx context.Context, actor Actor, site string, from, at time.Time) (int, error)
	// OpenVisits returns the open visits of site checked in at or after
	// since, oldest first, without Sealed.
	OpenVisits(ctx context.Context, site string, since time.Time) ([]*Visit, error)
	// VisitsAt lists the visits at the site checked in within [from, to),
	// open and closed, without their sealed data, by check-in.
	VisitsAt(ctx context.Context, site string, from, to time.Time) ([]*Visit, error)
	// Occupancy counts the open visits checked in at or after since, per
	// site and area.
	Occupancy(ctx context.Context, since time.Time) ([]Occupancy, error)
	// AllVisits yields every stored visit, ordered by check-in, from one
	// consistent snapshot (for `registry audit verify --data`).
	AllVisits(ctx context.Context) iter.Seq2[*Visit, error]
}

// TokenStore keeps API tokens.
type TokenStore interface {
	// CreateToken stores t with an AuditTokenCreated event.
	CreateToken(ctx context.Context, actor Actor, t *Token) error
	// FindTokenByHash returns the token with the hash, revoked or not, or
	// ENOTFOUND.
	FindTokenByHash(ctx context.Context, hash []byte) (*Token, error)
	// Tokens lists all tokens, oldest first.
	Tokens(ctx context.Context) ([]*Token, error)
	// RevokeToken revokes a token with an AuditTokenRevoked event. ENOTFOUND
	// for an unknown id, ECONFLICT when it is already revoked.
	RevokeToken(ctx context.Context, actor Actor, id string, at time.Time) error
}

// EpochStore keeps the public halves of the epoch keys and the pinned
// health-office recipients.
type EpochStore interface {
	// AddEpochKeys stores new public keys with one AuditEpochKeysCreated
	// event. ECONFLICT when a day already has a key.
	AddEpochKeys(ctx context.Context, actor Actor, keys []*EpochKey) error
	// EpochKey returns the key of a day, or ENOTFOUND.
	EpochKey(ctx context.Context, day Day) (*EpochKey, error)
	// EpochKeys lists every key, destroyed ones included, by day.
	EpochKeys(ctx context.Context) ([]*EpochKey, error)
	// PinRecipients pins the fingerprint of the health-office recipient
	// set in the audit log, which alone holds the pin
	// (PinnedRecipients). The first pin is recorded as it comes
	// (installation); a fingerprint that differs from the pinned one
	// needs sigs, valid signatures over it of enough approvers
	// (CheckRecipientsChange), or it is refused with EFORBIDDEN and
	// nothing changes. A change is an AuditRecipientsChanged entry (old
	// and new fingerprints, the signatures) and returns changed = true.
	PinRecipients(ctx context.Context, actor Actor, fingerprint string, sigs []RecipientsSignature) (changed bool, err error)
	// Recipients returns the pinned fingerprint ("" before the first
	// pin) and the log's recipients entries that do not verify.
	Recipients(ctx context.Context) (pinned string, problems []string, err error)
}

// TraceStore keeps trace requests and performs exports.
type TraceStore interface {
	// CreateTraceRequest stores a pending request with an
	// AuditRequestCreated event.
	CreateTraceRequest(ctx context.Context, actor Actor, r *TraceRequest) error
	// FindTraceRequest returns a request or ENOTFOUND.
	FindTraceRequest(ctx context.Context, id string) (*TraceRequest, error)
	// TraceRequests lists requests matching f, newest first.
	TraceRequests(ctx context.Context, f TraceFilter) ([]*TraceRequest, error)
	// DecideTraceRequest records a signed decision (DecisionApprove or
	// DecisionReject) on a pending or approved request, with an
	// AuditRequestApproved or AuditRequestRejected event. The signature
	// must be a's over DecisionStatement of the request as stored, by an
	// active approver (EFORBIDDEN otherwise); one decision per approver
	// (ECONFLICT for a second one, and unless pending or approved). A
	// rejection rejects the request; an approval makes it approved once
	// CheckApprovals passes, with the earliest expiry of its approvals.
	DecideTraceRequest(ctx context.Context, a *Approval, now time.Time) (*TraceRequest, error)
	// WithdrawApproval withdraws an approver's decision before the
	// export, with a signature over DecisionStatement(r, DecisionWithdraw);
	// the request falls back to pending unless its other approvals still
	// suffice. ENOTFOUND without a decision of the approver, ECONFLICT
	// after the export.
	WithdrawApproval(ctx context.Context, requestID, approverID string, sig []byte, now time.Time) (*TraceRequest, error)
	// WithdrawTraceRequest withdraws a pending or approved request for
	// its office (status withdrawn, with an AuditRequestWithdrawn event);
	// ECONFLICT once it is exported, rejected, expired or withdrawn.
	WithdrawTraceRequest(ctx context.Context, actor Actor, id string, now time.Time) (*TraceRequest, error)
	// NarrowTraceRequest narrows a pending or approved request to n (see
	// TraceRequest.Narrow) with an AuditRequestNarrowed event; decisions
	// signed over the wider scope are withdrawn and the request is pending
	// again. ECONFLICT unless pending or approved.
	NarrowTraceRequest(ctx context.Context, actor Actor, id string, n Narrowing, now time.Time) (*TraceRequest, error)
	// ScopeSummary counts the visits in a request's scope per site, area
	// and hour of check-in, from the plaintext metadata only: what the
	// DPO sees before approving, without any personal data.
	ScopeSummary(ctx context.Context, r *TraceRequest, maxStay time.Duration) ([]ScopeCount, error)
	// ExportTraceRequest exports a request: it checks that the request is
	// approved and unexpired at now (EFORBIDDEN otherwise, ECONFLICT when
	// already exported), checks the request, its approvals and its
	// visits against the audit log (audit.ExportCheck: a change made in
	// the database refuses the export, EFORBIDDEN or ECONFLICT naming it;
	// anchor, when not nil, is the instance's note of an earlier head of
	// the log, which the log must still hold), calls build with the
	// request, the number of visits in its scope (see ScopeQuery) and the
	// visits themselves, one by one, from one consistent snapshot of the
	// database that blocks no registration, and then, in one write
	// transaction that checks the request again, marks it exported with
	// the count and build's digest and appends an AuditRequestExported
	// event. If a check or build fails, or the request changed meanwhile
	// (ECONFLICT), nothing is recorded.
	ExportTraceRequest(ctx context.Context, actor Actor, id string, now time.Time, maxStay time.Duration, anchor *LogAnchor, build ExportFunc) (*TraceRequest, error)
}

// ApproverStore keeps the approver set: its changes in the audit log
// (the record) and the approvers table (the names).
type ApproverStore interface {
	// ProposeApproverChange stores c, a change of the approver set with
	// the endorsements given so far (ApproverSet.Check's rules): applied
	// at once, with an AuditApproverChanged entry, when they suffice (the
	// first approver needs none); otherwise kept as pending, with an
	// AuditApproverProposed entry, for more endorsements. A new person's
	// name must not look like an active person's (EINVALID naming
	// "name"); the last key of the last person is not removed while
	// requests are pending or approved (ECONFLICT). It returns whether c
	// was applied.
	ProposeApproverChange(ctx context.Context, actor Actor, c *ApproverChange) (applied bool, err error)
	// EndorseApproverChange adds e to the pending change id and applies
	// it when its endorsements suffice; ENOTFOUND for an unknown or
	// expired change, ECONFLICT when the approvers changed since it was
	// proposed, EFORBIDDEN for an endorsement that does not count.
	EndorseApproverChange(ctx context.Context, actor Actor, id string, e Endorsement, now time.Time) (*ApproverChange, bool, error)
	// ApproverChanges lists the pending changes, oldest first, without
	// the expired ones at now.
	ApproverChanges(ctx context.Context, now time.Time) ([]*ApproverChange, error)
	// Approvers returns the approver set the audit log proves
	// (ReplayApprovers), with the names from the approvers table and the
	// table's rows the log does not prove marked Unproven.
	Approvers(ctx context.Context) (*ApproverSet, error)
	// CloseApproverRule appends the entry that ends rule 1 in a log that
	// has rule-1 approver entries and none of rule 2 (once, at upgrade),
	// so that no rule-1 entry written later counts.
	CloseApproverRule(ctx context.Context) error
}

// LogAnchor is a head of the audit log the registry instance noted after
// an export (kept in the key store, signed by the instance key, outside
// the database): later exports check that the log still holds it, so
// that entries removed at the end, or a log rewritten after it, are found
// even by an export.
type LogAnchor struct {
	Size int64
	Hash []byte
}

// ExportFunc turns the visits of a request's scope, count of them, into
// the export bundle and returns the bundle's hex SHA-256 digest. visits
// yields each visit in order of check-in, or an error, after which it
// stops.
type ExportFunc func(r *TraceRequest, count int, visits iter.Seq2[*Visit, error]) (digest string, err error)

// AuditStore keeps the hash-linked audit log.
type AuditStore interface {
	// AppendAudit appends one event in its own transaction, for events that
	// accompany no other change (a denied export, a checkpoint).
	AppendAudit(ctx context.Context, e *AuditEvent) error
	// AuditEvents returns up to limit events with Seq > after, in order.
	AuditEvents(ctx context.Context, after int64, limit int) ([]*AuditEvent, error)
	// LastAudit returns the newest event with the action ("" for any), or
	// ENOTFOUND.
	LastAudit(ctx context.Context, action string) (*AuditEvent, error)
}

// AuditFinder finds audit events for reports (the DPO's pages, the
// deletion certificate).
type AuditFinder interface {
	// FindAudit returns the events with one of f's actions recorded in
	// [f.From, f.To) (a zero bound is open), newest first when f.Newest,
	// at most f.Limit.
	FindAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}

// AuditFilter selects audit events for AuditStore.FindAudit.
type AuditFilter struct {
	Actions []string
	// AfterSeq, when not 0, selects events with a greater Seq.
	AfterSeq int64
	From, To time.Time
	Newest   bool
	Limit    int
}

// PurgeStore removes what retention no longer allows.
type PurgeStore interface {
	// Purge deletes visits with CheckIn < p.Cutoff, checks out open visits
	// with CheckIn < p.StaleBefore at CheckIn + p.MaxStay (CheckoutAuto),
	// expires approved trace requests past their expiry and pending ones
	// whose window ended before the cutoff (their data is gone), marks
	// p.Destroyed epoch keys destroyed, and appends one AuditPurge event
	// whose details are the report, all in one transaction. Afterwards it
	// makes deleted bytes unrecoverable from the database files (SQLite:
	// secure_delete and a WAL checkpoint; PostgreSQL: VACUUM). With p.DryRun
	// it counts and changes nothing.
	Purge(ctx context.Context, actor Actor, p PurgePlan) (*PurgeReport, error)
	// Horizon returns the newest stored times and the database's clock.
	Horizon(ctx context.Context) (*Horizon, error)
	// CountVisits counts the visits checked in at or after from and before
	// to.
	CountVisits(ctx context.Context, from, to time.Time) (int64, error)
}

// ScopeQuery documents the scope of a trace request, which both stores
// implement in SQL: a visit is in scope when
//
//	check_in < to AND coalesce(check_out, check_in + maxStay) > from
//
// and its site is one of the request's sites and, when the request names
// areas, its area is one of them.
const ScopeQuery = "check_in < to AND coalesce(check_out, check_in + maxStay) > from"
