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

// batchActor is the audit actor of a batch whose visits come from several
// tokens.
const batchActor registry.Actor = "intake"

// pending is one queued registration, its visits (one per person of a
// group) and the channel its caller waits on. visits are copies the
// committer never hands out: each commit attempt works on fresh copies, so
// a failed batch cannot leave half-updated visits behind.
type pending struct {
	actor  registry.Actor
	visits []registry.Visit
	done   chan answer // buffered: the committer never blocks on a caller
}

type answer struct {
	visits []*registry.Visit
	err    error
}

// copies returns fresh copies of p's visits for one commit attempt.
func (p *pending) copies() []*registry.Visit {
	out := make([]*registry.Visit, len(p.visits))
	for i := range p.visits {
		v := p.visits[i]
		out[i] = &v
	}
	return out
}

// run is the committer: it takes the first queued registration, drains
// whatever else is queued already (without waiting) up to MaxBatch visits,
// commits them in one transaction and answers every caller. A group is
// never split: a registration that would overflow the batch starts the
// next one (a single group may exceed MaxBatch). It ends when Close closes
// the queue and the queue is empty.
func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	var next *pending
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
		batch, next = s.drain(append(make([]*pending, 0, s.MaxBatch), first), len(first.visits))
		s.commitBatch(ctx, batch)
	}
}

// drain adds queued registrations to batch, which holds n visits, while
// they fit into MaxBatch visits. It returns the batch and the registration
// that did not fit, if any.
func (s *Service) drain(batch []*pending, n int) ([]*pending, *pending) {
	for n < s.MaxBatch {
		select {
		case p, ok := <-s.queue:
			if !ok {
				return batch, nil
			}
			if n+len(p.visits) > s.MaxBatch {
				return batch, p
			}
			batch, n = append(batch, p), n+len(p.visits)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// commitBatch stores the batch in one transaction. When that fails with
// an error that one registration can cause (a conflict, invalid data) and
// the batch holds several registrations, it stores each registration alone
// (a group in one transaction of its own), so that one bad registration
// cannot fail the others, and answers each caller with its own result. An
// unavailable database fails the whole batch at once: retrying each
// registration against it would only multiply the wait. The fallback
// shares the batch's deadline.
func (s *Service) commitBatch(ctx context.Context, batch []*pending) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	parts := make([][]*registry.Visit, len(batch))
	var visits []*registry.Visit
	for i, p := range batch {
		parts[i] = p.copies()
		visits = append(visits, parts[i]...)
	}
	err := s.Store.CreateVisits(ctx, actorOf(batch), visits)
	retry := err != nil && len(batch) > 1 && retriable(err) && ctx.Err() == nil
	s.stats.batch(len(visits), retry)
	switch {
	case err == nil:
		for i, p := range batch {
			s.answer(p, parts[i], nil)
		}
		return
	case !retry:
		s.failBatch(batch, err)
		return
	}
	s.Logger.Warn("group commit failed; storing its registrations one by one", "registrations", len(batch), "visits", len(visits), "error", err)
	for _, p := range batch {
		vs := p.copies()
		err := s.Store.CreateVisits(ctx, p.actor, vs)
		s.answer(p, vs, err)
	}
}

// retriable reports whether a batch error may be caused by one of its
// registrations, so that storing them one by one can save the others.
func retriable(err error) bool {
	switch registry.ErrorCode(err) {
	case registry.EUNAVAILABLE:
		return false
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// failBatch answers every registration of a batch with err and logs it
// once for the whole batch.
func (s *Service) failBatch(batch []*pending, err error) {
	n := 0
	for _, p := range batch {
		n += len(p.visits)
	}
	s.Logger.Error("storing a batch of registrations failed", "registrations", len(batch), "visits", n, "error", err)
	for _, p := range batch {
		s.stats.answer(nil, err)
		p.done <- answer{err: err}
	}
}

func (s *Service) answer(p *pending, visits []*registry.Visit, err error) {
	if err != nil {
		s.Logger.Error("storing a registration failed", "visits", len(p.visits), "error", err)
		visits = nil
	}
	s.stats.answer(visits, err)
	p.done <- answer{visits: visits, err: err}
}

// actorOf returns the token's actor when every visit of the batch came from
// one token, else the generic intake actor.
func actorOf(batch []*pending) registry.Actor {
	a := batch[0].actor
	for _, p := range batch[1:] {
		if p.actor != a {
			return batchActor
		}
	}
	return a
}
