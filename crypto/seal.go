package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

// maxOpened bounds what OpenOuter and OpenInner read from a decrypting
// stream. A contact is well under 2 KiB of JSON (registry.Registration
// limits every field); anything larger is not a record of ours.
const maxOpened = 64 << 10

// maxCachedEpochs bounds the Sealer's cache of parsed epoch recipients
// (one per day; a handful are live at any time).
const maxCachedEpochs = 64

// Sealer seals contacts to the health office's recipients and a day's epoch
// recipient. It is safe for concurrent use.
type Sealer struct {
	inner []age.Recipient

	mu     sync.Mutex
	epochs map[string]age.Recipient
}

// NewSealer returns a Sealer whose inner layer is encrypted to r.
func NewSealer(r *Recipients) *Sealer {
	return &Sealer{inner: r.List(), epochs: map[string]age.Recipient{}}
}

// Seal marshals c to JSON, encrypts it to the health-office recipients and
// encrypts the result to epochRecipient, the "age1…" public half of the
// check-in day's epoch key. It costs exactly two age.Encrypt calls; parsed
// epoch recipients are cached per string.
//
// It returns EINVALID when c lacks its version or binding fields (a
// ciphertext that could not be bound to its row is never produced), when a
// field holds a character registry.BadRune refuses (it could never be
// opened by the strict decoder), or when
// epochRecipient is not a hybrid (age1pq1…) or X25519 (age1…) recipient.
func (s *Sealer) Seal(c *registry.Contact, epochRecipient string) ([]byte, error) {
	if err := checkSealable(c); err != nil {
		return nil, err
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal contact: %w", err)
	}
	return s.seal(plain, epochRecipient)
}

// SealNote seals an appointment's note for the health office exactly as
// Seal seals a contact: the JSON of n encrypted to the health-office
// recipients, that encrypted to epochRecipient, the public epoch key of
// the appointment's day. EINVALID when n lacks its version or binding, or
// holds a character the registry refuses.
func (s *Sealer) SealNote(n *registry.AppointmentNote, epochRecipient string) ([]byte, error) {
	switch {
	case n == nil || n.Version != registry.NoteVersion:
		return nil, registry.Errorf(registry.EINVALID, "No note of version %d to seal.", registry.NoteVersion)
	case n.AppointmentID == "" || n.Site == "" || n.Day == "" || n.Code == "":
		return nil, registry.Errorf(registry.EINVALID, "Note lacks its binding to an appointment (id, site, day, code).")
	}
	if r, _, bad := registry.BadRune(n.Text); bad {
		return nil, registry.Errorf(registry.EINVALID, "Note holds a character the registry refuses (%s).", registry.DescribeRune(r))
	}
	plain, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("marshal note: %w", err)
	}
	return s.seal(plain, epochRecipient)
}

// seal encrypts plain to the health office, then to the epoch recipient,
// and clears plain.
func (s *Sealer) seal(plain []byte, epochRecipient string) ([]byte, error) {
	defer clear(plain)
	outer, err := s.epochRecipient(epochRecipient)
	if err != nil {
		return nil, err
	}
	inner, err := encrypt(plain, s.inner...)
	if err != nil {
		return nil, fmt.Errorf("seal inner layer: %w", err)
	}
	sealed, err := encrypt(inner, outer)
	if err != nil {
		return nil, fmt.Errorf("seal outer layer: %w", err)
	}
	return sealed, nil
}

func checkSealable(c *registry.Contact) error {
	switch {
	case c == nil:
		return registry.Errorf(registry.EINVALID, "No contact to seal.")
	case c.Version != registry.ContactVersion:
		return registry.Errorf(registry.EINVALID, "Contact has version %d, want %d.", c.Version, registry.ContactVersion)
	case c.VisitID == "" || c.Site == "" || c.CheckIn.IsZero():
		return registry.Errorf(registry.EINVALID, "Contact lacks its binding to a visit (visit id, site, check-in).")
	}
	for _, s := range []string{c.GivenName, c.FamilyName, c.Street, c.HouseNumber, c.Postcode, c.City,
		c.Phone, c.Email, c.Host, c.Appointment, c.WalkIn, c.VisitID, c.Site} {
		if r, _, bad := registry.BadRune(s); bad {
			return registry.Errorf(registry.EINVALID, "Contact holds a character the registry refuses (%s).", registry.DescribeRune(r))
		}
	}
	return nil
}

// epochRecipient returns the parsed recipient, from the cache when it can.
func (s *Sealer) epochRecipient(str string) (age.Recipient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.epochs[str]; ok {
		return r, nil
	}
	r, _, _, err := parseRecipient(str)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Epoch recipient is not a hybrid (age1pq1…) or X25519 (age1…) recipient.")
	}
	if len(s.epochs) >= maxCachedEpochs {
		clear(s.epochs)
	}
	s.epochs[str] = r
	return r, nil
}

