package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ReplayApprovers computes the approver set from the log's
// AuditApproverChanged entries (in order of Seq; other entries are
// ignored), verifying every change under the rule in force when it was
// made: a change that does not verify is listed in Problems and not
// applied, so that an entry or row written into the database by hand
// counts for nothing. rows, the approvers table, supplies the names that
// rule-2 entries hold only as commitments: a row's name is taken when its
// salt and name match the entry's commitment; rows the log does not prove
// are appended as Unproven.
func ReplayApprovers(events []*AuditEvent, rows []*Approver) *ApproverSet {
	s := &ApproverSet{Rule: 1}
	byID := map[string]*Approver{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, e := range events {
		if e.Action != AuditApproverChanged {
			continue
		}
		var p ApproverChanged
		if err := json.Unmarshal([]byte(e.Details), &p); err != nil {
			s.problem(e, "its details do not parse")
			s.Serial++
			continue
		}
		if p.Rule >= 2 {
			s.replay2(e, &p, byID)
		} else {
			s.replay1(e, &p)
		}
	}
	for _, r := range rows {
		if _, ok := s.Find(r.ID); !ok {
			u := *r
			u.Unproven, u.Seq = true, 0
			s.Keys = append(s.Keys, &u)
		}
	}
	return s
}

func (s *ApproverSet) problem(e *AuditEvent, format string, args ...any) {
	s.Problems = append(s.Problems, fmt.Sprintf("the approver change at seq %d %s", e.Seq, fmt.Sprintf(format, args...)))
}

// replay2 applies a rule-2 entry.
func (s *ApproverSet) replay2(e *AuditEvent, p *ApproverChanged, rows map[string]*Approver) {
	if p.Op == changeRule {
		if p.Serial != s.Serial {
			s.problem(e, "has serial %d, not %d", p.Serial, s.Serial)
		}
		s.Rule = 2
		s.Serial++
		return
	}
	s.Rule = 2
	c := &ApproverChange{Op: p.Op, Serial: p.Serial, Person: p.Person, KeyID: p.ID, PublicKey: p.PublicKey,
		Endorsements: p.Endorsements, NameCommit: p.NameCommit}
	// The statement covers the name's commitment: the name itself comes
	// from the table when its salt and name match (else it was erased).
	if r := rows[p.ID]; p.Op == ChangeAddPerson && r != nil && len(r.NameSalt) > 0 && bytes.Equal(NameCommitment(r.NameSalt, r.Name), p.NameCommit) {
		c.Name = r.Name
	}
	if err := s.Check(c); err != nil {
		s.problem(e, "does not verify: %s", ErrorMessage(err))
		s.Serial++
		return
	}
	endorsers, _ := s.Endorsers(c)
	s.apply(c, endorsers, e.Seq, e.Time)
}

// replay1 applies a rule-1 entry: before persons, a key was an approver
// on its own (its own person), added or removed with the signature of one
// active key, the first without one. After a rule-2 entry, rule 1 no
// longer applies.
func (s *ApproverSet) replay1(e *AuditEvent, p *ApproverChanged) {
	defer func() { s.Serial++ }()
	if s.Rule >= 2 {
		s.problem(e, "is of the rule before persons, written after the log moved on to persons")
		return
	}
	k, err := ParsePublicKey(p.PublicKey)
	if err != nil || k.Kind != KeyRegistry || k.ID() != p.ID {
		s.problem(e, "names a malformed key")
		return
	}
	stmt := approverStatement1(p.Op, p.ID, p.Name, p.PublicKey)
	var by *Approver
	if p.By != "" {
		a, ok := s.Key(p.By)
		if !ok || !a.Key().Verify(PurposeApprover, stmt, p.Signature) {
			s.problem(e, "is not signed by an active approver")
			return
		}
		by = a
	}
	switch {
	case p.Op == ChangeAddPerson && by == nil && len(s.Active()) > 0:
		s.problem(e, "adds an approver without a signature although there are approvers")
	case p.Op == ChangeAddPerson:
		if _, ok := s.Find(p.ID); ok {
			s.problem(e, "adds a key that is registered already")
			return
		}
		a := &Approver{ID: p.ID, Person: p.ID, Name: p.Name, PublicKey: p.PublicKey, AddedAt: e.Time, Seq: e.Seq}
		if by != nil {
			a.AddedBy = []string{by.Person}
		}
		s.Keys = append(s.Keys, a)
	case p.Op == ChangeRemoveKey && by != nil:
		target, ok := s.Key(p.ID)
		if !ok || len(s.Active()) == 1 {
			s.problem(e, "removes a key that is not an active approver, or the last one")
			return
		}
		at := e.Time
		target.RemovedAt, target.RemovedBy = &at, []string{by.Person}
	default:
		s.problem(e, "is neither a signed addition nor a signed removal")
	}
}

// approverStatement1 is the rule-1 statement an approver signed to add or
// remove one (PurposeApprover).
func approverStatement1(op, id, name, publicKey string) []byte {
	b, _ := json.Marshal(struct {
		Op        string `json:"op"`
		ID        string `json:"id"`
		Name      string `json:"name"`
		PublicKey string `json:"public_key"`
	}{op, id, name, publicKey})
	return b
}

// RuleEntry returns the payload that closes rule 1 in a log that has
// rule-1 approver entries and no rule-2 one (a store appends it once,
// when it is upgraded), or nil when none is needed.
func (s *ApproverSet) RuleEntry() *ApproverChanged {
	if s.Rule >= 2 || s.Serial == 0 {
		return nil
	}
	return &ApproverChanged{Op: changeRule, Rule: ApproverRule, Serial: s.Serial}
}

// Payload returns the audit payload of an applied change c.
func (c *ApproverChange) Payload() ApproverChanged {
	p := ApproverChanged{Op: c.Op, ID: c.KeyID, PublicKey: c.PublicKey, Rule: ApproverRule, Serial: c.Serial,
		Person: c.Person, Endorsements: c.Endorsements}
	if c.Op == ChangeAddPerson {
		p.NameCommit = c.commitment()
	}
	return p
}
