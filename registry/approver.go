package registry

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Approvers are persons, not keys. Each person (usually a data-protection
// officer and deputies) holds one or more signing keys (a key file, a key
// in ssh-agent, a FIDO2 security key); two approvals of a letter request
// must come from two different persons, whatever keys they use.
//
// The approver set changes only with the endorsement of other persons: the
// first person is registered at installation without one; while there is
// one person, that person endorses; from two persons on, every change
// needs the signatures of two different persons, who must not include the
// person the change is about unless there is no second other person (so
// with two approvers A and B, a change of A needs both A and B). Changes
// are proposed, endorsed (each endorsement a signature over the change's
// statement, which names the number of changes made before it, so that it
// is never valid twice) and applied once enough persons endorsed them.
//
// The audit log is the approver set's record: every applied change is an
// entry that carries its endorsements, and ReplayApprovers recomputes the
// set from those entries alone. The approvers table only supplies the
// names (which the entries hold as salted commitments, so that the staff
// retention rule can erase a former approver's name); a row that the log
// does not prove is shown as such and counts for nothing.

// The changes of the approver set.
const (
	ChangeAddPerson = "add"     // a new person with a first key
	ChangeAddKey    = "add-key" // another key of a person
	ChangeRemoveKey = "remove"  // a key removed; a person without keys is no approver
	changeRule      = "rule"    // the log's end of rule 1 (see ApproverChanged)
)

// ApproverRule is the rule of the approver changes this release makes:
// persons and endorsements (rule 1: one key, one signature).
const ApproverRule = 2

// Approver is one key of a person who may approve trace requests.
type Approver struct {
	ID     string `json:"id"`     // the key id (PublicKey.ID)
	Person string `json:"person"` // the key id of the person's first key
	// Name is the person's name ("" once erased: a former approver's,
	// after the staff retention period).
	Name string `json:"name"`
	// NameSalt is the salt of the name's commitment in the log (rule 2);
	// erased with the name.
	NameSalt  []byte    `json:"-"`
	PublicKey string    `json:"public_key"` // text form
	AddedAt   time.Time `json:"added_at"`
	// AddedBy are the persons whose keys endorsed the addition (none for
	// the first approver).
	AddedBy   []string   `json:"added_by,omitempty"`
	RemovedAt *time.Time `json:"removed_at,omitempty"`
	RemovedBy []string   `json:"removed_by,omitempty"`
	// Seq is the audit entry that registered the key; 0 for a row of the
	// approvers table that the log does not prove (Unproven).
	Seq      int64 `json:"seq,omitempty"`
	Unproven bool  `json:"unproven,omitempty"`
}

// Key returns the approver's public key (nil for a malformed row).
func (a *Approver) Key() *PublicKey {
	k, err := ParsePublicKey(a.PublicKey)
	if err != nil {
		return nil
	}
	return k
}

// Active reports whether the key may sign now.
func (a *Approver) Active() bool { return a.RemovedAt == nil && !a.Unproven }

// Actor is how the audit log names the approver: by the person's name and
// the key id.
func (a *Approver) Actor() Actor { return Actor("approver:" + a.Name + "#" + a.ID) }

// NameCommitment binds an approver's name to the log without revealing
// it: SHA-256 over a domain separator, the salt and the name.
func NameCommitment(salt []byte, name string) []byte {
	h := sha256.New()
	h.Write([]byte("registry approver name\x00"))
	h.Write(salt)
	h.Write([]byte(name))
	return h.Sum(nil)
}

// Endorsement is one signature over an ApproverChange's statement.
type Endorsement struct {
	Key       string `json:"key"` // key id
	Signature []byte `json:"signature"`
}

// ApproverChange is a change of the approver set, proposed and waiting
// for endorsements until it is applied.
type ApproverChange struct {
	ID     string `json:"id"`
	Op     string `json:"op"`     // ChangeAddPerson, ChangeAddKey or ChangeRemoveKey
	Serial int    `json:"serial"` // the number of approver changes before it
	Person string `json:"person"` // the person it is about (for add: the new key's id)
	KeyID  string `json:"key_id"`
	// PublicKey is the key added or removed (text form).
	PublicKey string `json:"public_key"`
	// Name and NameSalt: the new person's name (add), whose commitment
	// the statement covers.
	Name     string `json:"name,omitempty"`
	NameSalt []byte `json:"name_salt,omitempty"`
	// NameCommit is the commitment of a change read back from the log,
	// whose name may be erased; a proposal's is computed from Name and
	// NameSalt.
	NameCommit   []byte        `json:"-"`
	Endorsements []Endorsement `json:"endorsements"`
	ProposedBy   Actor         `json:"proposed_by"`
	CreatedAt    time.Time     `json:"created_at"`
	ExpiresAt    time.Time     `json:"expires_at"`
}

// ProposalValidity is how long a proposed change waits for endorsements.
const ProposalValidity = 7 * 24 * time.Hour

// PurposeApproverChange is the purpose of an endorsement (rule 2; rule 1
// signatures are PurposeApprover).
const PurposeApproverChange = "registry-approver-change/2"

// Statement is what every endorser signs: the change, the person, the
// key, the name's commitment and the serial.
func (c *ApproverChange) Statement() []byte {
	var commit []byte
	if c.Op == ChangeAddPerson {
		commit = c.commitment()
	}
	b, _ := json.Marshal(struct {
		Op         string `json:"op"`
		Serial     int    `json:"serial"`
		Person     string `json:"person"`
		ID         string `json:"id"`
		PublicKey  string `json:"public_key"`
		NameCommit []byte `json:"name_commit,omitempty"`
	}{c.Op, c.Serial, c.Person, c.KeyID, c.PublicKey, commit})
	return b
}

// commitment is the new person's name commitment.
func (c *ApproverChange) commitment() []byte {
	if len(c.NameSalt) > 0 {
		return NameCommitment(c.NameSalt, c.Name)
	}
	return c.NameCommit
}

// NewApproverChange returns a change of set: adding a person named name
// with key publicKey (op add), adding publicKey to person (add-key, person
// a person id or name), or removing the key keyID (remove; publicKey and
// person may be empty). EINVALID names the field at fault; ENOTFOUND for
// an unknown person or key; ECONFLICT for a key or name already there.
func NewApproverChange(set *ApproverSet, op, name, person, publicKey string, actor Actor, now time.Time) (*ApproverChange, error) {
	c := &ApproverChange{ID: NewID(), Op: op, Serial: set.Serial, ProposedBy: actor,
		CreatedAt: now.UTC().Truncate(time.Microsecond), Endorsements: []Endorsement{}}
	c.ExpiresAt = c.CreatedAt.Add(ProposalValidity)
	switch op {
	case ChangeAddPerson, ChangeAddKey:
		k, err := ParsePublicKey(publicKey)
		if err != nil {
			return nil, err
		}
		c.KeyID, c.PublicKey = k.ID(), k.String()
		if a, ok := set.Find(c.KeyID); ok {
			return nil, Errorf(ECONFLICT, "The key %s is already registered (%s).", c.KeyID, a.Label())
		}
	case ChangeRemoveKey:
		a, ok := set.Key(publicKey)
		if !ok {
			return nil, Errorf(ENOTFOUND, "No active approver has the key id %s; see 'registry approvers list'.", SafeKeyID(publicKey))
		}
		c.KeyID, c.PublicKey, c.Person = a.ID, a.PublicKey, a.Person
		return c, nil
	default:
		return nil, Errorf(EINVALID, "An approver change is add, add-key or remove.")
	}
	if op == ChangeAddKey {
		p, ok := set.Person(person)
		if !ok {
			return nil, Errorf(ENOTFOUND, "No active approver is named or has the person id %q; see 'registry approvers list'.", person)
		}
		c.Person = p
		return c, nil
	}
	if err := CheckApproverName(&name); err != nil {
		return nil, err
	}
	c.Person, c.Name, c.NameSalt = c.KeyID, name, NewSalt()
	return c, nil
}

// CheckApproverName cleans an approver's name in place: printable text
// (no control or format characters), at most 100 characters, without '#'
// and ':' (which the audit log's actor uses), and one script per word
// (see MixedScripts). EINVALID names the field "name".
func CheckApproverName(name *string) error {
	if err := (fieldRule{"name", name, true, 100, nil, ""}).apply(); err != nil {
		return err
	}
	if strings.ContainsAny(*name, "#:") {
		return FieldError("name", "name must not contain '#' or ':'.")
	}
	return CheckScripts("name", *name)
}

// Label names the approver for messages and lists: its name (scripts
// made visible when they mix) and key id.
func (a *Approver) Label() string {
	name := a.Name
	if name == "" {
		name = "(name erased)"
	}
	return fmt.Sprintf("%s, key %s", ShowScripts(name), a.ID)
}

// SafeKeyID returns id when it looks like a key id, so that no message
// echoes arbitrary input.
func SafeKeyID(id string) string {
	if len(id) == 16 && strings.Trim(id, "0123456789abcdef") == "" {
		return id
	}
	return "(malformed key id)"
}

// ApproverSet is the approver set as the audit log proves it.
type ApproverSet struct {
	// Keys are every proven key in the order the log registered them,
	// removed ones included, then the Unproven rows of the table.
	Keys []*Approver
	// Serial is the number of approver changes the log holds; the next
	// change's statement names it.
	Serial int
	// Rule is 1 until the log's first rule-2 entry, then 2.
	Rule int
	// Problems are the log's approver entries that do not verify, in
	// words; their changes were not applied.
	Problems []string
}

// Key returns the active key id.
func (s *ApproverSet) Key(id string) (*Approver, bool) {
	for _, a := range s.Keys {
		if a.ID == id && a.Active() {
			return a, true
		}
	}
	return nil, false
}

// Find returns the proven key id, removed or not (approvals made before
// a key was removed are checked with it).
func (s *ApproverSet) Find(id string) (*Approver, bool) {
	for _, a := range s.Keys {
		if a.ID == id && !a.Unproven {
			return a, true
		}
	}
	return nil, false
}

// Active returns the active keys.
func (s *ApproverSet) Active() []*Approver {
	var out []*Approver
	for _, a := range s.Keys {
		if a.Active() {
			out = append(out, a)
		}
	}
	return out
}

// Persons returns the ids of the persons with an active key, in order of
// registration.
func (s *ApproverSet) Persons() []string {
	var out []string
	for _, a := range s.Active() {
		if !slices.Contains(out, a.Person) {
			out = append(out, a.Person)
		}
	}
	return out
}

// Person returns the id of the active person named by id or name
// (case-insensitively).
func (s *ApproverSet) Person(idOrName string) (string, bool) {
	for _, a := range s.Active() {
		if a.Person == idOrName || a.ID == idOrName || a.Name != "" && strings.EqualFold(a.Name, idOrName) {
			return a.Person, true
		}
	}
	return "", false
}

// PersonName returns the name of person id ("" when unknown or erased).
func (s *ApproverSet) PersonName(id string) string {
	for _, a := range s.Keys {
		if a.Person == id && !a.Unproven {
			return a.Name
		}
	}
	return ""
}

// Names returns the names of the active persons (for the store's check
// that a new name cannot be mistaken for one of them).
func (s *ApproverSet) Names() []string {
	var out []string
	for _, p := range s.Persons() {
		if n := s.PersonName(p); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// EndorsementRule says how many distinct persons must endorse c, and who
// may: nobody for the first person; the one person while there is one;
// from two persons on, two persons other than the one the change is about,
// or, when there is only one other person, that person and the one it is
// about.
func (s *ApproverSet) EndorsementRule(c *ApproverChange) (need int, may func(person string) bool) {
	persons := s.Persons()
	subjectActive := slices.Contains(persons, c.Person)
	others := len(persons)
	if subjectActive {
		others--
	}
	anyone := func(p string) bool { return slices.Contains(persons, p) }
	switch {
	case len(persons) == 0:
		return 0, anyone
	case others >= 2:
		return 2, func(p string) bool { return p != c.Person && anyone(p) }
	case others == 1 && subjectActive:
		return 2, anyone
	}
	return 1, anyone
}

// Endorsers returns the distinct persons whose valid endorsements of c
// count (each person once, whatever keys signed), or EFORBIDDEN naming an
// endorsement that does not verify, is by a key that is not an active
// approver's, or by a person who may not endorse c.
func (s *ApproverSet) Endorsers(c *ApproverChange) ([]string, error) {
	_, may := s.EndorsementRule(c)
	var persons []string
	for _, e := range c.Endorsements {
		a, ok := s.Key(e.Key)
		switch {
		case !ok:
			return nil, Errorf(EFORBIDDEN, "The endorsement by key %s is not by an active approver.", SafeKeyID(e.Key))
		case !a.Key().Verify(PurposeApproverChange, c.Statement(), e.Signature):
			return nil, Errorf(EFORBIDDEN, "The endorsement by %s does not cover this change.", a.Label())
		case !may(a.Person):
			return nil, Errorf(EFORBIDDEN, "%s may not endorse a change about themselves: two other persons must.", a.Label())
		}
		if !slices.Contains(persons, a.Person) {
			persons = append(persons, a.Person)
		}
	}
	return persons, nil
}

// Check returns nil when c may be applied to s now: its serial is s's,
// its key and name fit, and enough persons endorsed it. EFORBIDDEN (not
// endorsed enough, or an endorsement that does not count), ECONFLICT (the
// set changed since c was proposed; a key or name taken; the last key of
// the last person while open requests need it is checked by the store).
func (s *ApproverSet) Check(c *ApproverChange) error {
	if c.Serial != s.Serial {
		return Errorf(ECONFLICT, "The approvers changed since this change was proposed (change %d, now %d): propose it again.", c.Serial, s.Serial)
	}
	switch c.Op {
	case ChangeAddPerson:
		if len(s.Persons()) == 0 && len(c.Endorsements) > 0 {
			return Errorf(EINVALID, "There is no approver yet: the first one is added without endorsements.")
		}
		if c.Person != c.KeyID || len(c.commitment()) == 0 {
			return Errorf(EINVALID, "A new person needs a name and its id is the key id of its first key.")
		}
		fallthrough
	case ChangeAddKey:
		if _, ok := s.Find(c.KeyID); ok {
			return Errorf(ECONFLICT, "The key %s is already registered.", c.KeyID)
		}
		if k, err := ParsePublicKey(c.PublicKey); err != nil || k.ID() != c.KeyID {
			return Errorf(EINVALID, "The change's public key does not match its key id.")
		}
		if _, ok := s.Person(c.Person); !ok && c.Op == ChangeAddKey {
			return Errorf(ENOTFOUND, "The person %s is no active approver.", SafeKeyID(c.Person))
		}
	case ChangeRemoveKey:
		a, ok := s.Key(c.KeyID)
		if !ok || a.Person != c.Person || a.PublicKey != c.PublicKey {
			return Errorf(ENOTFOUND, "No active approver has the key id %s.", SafeKeyID(c.KeyID))
		}
	default:
		return Errorf(EINVALID, "An approver change is add, add-key or remove.")
	}
	got, err := s.Endorsers(c)
	if err != nil {
		return err
	}
	if need, _ := s.EndorsementRule(c); len(got) < need {
		return Errorf(EFORBIDDEN, "The change needs the endorsements of %s; it has %d.", approverCount(need), len(got))
	}
	return nil
}

// Remaining says in words who still has to endorse c ("" when it may be
// applied).
func (s *ApproverSet) Remaining(c *ApproverChange) string {
	need, may := s.EndorsementRule(c)
	got, err := s.Endorsers(c)
	if err != nil || len(got) >= need {
		return ""
	}
	var names []string
	for _, p := range s.Persons() {
		if may(p) && !slices.Contains(got, p) {
			names = append(names, ShowScripts(s.PersonName(p)))
		}
	}
	return fmt.Sprintf("%d more of: %s", need-len(got), strings.Join(names, ", "))
}

// apply applies a checked change made by the audit entry seq at t.
func (s *ApproverSet) apply(c *ApproverChange, endorsers []string, seq int64, t time.Time) {
	s.Serial++
	switch c.Op {
	case ChangeAddPerson, ChangeAddKey:
		name := c.Name
		if c.Op == ChangeAddKey {
			name = s.PersonName(c.Person)
		}
		s.Keys = append(s.Keys, &Approver{ID: c.KeyID, Person: c.Person, Name: name, PublicKey: c.PublicKey,
			AddedAt: t, AddedBy: endorsers, Seq: seq})
	case ChangeRemoveKey:
		a, _ := s.Key(c.KeyID)
		at := t
		a.RemovedAt, a.RemovedBy = &at, endorsers
	}
}
