package office

import (
	"context"
	"errors"
	"net/http"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

// Operations the web interface and the command line share.

// Withdraw withdraws a request: at the registry when it was filed (a
// request the registry no longer knows, or exported, is refused there),
// else before it is filed.
func Withdraw(ctx context.Context, s *Store, c *Client, actor string, cs *Case, q *Request) error {
	if q.Status != StatusPending && q.Status != StatusApproved && q.Status != StatusFiling {
		return registry.Errorf(registry.ECONFLICT, "The request is %s; it can no longer be withdrawn.", q.Status)
	}
	if q.RemoteID != "" {
		reg, err := s.Registry(ctx, q.RegistryID)
		if err != nil {
			return err
		}
		if err := c.Withdraw(ctx, reg, q.RemoteID); err != nil {
			var re *RemoteError
			if errors.As(err, &re) && re.Status < 500 {
				return registry.Errorf(registry.ECONFLICT, "%s refused the withdrawal: %s", reg.Name, re.Detail)
			}
			return registry.Errorf(registry.EUNAVAILABLE, "%s cannot be reached; try again.", reg.Name)
		}
	}
	old := q.Status
	q.Status, q.Note = StatusWithdrawn, "zurückgezogen von "+actor
	if err := s.SaveRequest(ctx, q, old, ""); err != nil {
		return err
	}
	return s.Log(ctx, actor, "request.withdraw", q.ID, map[string]string{"case": cs.ID, "registry": q.RegistryID})
}

// Refile files a request again with the same scope, after its download
// broke off, it was refused, rejected or its approval expired: a new
// request to the same registry in the same case.
func (s *Store) Refile(ctx context.Context, actor string, q *Request) error {
	if q.Status != StatusLost && q.Status != StatusRefused && q.Status != StatusExpired && q.Status != StatusRejected {
		return registry.Errorf(registry.ECONFLICT, "The request is %s; only a lost, refused, rejected or expired one is filed again.", q.Status)
	}
	now := s.now()
	n := &Request{ID: registry.NewID(), CaseID: q.CaseID, RegistryID: q.RegistryID, Sites: q.Sites, Areas: q.Areas, Hosts: q.Hosts,
		Appointments: q.Appointments, Index: q.Index, Status: StatusFiling, NextCheck: now, UpdatedAt: now}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := insertRequest(ctx, tx, n); err != nil {
			return err
		}
		return s.logTx(ctx, tx, actor, "request.refiled", n.ID, map[string]string{"case": n.CaseID, "registry": n.RegistryID, "instead_of": q.ID})
	})
}

// RefreshSites fetches a registry's sites and areas.
func RefreshSites(ctx context.Context, s *Store, c *Client, id string) error {
	reg, err := s.Registry(ctx, id)
	if err != nil {
		return err
	}
	sites, err := c.Sites(ctx, reg)
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden) {
			return registry.Errorf(registry.EFORBIDDEN, "%s does not accept the office's token (%d): check the token.", reg.Name, re.Status)
		}
		return registry.Errorf(registry.EUNAVAILABLE, "%s cannot be reached: %v", reg.Name, err)
	}
	return s.SetSites(ctx, id, sites)
}
