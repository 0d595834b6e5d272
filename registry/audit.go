package registry

import (
	"crypto/sha256"
	"encoding/binary"
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
)

// AuditEvent is one entry of the hash-linked audit log.
type AuditEvent struct {
	Seq      int64 // 1, 2, 3, … without gaps
	Time     time.Time
	Actor    Actor
	Action   string
	Subject  string // id of the thing acted on, or ""
	Details  string // a JSON object, never contact data
	PrevHash []byte // Hash of entry Seq-1; 32 zero bytes for Seq 1
	Hash     []byte // ComputeHash()
}

// GenesisHash is the PrevHash of the first audit event.
var GenesisHash = make([]byte, sha256.Size)

// ComputeHash returns SHA-256 over a domain separator and every field but
// Hash, each length-prefixed, so that no two different events share an
// encoding.
func (e *AuditEvent) ComputeHash() []byte {
	h := sha256.New()
	var n, v [8]byte // n: length prefixes; v: integer fields
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte("registry audit v1"))
	binary.BigEndian.PutUint64(v[:], uint64(e.Seq))
	put(v[:])
	binary.BigEndian.PutUint64(v[:], uint64(e.Time.UnixMicro()))
	put(v[:])
	put([]byte(e.Actor))
	put([]byte(e.Action))
	put([]byte(e.Subject))
	put([]byte(e.Details))
	put(e.PrevHash)
	return h.Sum(nil)
}

// Link sets Seq, PrevHash and Hash so that e follows prev (nil for the first
// event). Stores call it inside the transaction that appends e.
func (e *AuditEvent) Link(prev *AuditEvent) {
	e.Seq, e.PrevHash = 1, GenesisHash
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Hash = e.ComputeHash()
}
