package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cityhall/registry/registry"
)

// pageSize is how many events Verify reads per store call.
const pageSize = 1000

// reorderWindow bounds the search for an entry's original position when it
// is found at the wrong sequence number (only on the error path).
const reorderWindow = 100_000

// Result is a verified log.
type Result struct {
	Size int64  // number of entries, the Seq of the last
	Head []byte // Hash of the last entry; registry.GenesisHash when empty
	// Checkpoint is the checkpoint the log was proven to extend, or nil.
	Checkpoint *Checkpoint
}

// The problems VerifyError reports.
const (
	Changed   = "changed"   // an entry's content (or its hash) was altered
	Removed   = "removed"   // entries are missing before the end
	Reordered = "reordered" // an entry sits at another position than it was written at
	Truncated = "truncated" // entries are missing at the end (seen only with a checkpoint)
	Rewritten = "rewritten" // the chain was recomputed: it no longer matches the checkpoint
)

// VerifyError names the first entry that does not verify and what is wrong
// with it. It unwraps to an EINVALID *registry.Error with the same message,
// so registry.ErrorCode and registry.ErrorMessage work on it.
type VerifyError struct {
	Seq     int64  // the first bad sequence number
	Problem string // Changed, Removed, Reordered, Truncated or Rewritten
	Detail  string // what was found, in words
}

func (e *VerifyError) message() string {
	return fmt.Sprintf("The audit log does not verify at seq %d (%s): %s.", e.Seq, e.Problem, e.Detail)
}

func (e *VerifyError) Error() string { return e.message() }

// Unwrap returns the error as an EINVALID *registry.Error.
func (e *VerifyError) Unwrap() error { return registry.Errorf(registry.EINVALID, "%s", e.message()) }

// Verify walks the whole log in pages of s.AuditEvents and checks that the
// sequence starts at 1 without gaps, that every entry's PrevHash is the
// Hash of the entry before it (registry.GenesisHash for the first), that
// every Hash equals ComputeHash() and that every actor still named matches
// the commitment the hash covers. With a checkpoint it also checks that
// the log has at least cp.Size entries and that entry cp.Size has the hash
// cp.Hash, that is, that the log extends the checkpoint.
//
// It returns the size and head of the log, or a *VerifyError naming the
// first bad seq (EINVALID), or the store's error.
func Verify(ctx context.Context, s registry.AuditStore, cp *Checkpoint) (*Result, error) {
	if cp != nil {
		if err := cp.check(); err != nil {
			return nil, err
		}
	}
	var prev *registry.AuditEvent
	var erased erasures
	for after := int64(0); ; after = prev.Seq {
		page, err := s.AuditEvents(ctx, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("read audit events after seq %d: %w", after, err)
		}
		for _, ev := range page {
			if err := checkEvent(prev, ev); err != nil {
				return nil, err
			}
			if err := checkAgainst(cp, ev); err != nil {
				return nil, err
			}
			erased.add(ev)
			prev = ev
		}
		if len(page) < pageSize {
			break
		}
	}
	if err := erased.check(); err != nil {
		return nil, err
	}
	return result(prev, cp)
}

// erasures checks that every actor missing from the log (no name, no
// salt: its audit_actors row is gone) belongs to a month whose staff
// names a purge erased: the purge records the month it erased before
// (PurgeReport.StaffBefore), so a row deleted by hand is found.
type erasures struct {
	horizon time.Time              // the start of the newest month a purge erased before
	missing []*registry.AuditEvent // version 2 events without actor, at or after horizon
}

func (r *erasures) add(ev *registry.AuditEvent) {
	if ev.Version >= 2 && ev.Actor == "" && len(ev.ActorSalt) == 0 {
		r.missing = append(r.missing, ev)
	}
	if ev.Action != registry.AuditPurge {
		return
	}
	var p registry.PurgeReport
	if json.Unmarshal([]byte(ev.Details), &p) != nil || p.DryRun {
		return
	}
	var h time.Time
	switch {
	case p.StaffBefore != nil:
		b := p.StaffBefore.UTC()
		h = time.Date(b.Year(), b.Month(), 1, 0, 0, 0, 0, time.UTC)
	case p.StaffNamesErased > 0:
		// A purge of a release that did not record the month: it may have
		// erased anything before it.
		h = p.RanAt.UTC()
	}
	if h.After(r.horizon) {
		r.horizon = h
		r.missing = slices.DeleteFunc(r.missing, func(e *registry.AuditEvent) bool { return e.Time.Before(h) })
	}
}

func (r *erasures) check() error {
	if len(r.missing) == 0 {
		return nil
	}
	e := r.missing[0]
	return &VerifyError{Seq: e.Seq, Problem: Changed, Detail: fmt.Sprintf(
		"its actor's name and salt are gone (%d entries like it), but no purge erased the staff names of %s: the row of audit_actors was deleted by hand",
		len(r.missing), e.Time.UTC().Format("2006-01"))}
}

