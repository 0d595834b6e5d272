package registry

import "time"

// PurgePlan tells a store what one purge run removes. Package retention
// derives it from the policy and the clock.
type PurgePlan struct {
	Now         time.Time
	Cutoff      time.Time     // visits with CheckIn < Cutoff are deleted
	StaleBefore time.Time     // open visits with CheckIn < StaleBefore are checked out automatically
	MaxStay     time.Duration // an automatic check-out is set to CheckIn + MaxStay
	Destroyed   []Day         // epoch keys whose private half the caller destroyed in this run
	// StaffBefore erases the personal data of staff recorded before it:
	// the contact person, the notes and the deciding actors of trace
	// requests closed before it, and the names behind the audit log's
	// actor commitments of the months before its month (zero: none).
	StaffBefore time.Time
	DryRun      bool // count, change nothing, record nothing
}

// PurgeReport is what a purge did, for the DPO to file. It is also the
// details of the purge's audit event.
type PurgeReport struct {
	RanAt                time.Time `json:"ran_at"`
	DryRun               bool      `json:"dry_run"`
	Cutoff               time.Time `json:"cutoff"`
	VisitsDeleted        int64     `json:"visits_deleted"`
	KeysDestroyed        []Day     `json:"keys_destroyed"`
	VisitsAutoCheckedOut int64     `json:"visits_auto_checked_out"`
	RequestsExpired      int64     `json:"requests_expired"`
	AppointmentsDeleted  int64     `json:"appointments_deleted"`
	// StaffRequestsErased counts the closed trace requests whose staff
	// contact, notes and actors were erased; StaffNamesErased the actor
	// names (with their salts) erased from the audit log's actor table.
	StaffRequestsErased int64 `json:"staff_requests_erased"`
	StaffNamesErased    int64 `json:"staff_names_erased"`
	// StaffBefore is when the staff data erased was recorded before (the
	// plan's StaffBefore): audit verify checks that an actor missing from
	// the log belongs to a month before it.
	StaffBefore     *time.Time `json:"staff_before,omitempty"`
	VisitsRemaining int64      `json:"visits_remaining"`
	OldestCheckIn   *time.Time `json:"oldest_remaining_check_in"`
}

// Horizon is what a store knows of time without the host's clock: the
// newest times it holds, and the database server's own clock where it has
// one. The purge's clock guard checks the host clock against them.
type Horizon struct {
	NewestCheckIn *time.Time // newest visit check-in, nil without visits
	NewestWrite   *time.Time // newest visit created_at or audit event time
	// DatabaseNow is the database server's clock (PostgreSQL), nil when
	// the database runs on the host's clock (SQLite).
	DatabaseNow *time.Time
}
