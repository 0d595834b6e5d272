package registry

import "time"

// EpochKey is the public half of one day's outer-layer key. The private half
// lives only in the key store directory (package crypto), never in the
// database; destroying it makes every copy of that day's records, backups
// included, unreadable.
type EpochKey struct {
	Day         Day
	Recipient   string // age X25519 recipient, "age1…"
	CreatedAt   time.Time
	DestroyedAt *time.Time // set when the purge destroyed the private half
}
