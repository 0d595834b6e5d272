package intake

import (
	"sync"

	"github.com/cityhall/registry/registry"
)

// BatchSizeBounds are the upper bounds of the batch size histogram buckets
// in Stats.BatchSizes; a last bucket counts larger batches.
var BatchSizeBounds = []int{1, 2, 4, 8, 16, 32, 64, 128, 256}

// Stats counts what the service did since it was created, for metrics.
type Stats struct {
	Registered uint64 // visits newly stored (companions included)
	Replayed   uint64 // registrations whose idempotency key was stored before
	Failed     uint64 // registrations the committer answered with an error
	Batches    uint64 // CreateParties transactions for group commits
	// BatchSizes[i] counts batches of at most BatchSizeBounds[i] visits
	// (and more than the previous bound); the last entry counts larger ones.
	BatchSizes     []uint64
	BatchSizeSum   uint64 // visits over all batches
	BatchesRetried uint64 // batches that failed and were stored registration by registration
}

type statsRecorder struct {
	mu sync.Mutex
	s  Stats
}

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	st := s.stats.s
	st.BatchSizes = make([]uint64, len(BatchSizeBounds)+1)
	copy(st.BatchSizes, s.stats.s.BatchSizes)
	return st
}

// batch counts a batch of n visits; retried when it failed and its
// registrations were stored one by one.
func (r *statsRecorder) batch(n int, retried bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s.BatchSizes == nil {
		r.s.BatchSizes = make([]uint64, len(BatchSizeBounds)+1)
	}
	i := 0
	for i < len(BatchSizeBounds) && n > BatchSizeBounds[i] {
		i++
	}
	r.s.BatchSizes[i]++
	r.s.Batches++
	r.s.BatchSizeSum += uint64(n)
	if retried {
		r.s.BatchesRetried++
	}
}

// answer counts the answer to one registration: its party or err.
func (r *statsRecorder) answer(p *registry.Party, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
		r.s.Failed++
	case p.Replay != nil:
		r.s.Replayed++
	default:
		r.s.Registered += uint64(len(p.Visits))
	}
}
