package office

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
)

// Syncer files the cases' requests and follows them: it asks each
// registry about each open request with a backoff (30 seconds after a
// change, doubling to 15 minutes while nothing changes; the same after
// network errors, up to an hour), tells the clerk of every change (a
// notice on the page, and Notify, for example an e-mail), and downloads
// every approved export exactly once, checking its digest.
type Syncer struct {
	Store  *Store
	Client *Client
	// Office is the health office's name, sent with every request.
	Office string
	Now    func() time.Time
	Logger *slog.Logger
	// Notify, when set, is told of every change (after it is stored).
	Notify func(ctx context.Context, c *Case, reg *Registry, r *Request, text string)

	mu sync.Mutex // one sync at a time
}

// Backoff bounds.
const (
	firstCheck = 30 * time.Second
	maxPoll    = 15 * time.Minute
	maxRetry   = time.Hour
)

func (y *Syncer) now() time.Time {
	if y.Now != nil {
		return y.Now().UTC()
	}
	return time.Now().UTC()
}

func (y *Syncer) logger() *slog.Logger {
	if y.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return y.Logger
}

// Run syncs every interval until ctx ends.
func (y *Syncer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := y.Sync(ctx); err != nil && ctx.Err() == nil {
			y.logger().Warn("sync failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync handles every request that is due, and returns the first error
// that is not the registry's (the workspace's own database).
func (y *Syncer) Sync(ctx context.Context) error {
	y.mu.Lock()
	defer y.mu.Unlock()
	due, err := y.Store.DueRequests(ctx, y.now())
	if err != nil {
		return err
	}
	for _, r := range due {
		if err := y.step(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// SyncCase makes every open request of a case due now and syncs.
func (y *Syncer) SyncCase(ctx context.Context, caseID string) error {
	c, err := y.Store.Case(ctx, caseID)
	if err != nil {
		return err
	}
	for _, r := range c.Requests {
		if !r.Status.Final() && r.NextCheck.After(y.now()) {
			old := r.Status
			r.NextCheck = y.now()
			if err := y.Store.SaveRequest(ctx, r, old, ""); err != nil {
				return err
			}
		}
	}
	return y.Sync(ctx)
}

// backoff is the wait after n checks without change (or n failures),
// doubling from firstCheck up to limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := firstCheck
	for range min(n, 12) {
		d *= 2
	}
	return min(d, limit)
}

// step moves one request on.
func (y *Syncer) step(ctx context.Context, r *Request) error {
	reg, err := y.Store.Registry(ctx, r.RegistryID)
	if err != nil {
		return err
	}
	c, err := y.Store.Case(ctx, r.CaseID)
	if err != nil {
		return err
	}
	old, now := r.Status, y.now()
	r.CheckedAt = &now
	if r.Status == StatusFiling {
		return y.file(ctx, c, reg, r)
	}
	remote, err := y.Client.Get(ctx, reg, r.RemoteID)
	if err != nil {
		return y.failed(ctx, c, reg, r, old, err)
	}
	r.Failures = 0
	r.Note = remote.DecisionNote
	if remote.Status != r.Status {
		r.Status = remote.Status
		if r.Status == StatusApproved {
			return y.download(ctx, c, reg, r, old)
		}
		return y.save(ctx, c, reg, r, old, statusText(r.Status, remote.DecisionNote))
	}
	if r.Status == StatusApproved { // approved before, download failed for the network
		return y.download(ctx, c, reg, r, old)
	}
	r.NextCheck = now.Add(backoff(pollsSince(r, now), maxPoll))
	return y.save(ctx, c, reg, r, old, "")
}

// pollsSince is how many checks fit since the last change: the backoff's
// exponent.
func pollsSince(r *Request, now time.Time) int {
	n, d := 0, firstCheck
	for since := now.Sub(r.UpdatedAt); since > d && n < 12; d *= 2 {
		n++
	}
	return n
}

// file files the request. An earlier attempt whose answer was lost is
// found among the office's requests at the registry instead of filed
// twice.
func (y *Syncer) file(ctx context.Context, c *Case, reg *Registry, r *Request) error {
	now := y.now()
	if r.FiledAt != nil {
		if id, err := y.adopt(ctx, c, reg, r); err != nil {
			return y.failed(ctx, c, reg, r, StatusFiling, err)
		} else if id != "" {
			r.RemoteID, r.Status, r.Failures, r.NextCheck = id, StatusPending, 0, now.Add(firstCheck)
			return y.save(ctx, c, reg, r, StatusFiling, statusText(StatusPending, ""))
		}
	}
	sites := r.Sites
	if len(sites) == 0 { // every site of the registry
		if len(reg.Sites) == 0 {
			list, err := y.Client.Sites(ctx, reg)
			if err != nil {
				return y.failed(ctx, c, reg, r, StatusFiling, err)
			}
			reg.Sites = list
			if err := y.Store.SetSites(ctx, reg.ID, list); err != nil {
				return err
			}
		}
		for _, s := range reg.Sites {
			sites = append(sites, s.Code)
		}
	}
	r.FiledAt = &now
	if err := y.Store.SaveRequest(ctx, r, StatusFiling, ""); err != nil { // before the attempt: a lost answer is looked for
		return err
	}
	in := &registry.TraceInput{CaseRef: c.Ref, Office: y.Office, LegalBasis: c.LegalBasis, Contact: c.Contact, From: c.From, To: c.To,
		Sites: sites, Areas: r.Areas, Hosts: r.Hosts, Appointments: r.Appointments, Index: r.Index}
	id, err := y.Client.File(ctx, reg, in)
	if err != nil {
		return y.failed(ctx, c, reg, r, StatusFiling, err)
	}
	r.RemoteID, r.Status, r.Failures, r.NextCheck, r.Note = id, StatusPending, 0, now.Add(firstCheck), ""
	return y.save(ctx, c, reg, r, StatusFiling, statusText(StatusPending, ""))
}

// adopt looks for the request among the office's requests at the
// registry: the same case, window and sites, made since the first
// attempt.
func (y *Syncer) adopt(ctx context.Context, c *Case, reg *Registry, r *Request) (string, error) {
	list, err := y.Client.List(ctx, reg)
	if err != nil {
		return "", err
	}
	for _, q := range list {
		if q.CaseRef == c.Ref && q.From.Equal(c.From) && q.To.Equal(c.To) && !q.CreatedAt.Before(r.FiledAt.Add(-time.Minute)) &&
			(len(r.Sites) == 0 || slices.Equal(sorted(q.Sites), sorted(r.Sites))) {
			return q.ID, nil
		}
	}
	return "", nil
}

func sorted(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return out
}

// download fetches the approved request's bundle into the workspace.
func (y *Syncer) download(ctx context.Context, c *Case, reg *Registry, r *Request, old Status) error {
	path := y.Store.BundlePath(r.ID)
	f, err := os.CreateTemp(y.Store.Dir+"/"+bundlesDir, ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	digest, err := y.Client.Download(ctx, reg, r.RemoteID, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var re *RemoteError
	switch {
	case errors.Is(err, ErrBrokenOff), errors.As(err, &re) && re.Status == http.StatusConflict:
		// The registry recorded the export; what arrived is not it.
		r.Status, r.Note = StatusLost, "Der Download brach ab, nachdem das Register den Export verbucht hatte. Stellen Sie die Anfrage neu."
		y.logger().Warn("export download broke off", "request", r.ID, "registry", reg.ID, "error", err)
		return y.save(ctx, c, reg, r, old, "Download abgebrochen; die Anfrage muss neu gestellt werden")
	case err != nil:
		return y.failed(ctx, c, reg, r, old, err)
	}
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("keep the bundle: %w", err)
	}
	now := y.now()
	r.Status, r.ExportDigest, r.DownloadedAt, r.Failures = StatusDownloaded, digest, &now, 0
	return y.save(ctx, c, reg, r, old, statusText(StatusDownloaded, ""))
}

// failed records an error: a transient one is retried with backoff, a
// refusal of the registry ends the request (StatusRefused) with its
// reason.
func (y *Syncer) failed(ctx context.Context, c *Case, reg *Registry, r *Request, old Status, err error) error {
	var re *RemoteError
	switch {
	case Transient(err):
		r.Failures++
		r.NextCheck = y.now().Add(backoff(r.Failures, maxRetry))
		r.Note = "Das Register war nicht erreichbar; neuer Versuch " + r.NextCheck.In(registry.LocalZone).Format("15:04") + "."
		y.logger().Warn("registry not reached", "registry", reg.ID, "request", r.ID, "failures", r.Failures, "error", err)
		return y.Store.SaveRequest(ctx, r, old, "")
	case errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden) && old != StatusFiling:
		r.Failures++
		r.NextCheck = y.now().Add(backoff(r.Failures, maxRetry))
		r.Note = "Das Register nimmt das Token des Gesundheitsamts nicht an (" + re.Error() + "); bitte das Token prüfen."
		return y.Store.SaveRequest(ctx, r, old, "")
	}
	r.Status, r.Note = StatusRefused, registry.ErrorMessage(err)
	if errors.As(err, &re) {
		r.Note = re.Detail
	}
	return y.save(ctx, c, reg, r, old, "vom Register nicht angenommen: "+r.Note)
}

// save stores the request; a changed status is noticed and notified.
func (y *Syncer) save(ctx context.Context, c *Case, reg *Registry, r *Request, old Status, text string) error {
	if r.Status != old && text != "" {
		text = reg.Name + ": " + c.Ref + " – " + text
	}
	if r.Status != old && !r.Status.Final() && r.NextCheck.Before(y.now()) {
		r.NextCheck = y.now().Add(firstCheck)
	}
	if err := y.Store.SaveRequest(ctx, r, old, text); err != nil {
		return err
	}
	if r.Status != old && text != "" && y.Notify != nil {
		y.Notify(ctx, c, reg, r, text)
	}
	return nil
}

// statusText is a status in the clerk's words.
func statusText(s Status, note string) string {
	t := map[Status]string{
		StatusPending:    "gestellt, wartet auf Freigabe",
		StatusApproved:   "freigegeben",
		StatusRejected:   "abgelehnt",
		StatusExpired:    "Freigabe abgelaufen",
		StatusWithdrawn:  "zurückgezogen",
		StatusExported:   "von anderer Stelle abgerufen",
		StatusDownloaded: "freigegeben, Ergebnis heruntergeladen",
	}[s]
	if t == "" {
		t = string(s)
	}
	if note != "" {
		t += " (" + note + ")"
	}
	return t
}
