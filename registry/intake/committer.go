package intake

import (
	"context"
	"time"

	"github.com/cityhall/registry/registry"
)

// commitTimeout bounds one CreateVisits call, so that a hung database
// fails the waiting callers instead of holding them forever (and answers
// them before the HTTP server's 30-second write timeout).
const commitTimeout = 20 * time.Second

// batchActor is the audit actor of a batch whose visits come from several
// tokens.
const batchActor registry.Actor = "intake"

// pending is one queued visit and the channel its caller waits on. visit is
// a copy the committer never hands out: each commit attempt works on fresh
// copies, so a failed batch cannot leave half-updated visits behind.
type pending struct {
	actor registry.Actor
	visit registry.Visit
	done  chan answer // buffered: the committer never blocks on a caller
}

type answer struct {
	visit *registry.Visit
	err   error
}

// run is the committer: it takes the first queued visit, drains whatever
// else is queued already (without waiting) up to MaxBatch, commits them in
// one transaction and answers every caller. It ends when Close closes the
// queue and the queue is empty.
func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	for first := range s.queue {
		batch := append(make([]*pending, 0, s.MaxBatch), first)
		batch = s.drain(batch)
		s.commitBatch(ctx, batch)
	}
}

func (s *Service) drain(batch []*pending) []*pending {
	for len(batch) < s.MaxBatch {
		select {
		case p, ok := <-s.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch stores the batch in one transaction. When that fails, it
// stores each visit alone, so that one bad visit cannot fail the others, and
// answers each caller with its own result.
func (s *Service) commitBatch(ctx context.Context, batch []*pending) {
	visits := make([]*registry.Visit, len(batch))
	for i, p := range batch {
		v := p.visit
		visits[i] = &v
	}
	err := s.create(ctx, actorOf(batch), visits)
	s.stats.batch(len(batch), err != nil)
	if err == nil {
		for i, p := range batch {
			s.answer(p, visits[i], nil)
		}
		return
	}
	if len(batch) == 1 {
		s.answer(batch[0], nil, err)
		return
	}
	s.Logger.Warn("group commit failed; storing its visits one by one", "visits", len(batch), "error", err)
	for _, p := range batch {
		v := p.visit
		err := s.create(ctx, p.actor, []*registry.Visit{&v})
		s.answer(p, &v, err)
	}
}

func (s *Service) create(ctx context.Context, actor registry.Actor, visits []*registry.Visit) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	return s.Store.CreateVisits(ctx, actor, visits)
}

func (s *Service) answer(p *pending, v *registry.Visit, err error) {
	if err != nil {
		s.Logger.Error("storing a visit failed", "error", err)
		v = nil
	}
	s.stats.answer(v, err)
	p.done <- answer{visit: v, err: err}
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
