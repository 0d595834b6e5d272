package intake

import (
	"context"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// BookingStore is what Booking needs of a store.
type BookingStore interface {
	CreateAppointment(ctx context.Context, actor registry.Actor, a *registry.Appointment, note registry.NoteSealer) (*registry.Appointment, bool, error)
	EpochKey(ctx context.Context, day registry.Day) (*registry.EpochKey, error)
}

// DayKeys gives the public epoch key of a day, creating the day's key
// pair when it has none yet; *retention.Purger satisfies it.
type DayKeys interface {
	DayRecipient(ctx context.Context, actor registry.Actor, day registry.Day) (string, error)
}

// Booking makes appointments. It is the one way the desk's booking page,
// the scheduler API and the CLI store one, and it seals the appointment's
// note for the health office (registry.AppointmentNote) when there is one:
// to the health office's recipients inside and the epoch key of the
// appointment's day outside, like a contact, so that the server can never
// read it and the purge of that day's key makes every copy unreadable.
type Booking struct {
	Store BookingStore
	// Sealer seals notes; without it an appointment with a note is
	// refused (EINVALID naming "note").
	Sealer *crypto.Sealer
	// Keys creates the epoch key of an appointment's day months ahead
	// (retention.Purger.DayRecipient). On a node without the key store
	// it is nil: notes are then taken only for days whose key exists.
	Keys DayKeys
	// Secret turns a booking system's event id into its stored form
	// (crypto.Secret.BookingUID). Required when appointments carry one.
	Secret *crypto.Secret
}

// Book stores a with its note (cleaned by registry.CleanNote; "" for
// none) and returns what the store returns (see
// registry.AppointmentStore.CreateAppointment). A retry with the UID of a
// stored appointment returns the stored one and leaves its note as it
// was.
func (b *Booking) Book(ctx context.Context, actor registry.Actor, a *registry.Appointment, note string) (*registry.Appointment, bool, error) {
	text, err := registry.CleanNote(note)
	if err != nil {
		return nil, false, err
	}
	if a.UID != "" {
		if b.Secret == nil {
			return nil, false, registry.Errorf(registry.EINTERNAL, "Booking by uid needs the server secret.")
		}
		a.UID = b.Secret.BookingUID(a.Site, a.UID)
	}
	if text == "" {
		return b.Store.CreateAppointment(ctx, actor, a, nil)
	}
	if b.Sealer == nil {
		return nil, false, registry.FieldError("note", "This installation takes no notes for the health office (no health-office recipients configured).")
	}
	epoch := registry.DayOf(a.Start)
	rcpt, err := b.recipient(ctx, actor, epoch)
	if err != nil {
		return nil, false, err
	}
	seal := func(a *registry.Appointment) error {
		sealed, err := b.Sealer.SealNote(registry.NewAppointmentNote(a, text), rcpt)
		if err != nil {
			return err
		}
		a.NoteSealed, a.NoteEpoch, a.HasNote = sealed, epoch, true
		return nil
	}
	return b.Store.CreateAppointment(ctx, actor, a, seal)
}

// recipient returns the public epoch key of day: from Keys, which makes
// it when missing, or else from the store.
func (b *Booking) recipient(ctx context.Context, actor registry.Actor, day registry.Day) (string, error) {
	if b.Keys != nil {
		r, err := b.Keys.DayRecipient(ctx, actor, day)
		if registry.ErrorCode(err) == registry.ENOTFOUND {
			return "", registry.Errorf(registry.EUNAVAILABLE, "There is no epoch key for %s to seal the note with (%s).", day, registry.ErrorMessage(err))
		}
		return r, err
	}
	k, err := b.Store.EpochKey(ctx, day)
	switch {
	case registry.ErrorCode(err) == registry.ENOTFOUND || err == nil && k.DestroyedAt != nil:
		return "", registry.Errorf(registry.EUNAVAILABLE,
			"The epoch key of %s does not exist yet on this node, so the note cannot be sealed: book it on the node that holds the key store, or without a note.", day)
	case err != nil:
		return "", err
	}
	return k.Recipient, nil
}
