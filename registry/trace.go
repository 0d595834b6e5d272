package registry

import "time"

// TraceStatus is the state of a trace request:
//
//	pending → approved → exported
//	pending → rejected | withdrawn
//	pending | approved → expired
type TraceStatus string

// The trace request states.
const (
	TracePending   TraceStatus = "pending"
	TraceApproved  TraceStatus = "approved"
	TraceRejected  TraceStatus = "rejected"
	TraceExported  TraceStatus = "exported"
	TraceExpired   TraceStatus = "expired"
	TraceWithdrawn TraceStatus = "withdrawn"
)

// TraceRequest is a health office's request for the contact data of everyone
// whose stay overlapped a time window at some sites (and areas).
type TraceRequest struct {
	ID         string
	CaseRef    string // the health office's case reference (Aktenzeichen)
	Office     string // requesting health office
	LegalBasis string // for example "§ 25 IfSG i.V.m. § 28a Abs. 4 IfSG"
	Contact    string // contact person at the office (office staff, not a visitor)
	From, To   time.Time
	Sites      []string
	Areas      []string // empty: every area of the sites
	Status     TraceStatus
	OwnerToken string // id of the health-office token that filed it; "" when the DPO recorded it
	CreatedBy  Actor
	CreatedAt  time.Time

	DecidedBy    Actor
	DecidedAt    *time.Time
	DecisionNote string
	ExpiresAt    *time.Time // an approval lapses at this time

	ExportedAt   *time.Time
	ExportCount  int    // records in the export
	ExportDigest string // hex SHA-256 of the export bundle
}

// TraceFilter selects trace requests for listing. Zero fields match all.
type TraceFilter struct {
	Status     TraceStatus
	OwnerToken string
}
