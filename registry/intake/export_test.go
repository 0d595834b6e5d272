package intake

// Queued returns the number of visits waiting for the committer, so that
// tests can tell when callers have queued.
func (s *Service) Queued() int { return len(s.queue) }