// encrypt returns plain encrypted to recipients in one age file.
func encrypt(plain []byte, recipients ...age.Recipient) ([]byte, error) {
	// An age file is a header of ~200 bytes per X25519 recipient (~1,650
	// per hybrid one), a 16-byte nonce and the payload with a 16-byte tag
	// per 64 KiB chunk.
	buf := bytes.NewBuffer(make([]byte, 0, len(plain)+64+hdrPerRecipient(recipients)))
	w, err := age.Encrypt(buf, recipients...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func hdrPerRecipient(recipients []age.Recipient) int {
	n := 0
	for _, r := range recipients {
		if _, ok := r.(*age.HybridRecipient); ok {
			n += 1650
		} else {
			n += 200
		}
	}
	return n
}

// OpenOuter removes the outer layer of a sealed record with the epoch
// identity of its day and returns the inner ciphertext: a standard age file
// encrypted to the health office, which export hands on unopened. It
// returns EINVALID when the epoch identity does not open sealed or sealed
// is malformed.
func OpenOuter(sealed []byte, epoch age.Identity) (inner []byte, err error) {
	if epoch == nil {
		return nil, registry.Errorf(registry.EINVALID, "No epoch key to open the sealed record.")
	}
	inner, err = decrypt(sealed, epoch)
	if err != nil {
		return nil, openError("sealed record", "the epoch key of its day", err)
	}
	return inner, nil
}

// OpenInner decrypts an inner ciphertext with the health-office identities
// and parses the contact strictly (unknown fields, trailing data and other
// schema versions are refused). It returns EINVALID on any failure; the message never holds
// content. It does not check the binding: use Open, or call CheckBinding.
func OpenInner(inner []byte, office []age.Identity) (*registry.Contact, error) {
	plain, err := openOffice(inner, office, "inner ciphertext")
	if err != nil {
		return nil, err
	}
	c, err := decodeContact(plain)
	clear(plain)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Sealed contact is not a valid contact record.")
	}
	return c, nil
}

// openOffice decrypts an inner ciphertext (what, for errors) with the
// health-office identities.
func openOffice(inner []byte, office []age.Identity, what string) ([]byte, error) {
	if len(office) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "No health-office identity to open the %s.", what)
	}
	plain, err := decrypt(inner, office...)
	if err != nil {
		return nil, openError(what, "the health-office identities", err)
	}
	return plain, nil
}

// OpenNote decrypts the inner ciphertext of an appointment's note with
// the health-office identities and parses it strictly. EINVALID on any
// failure; the message never holds content. The caller checks the
// binding (AppointmentNote.CheckBinding).
func OpenNote(inner []byte, office []age.Identity) (*registry.AppointmentNote, error) {
	plain, err := openOffice(inner, office, "inner ciphertext of a note")
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var n registry.AppointmentNote
	if err := strictjson.Decode(plain, &n); err != nil || n.Version != registry.NoteVersion {
		return nil, registry.Errorf(registry.EINVALID, "Sealed note is not a valid appointment note.")
	}
	return &n, nil
}

// Open removes both layers of v.Sealed and checks that the contact belongs
// to v (visit id, site and check-in), so that a ciphertext copied into
// another row is detected. It returns EINVALID on any failure.
func Open(v *registry.Visit, epoch age.Identity, office []age.Identity) (*registry.Contact, error) {
	if v == nil {
		return nil, registry.Errorf(registry.EINVALID, "No visit to open.")
	}
	inner, err := OpenOuter(v.Sealed, epoch)
	if err != nil {
		return nil, err
	}
	c, err := OpenInner(inner, office)
	if err != nil {
		return nil, err
	}
	if err := c.CheckBinding(v.ID, v.Site, v.CheckIn); err != nil {
		return nil, err
	}
	return c, nil
}

// decrypt opens one age file, reading at most maxOpened bytes of plaintext.
func decrypt(ciphertext []byte, identities ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ciphertext), identities...)
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxOpened+1))
	if err != nil {
		return nil, err
	}
	if len(plain) > maxOpened {
		return nil, errTooLarge
	}
	return plain, nil
}

var errTooLarge = errors.New("plaintext too large")

// openError turns a decryption failure into EINVALID without age's text.
func openError(what, key string, err error) error {
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch):
		return registry.Errorf(registry.EINVALID, "The %s does not open with %s.", what, key)
	case errors.Is(err, errTooLarge):
		return registry.Errorf(registry.EINVALID, "The %s is larger than any contact record.", what)
	}
	return registry.Errorf(registry.EINVALID, "The %s is malformed or corrupted.", what)
}

// decodeContact parses exactly one JSON object with only known fields, by
// the registry's one set of JSON rules (package strictjson).
func decodeContact(plain []byte) (*registry.Contact, error) {
	var c registry.Contact
	if err := strictjson.Decode(plain, &c); err != nil {
		return nil, err
	}
	if c.Version != registry.ContactVersion {
		return nil, fmt.Errorf("unknown contact version %d", c.Version)
	}
	return &c, nil
}
