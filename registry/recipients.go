package registry

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The health office's recipients are pinned by the audit log: the
// fingerprint of the last AuditRecipientsChanged entry that verifies is
// the pin, whatever a table says. The first entry pins at installation
// (trust on first use); every later one must carry the signatures of
// approvers over the new fingerprint (PurposeRecipients): one person's
// while there is one, two persons' from two on. A changed recipient set
// reroutes every new registration to other keys, so it needs the same
// four eyes as a change of the approver set.

// RecipientsSignature is one approver's signature over a recipients
// fingerprint.
type RecipientsSignature = Endorsement

// RecipientsSigners returns how many distinct persons of set must sign a
// change of the recipients: one while there is one, two from two on.
func RecipientsSigners(set *ApproverSet) int { return min(2, len(set.Persons())) }

// CheckRecipientsChange returns nil when sigs carry the valid signatures
// over fingerprint of RecipientsSigners(set) distinct persons; EFORBIDDEN
// otherwise, saying what is missing.
func CheckRecipientsChange(set *ApproverSet, fingerprint string, sigs []RecipientsSignature) error {
	var persons []string
	for _, sg := range sigs {
		a, ok := set.Key(sg.Key)
		if !ok || !a.Key().Verify(PurposeRecipients, []byte(fingerprint), sg.Signature) {
			return Errorf(EFORBIDDEN, "The signature by key %s on the recipients %s is not an active approver's valid signature.", SafeKeyID(sg.Key), fingerprint)
		}
		if !slices.Contains(persons, a.Person) {
			persons = append(persons, a.Person)
		}
	}
	if need := RecipientsSigners(set); len(persons) < need || need == 0 {
		return Errorf(EFORBIDDEN, "A change of the health office's recipients needs the signatures of %s; it has %d.", approverCount(max(need, 1)), len(persons))
	}
	return nil
}

// PinnedRecipients returns the pinned fingerprint from the log's entries
// (AuditRecipientsChanged and AuditApproverChanged, in order of Seq): the
// first recipients entry, then each later one whose signatures verify
// against the approver set as it was at that entry. Entries that do not
// verify are listed in problems and ignored. "" when nothing is pinned.
func PinnedRecipients(events []*AuditEvent, rows []*Approver) (pinned string, problems []string) {
	var approverEvents []*AuditEvent
	for _, e := range events {
		switch e.Action {
		case AuditApproverChanged:
			approverEvents = append(approverEvents, e)
		case AuditRecipientsChanged:
			var p RecipientsChanged
			if err := json.Unmarshal([]byte(e.Details), &p); err != nil || p.New == "" {
				problems = append(problems, fmt.Sprintf("the recipients change at seq %d does not parse", e.Seq))
				continue
			}
			if pinned == "" && p.Old == "" {
				pinned = p.New // installation
				continue
			}
			set := ReplayApprovers(approverEvents, rows)
			sigs := p.Signatures
			if len(sigs) == 0 && p.SignedBy != "" && p.Signature != nil {
				sigs = []RecipientsSignature{{Key: p.SignedBy, Signature: p.Signature}}
			}
			if p.Old != pinned {
				problems = append(problems, fmt.Sprintf("the recipients change at seq %d starts from %s, not from the pinned %s", e.Seq, p.Old, pinned))
				continue
			}
			if err := checkRecipientsLogged(set, p.New, sigs, p.Signatures == nil); err != nil {
				problems = append(problems, fmt.Sprintf("the recipients change at seq %d does not verify: %s", e.Seq, ErrorMessage(err)))
				continue
			}
			pinned = p.New
		}
	}
	return pinned, problems
}

// checkRecipientsLogged checks a logged change; one of the rule before
// persons (a single signature) needs one signer.
func checkRecipientsLogged(set *ApproverSet, fingerprint string, sigs []RecipientsSignature, rule1 bool) error {
	if !rule1 {
		return CheckRecipientsChange(set, fingerprint, sigs)
	}
	for _, sg := range sigs {
		if a, ok := set.Key(sg.Key); ok && a.Key().Verify(PurposeRecipients, []byte(fingerprint), sg.Signature) {
			return nil
		}
	}
	return Errorf(EFORBIDDEN, "not signed by an approver")
}

// approverCount says "one approver" or "2 approvers (different persons)".
func approverCount(n int) string {
	if n == 1 {
		return "one approver"
	}
	return fmt.Sprintf("%d approvers (different persons)", n)
}
