package intake

import (
	"context"
	"errors"
	"time"

	"github.com/cityhall/registry/registry"
)

// commitTimeout bounds the commit of one batch, its fallback included: a
// hung database fails the waiting callers within seconds instead of
// holding them (sunlight's sequencing pool: one deadline for a pool, not
// one per retry).
const commitTimeout = 4 * time.Second

// pending is one queued registration and the channel its caller waits on.
type pending struct {
	party *registry.Party
	done  chan error // buffered: the committer never blocks on a caller
}

func (p *pending) size() int { return len(p.party.Visits) }

// run is the committer: it takes the first queued registration, drains
// whatever else is queued up to MaxBatch visits (under load, waiting for
// more about as long as the last commit took, at most maxLinger),
// commits them in one transaction and answers every caller. A party is
// never split: a registration that would overflow the batch starts the
// next one (a single party may exceed MaxBatch). It ends when Close closes
// the queue and the queue is empty.
func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	var next *pending
	var linger time.Duration
	for {
		first := next
		if first == nil {
			p, ok := <-s.queue
			if !ok {
				return
			}
			first = p
		}
		var batch []*pending
		batch, next = s.drain(append(make([]*pending, 0, s.MaxBatch), first), first.size(), linger)
		start := time.Now()
		s.commitBatch(ctx, batch)
		linger = 0
		if len(batch) > 1 {
			// Under load, wait for more registrations about as long as a
			// commit takes: a batch twice the size costs little more than
			// one (one transaction, one fsync, one audit entry per actor).
			linger = min(time.Since(start), maxLinger)
		}
	}
}

// maxLinger bounds how long the committer waits to fill a batch.
const maxLinger = 2 * time.Millisecond

// drain adds queued registrations to batch, which holds n visits, while
// they fit into MaxBatch visits, waiting up to linger for more once the
// queue is empty. It returns the batch and the registration that did not
// fit, if any.
func (s *Service) drain(batch []*pending, n int, linger time.Duration) ([]*pending, *pending) {
	var timeout <-chan time.Time
	for n < s.MaxBatch {
		var p *pending
		var ok bool
		select {
		case p, ok = <-s.queue:
		default:
			if linger <= 0 {
				return batch, nil
			}
			if timeout == nil {
				timeout = time.After(linger)
			}
			select {
			case p, ok = <-s.queue:
			case <-timeout:
				return batch, nil
			}
		}
		if !ok {
			return batch, nil
		}
		if n+p.size() > s.MaxBatch {
			return batch, p
		}
		batch, n = append(batch, p), n+p.size()
	}
	return batch, nil
}

// commitBatch stores the batch in one transaction. When that fails with
// an error that one registration can cause (a conflict, invalid data) and
// the batch holds several registrations, it stores each registration alone
// (a party in one transaction of its own), so that one bad registration
// cannot fail the others, and answers each caller with its own result. An
// unavailable database fails the whole batch at once: retrying each
// registration against it would only multiply the wait. The fallback
// shares the batch's deadline.
func (s *Service) commitBatch(ctx context.Context, batch []*pending) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	parties := make([]*registry.Party, len(batch))
	n := 0
	for i, p := range batch {
		parties[i] = p.party
		n += p.size()
	}
	err := s.Store.CreateParties(ctx, parties)
	retry := err != nil && len(batch) > 1 && retriable(err) && ctx.Err() == nil
	s.stats.batch(n, retry)
	switch {
	case err == nil:
		for _, p := range batch {
			s.answer(p, nil)
		}
		return
	case !retry:
		// An unavailable database (down, hung, disk full) is a warning,
		// as its 503 answers are; readiness and metrics report it.
		log := s.Logger.Error
		if registry.ErrorCode(err) == registry.EUNAVAILABLE {
			log = s.Logger.Warn
		}
		log("storing a batch of registrations failed", "registrations", len(batch), "visits", n, "error", err)
		for _, p := range batch {
			s.answer(p, err)
		}
		return
	}
	s.Logger.Warn("group commit failed; storing its registrations one by one", "registrations", len(batch), "visits", n, "error", err)
	for _, p := range batch {
		err := s.Store.CreateParties(ctx, []*registry.Party{p.party})
		if err != nil {
			s.Logger.Error("storing a registration failed", "visits", p.size(), "error", err)
		}
		s.answer(p, err)
	}
}

// retriable reports whether a batch error may be caused by one of its
// registrations, so that storing them one by one can save the others.
func retriable(err error) bool {
	if registry.ErrorCode(err) == registry.EUNAVAILABLE {
		return false
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

func (s *Service) answer(p *pending, err error) {
	s.stats.answer(p.party, err)
	p.done <- err
}
