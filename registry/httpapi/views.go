package httpapi

import (
	"net/http"
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
)

// viewWindow is how long a list view counts as one: a list that
// refreshes itself (the host's page every few seconds) is recorded once
// per session, list, site and day in this time.
const viewWindow = 15 * time.Minute

// viewLog remembers the list views recorded within viewWindow.
type viewLog struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// claim reports whether key was not recorded within viewWindow before
// now, and marks it recorded.
func (v *viewLog) claim(key string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	if at, ok := v.seen[key]; ok && now.Sub(at) < viewWindow && !now.Before(at) {
		return false
	}
	if len(v.seen) >= 1024 {
		for k, at := range v.seen {
			if now.Sub(at) >= viewWindow || now.Before(at) {
				delete(v.seen, k)
			}
		}
	}
	v.seen[key] = now
	return true
}

// forget drops key, so that the next view records again.
func (v *viewLog) forget(key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.seen, key)
}

// auditView records that the signed-in account looked at a list (what:
// "list.present", …) of its site and day with rows rows: an AuditAccess
// entry, once per session, list, site and day within viewWindow. The
// list must not be shown when this fails.
func (s *Server) auditView(r *http.Request, dr *deskRequest, what string, day registry.Day, rows int) error {
	key := string(dr.sess.Hash) + "\x00" + what + "\x00" + dr.site.Code + "\x00" + string(day)
	now := s.cfg.Now()
	if !s.views.claim(key, now) {
		return nil
	}
	ev, err := registry.NewAuditEvent(now, dr.user.Actor(), dr.site.Code, registry.Access{What: what, Site: dr.site.Code, Day: day, Rows: rows})
	if err == nil {
		err = s.cfg.Store.AppendAudit(r.Context(), ev)
	}
	if err != nil {
		s.views.forget(key)
	}
	return err
}
