package registry

import (
	"context"
	"slices"
	"strings"
	"time"
)

// An Alert tells the data-protection officer (and IT, where it is
// theirs) that something waits on them: a new trace request, one pending
// too long, an approval about to lapse unused, a refused or failed purge,
// a clock jump, a failed check. Alerts are an outbox: raised once per
// Key in the store and delivered from it by e-mail and webhooks, retried
// until every channel took it, so that a restart loses none. An alert
// names a case reference, a day or a check and a link, never personal
// data.
type Alert struct {
	ID string `json:"id"`
	// Key makes an alert unique: "request.new:ID", "purge.failed:DAY";
	// raising a key again is a no-op.
	Key  string `json:"key"`
	Kind string `json:"kind"` // the key's part before the colon
	// Audience is "dpo", "it" or "dpo it": whom it is for.
	Audience  string    `json:"audience"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	Link      string    `json:"link,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Delivered names the channels that took the alert (or gave up on
	// it): "mail:dpo", "webhook:2".
	Delivered []string `json:"delivered,omitempty"`
	Attempts  int      `json:"attempts"`
	// NextAt is when the next delivery attempt is due.
	NextAt time.Time `json:"next_at"`
	// ClosedAt is set once every channel took the alert or was given up.
	ClosedAt  *time.Time `json:"closed_at,omitempty"`
	LastError string     `json:"last_error,omitempty"`
}

// For reports whether the alert is for the audience ("dpo" or "it").
func (a *Alert) For(audience string) bool {
	return slices.Contains(strings.Fields(a.Audience), audience)
}

// AlertStore keeps the alerts' outbox.
type AlertStore interface {
	// RaiseAlert stores a new alert unless one with its Key exists;
	// it reports whether it stored a.
	RaiseAlert(ctx context.Context, a *Alert) (bool, error)
	// PendingAlerts returns open alerts due at now, oldest first.
	PendingAlerts(ctx context.Context, now time.Time, limit int) ([]*Alert, error)
	// UpdateAlert stores a delivery's outcome: Delivered, Attempts,
	// NextAt, ClosedAt and LastError.
	UpdateAlert(ctx context.Context, a *Alert) error
	// Alerts lists the newest alerts, newest first.
	Alerts(ctx context.Context, limit int) ([]*Alert, error)
}