func result(last *registry.AuditEvent, cp *Checkpoint) (*Result, error) {
	r := &Result{Head: registry.GenesisHash, Checkpoint: cp}
	if last != nil {
		r.Size, r.Head = last.Seq, last.Hash
	}
	switch {
	case cp == nil:
	case r.Size < cp.Size:
		return nil, &VerifyError{Seq: r.Size + 1, Problem: Truncated,
			Detail: fmt.Sprintf("the log ends at seq %d, but the checkpoint covers %d entries: entries were removed from its end", r.Size, cp.Size)}
	case cp.Size == 0 && !bytes.Equal(cp.Hash, registry.GenesisHash):
		return nil, &VerifyError{Seq: 0, Problem: Rewritten, Detail: "the checkpoint of the empty log does not hold the genesis hash"}
	}
	return r, nil
}

// checkAgainst compares the entry at the checkpoint's size with it.
func checkAgainst(cp *Checkpoint, ev *registry.AuditEvent) error {
	if cp == nil || ev.Seq != cp.Size || bytes.Equal(ev.Hash, cp.Hash) {
		return nil
	}
	return &VerifyError{Seq: ev.Seq, Problem: Rewritten,
		Detail: "its hash differs from the checkpoint's: the log was rewritten at or before this entry"}
}

// checkEvent checks ev against its predecessor prev (nil for the first).
func checkEvent(prev, ev *registry.AuditEvent) error {
	want, wantPrev := int64(1), registry.GenesisHash
	if prev != nil {
		want, wantPrev = prev.Seq+1, prev.Hash
	}
	switch {
	case ev.Seq > want:
		return &VerifyError{Seq: want, Problem: Removed, Detail: missing(want, ev.Seq)}
	case ev.Seq < want:
		return &VerifyError{Seq: ev.Seq, Problem: Reordered, Detail: fmt.Sprintf("the store returned seq %d after seq %d", ev.Seq, want-1)}
	}
	hashOK := bytes.Equal(ev.Hash, ev.ComputeHash())
	linkOK := bytes.Equal(ev.PrevHash, wantPrev)
	switch {
	case hashOK && linkOK && !actorOK(ev):
		return &VerifyError{Seq: ev.Seq, Problem: Changed, Detail: "its actor does not match the actor it was written with"}
	case hashOK && linkOK:
		return nil
	case linkOK:
		return &VerifyError{Seq: ev.Seq, Problem: Changed, Detail: "its content does not match its hash"}
	case hashOK && ev.Seq == 1:
		return &VerifyError{Seq: 1, Problem: Changed, Detail: "the first entry does not start from the genesis hash"}
	case hashOK:
		return &VerifyError{Seq: ev.Seq - 1, Problem: Changed,
			Detail: fmt.Sprintf("seq %d no longer links to it: it was replaced, its hash recomputed", ev.Seq)}
	}
	if orig, ok := writtenAs(ev); ok {
		return &VerifyError{Seq: ev.Seq, Problem: Reordered, Detail: fmt.Sprintf("it holds the entry written as seq %d (entries were swapped, or removed and renumbered)", orig)}
	}
	return &VerifyError{Seq: ev.Seq, Problem: Changed, Detail: "neither its content nor its link to the entry before matches"}
}

// actorOK reports whether a version 2 event's actor matches its
// commitment; an actor erased after the staff retention period (no name,
// no salt) matches too. Version 1 events cover the name in the hash.
func actorOK(ev *registry.AuditEvent) bool {
	switch {
	case ev.Version < 2:
		return true
	case ev.Actor == "" && len(ev.ActorSalt) == 0:
		return true
	}
	return bytes.Equal(ev.ActorCommit, registry.ActorCommitment(ev.ActorSalt, ev.Actor))
}

func missing(from, next int64) string {
	if next == from+1 {
		return fmt.Sprintf("seq %d is missing, the next entry is seq %d", from, next)
	}
	return fmt.Sprintf("seqs %d to %d are missing, the next entry is seq %d", from, next-1, next)
}

// writtenAs finds the sequence number under which ev's content was written,
// by recomputing its hash with the numbers near its own.
func writtenAs(ev *registry.AuditEvent) (int64, bool) {
	moved := *ev
	for d := int64(1); d <= reorderWindow; d++ {
		for _, seq := range []int64{ev.Seq + d, ev.Seq - d} {
			if moved.Seq = seq; seq >= 1 && bytes.Equal(moved.ComputeHash(), ev.Hash) {
				return seq, true
			}
		}
	}
	return 0, false
}
