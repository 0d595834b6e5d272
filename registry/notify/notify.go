// Package notify tells hosts that the visitor of their appointment has
// arrived: an outgoing webhook per site or host (for example a chat
// system's incoming webhook), JSON with the appointment's code, time,
// room and host, never the visitor's name, signed with a shared secret
// (HMAC-SHA256), retried, and sent from the store's record of arrivals not
// yet told, so that a restart loses none.
package notify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cityhall/registry/registry"
)

// Arrival is what a host is told.
type Arrival struct {
	Event   string    `json:"event"` // "visitor.arrived"
	Site    string    `json:"site"`
	Code    string    `json:"code"`
	Host    string    `json:"host"`
	Area    string    `json:"area,omitempty"`
	Start   time.Time `json:"start"`   // the appointment's start
	Arrived time.Time `json:"arrived"` // the registration's check-in
	Text    string    `json:"text"`    // a line for chat systems
}

// NewArrival describes the arrival for an appointment.
func NewArrival(a *registry.Appointment, site *registry.Site, at time.Time) Arrival {
	name := a.Site
	if site != nil {
		name = site.Name
	}
	room := ""
	if a.Area != "" {
		room = ", " + a.Area
	}
	return Arrival{Event: "visitor.arrived", Site: a.Site, Code: a.Code, Host: a.Host, Area: a.Area, Start: a.Start.UTC(), Arrived: at.UTC(),
		Text: fmt.Sprintf("Ihr Besuch zum Termin %s (%s Uhr%s) ist an der Pforte %s angekommen.", a.Code,
			a.Start.In(registry.LocalZone).Format("15:04"), room, name)}
}

// Target is where the arrivals of a site (and, when Host is not "", of
// one host there) go.
type Target struct {
	Site, Host string
	// Audience, when not "", makes the target one of the alerts' ("dpo"
	// or "it", the line's "@dpo" or "@it") instead of a site's.
	Audience string
	URL      string
	Secret   []byte
}

// ReadTargets reads the webhook file: one target per line, "SITE URL
// SECRET-FILE" or "SITE/HOST URL SECRET-FILE" ('#' comments), or "@dpo
// URL SECRET-FILE" and "@it URL SECRET-FILE" for the alerts, the secret
// in a file of its own (mode 0600), never in the list. The URL must be
// https (http only to localhost).
func ReadTargets(path string) ([]Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read the webhook file %q: %v.", path, err)
	}
	defer f.Close()
	var out []Target
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: expected SITE[/HOST] URL SECRET-FILE.", path, n)
		}
		site, host, _ := strings.Cut(fields[0], "/")
		audience := ""
		if a, ok := strings.CutPrefix(fields[0], "@"); ok {
			if a != "dpo" && a != "it" {
				return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: alerts go to @dpo or @it, not %q.", path, n, fields[0])
			}
			site, host, audience = "", "", a
		}
		u, err := url.Parse(fields[1])
		if err != nil || !(u.Scheme == "https" || u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1")) || u.Host == "" {
			return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: the URL must be https://….", path, n)
		}
		secret, err := readSecret(fields[2])
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: %s", path, n, registry.ErrorMessage(err))
		}
		out = append(out, Target{Site: site, Host: strings.ReplaceAll(host, "_", " "), Audience: audience, URL: u.String(), Secret: secret})
	}
	return out, sc.Err()
}

func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "cannot read the secret file %q.", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, registry.Errorf(registry.EINVALID, "the secret file %q may be read by others; chmod 600 it.", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "cannot read the secret file %q.", path)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, registry.Errorf(registry.EINVALID, "the secret in %q is shorter than 16 characters.", path)
	}
	return b, nil
}

// Sign returns the signature header value of a webhook body sent at ts:
// "sha256=" and the hex HMAC-SHA256 of "<unix seconds>.<body>" under the
// secret. The receiver recomputes it and refuses stale timestamps.
func Sign(secret []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Store is what the Notifier needs of a store: the arrivals not yet told
// (the outbox) and the sites' names.
type Store interface {
	PendingArrivals(ctx context.Context, since time.Time, limit int) ([]*registry.Appointment, error)
	MarkNotified(ctx context.Context, id string, t time.Time) error
	Site(ctx context.Context, code string) (*registry.Site, error)
}

// Notifier tells the targets of the arrivals the store holds as not yet
// told, retrying each delivery with backoff, and marks an arrival told
// once every target answered 2xx or was given up. The outbox is the
// appointments table itself (an arrival is stored in the registration's
// transaction), so a restart loses no notification; one that was under
// way may be sent again: receivers dedupe by X-Registry-Delivery.
// Deliveries run in parallel, so one slow or unreachable target does not
// hold up the others.
type Notifier struct {
	Store   Store
	Targets []Target
	// Client sends the posts (default: a 10 s timeout); it never follows a
	// redirect, whatever it is set to do.
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
	// Attempts per target (default 8) and the first backoff (default 2 s,
	// doubling up to 5 minutes).
	Attempts int
	Backoff  time.Duration
	// Poll is how often the store is read (default 5 s; Nudge reads at
	// once). Arrivals older than MaxAge (default 2 h) are no longer told.
	Poll   time.Duration
	MaxAge time.Duration
	// Parallel bounds the arrivals delivered at once (default 8).
	Parallel int

	nudge chan struct{}
	mu    sync.Mutex
	busy  map[string]bool // appointment ids being delivered
	slots chan struct{}

	delivered, failed, givenUp atomic.Int64 // for Collect
}

var (
	descDeliveries = prometheus.NewDesc("registry_webhook_deliveries_total",
		"Arrival webhook posts by result: delivered (2xx), failed (an attempt that will be retried), given_up (after the last attempt).", []string{"result"}, nil)
	descUnderWay = prometheus.NewDesc("registry_webhook_arrivals_under_way", "Arrivals being delivered now.", nil, nil)
)

// Describe implements prometheus.Collector.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDeliveries
	ch <- descUnderWay
}

// Collect implements prometheus.Collector.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for result, v := range map[string]*atomic.Int64{"delivered": &n.delivered, "failed": &n.failed, "given_up": &n.givenUp} {
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(v.Load()), result)
	}
	n.mu.Lock()
	busy := len(n.busy)
	n.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descUnderWay, prometheus.GaugeValue, float64(busy))
}

// NoRedirects makes c answer a redirect with the redirect itself, never
// following it: a signed body goes to the address it was configured for
// and nowhere else (a 307 would post it again to any address, https to
// http included). A 3xx counts as a failed delivery.
func NoRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// batch is how many pending arrivals one read of the store takes.
const batch = 100

// defaults fills in the zero fields.
func (n *Notifier) defaults() {
	c := http.Client{Timeout: 10 * time.Second}
	if n.Client != nil {
		c = *n.Client
	}
	n.Client = NoRedirects(&c) // whatever the caller's client would do
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	if n.Now == nil {
		n.Now = time.Now
	}
	if n.Attempts <= 0 {
		n.Attempts = 8
	}
	if n.Backoff <= 0 {
		n.Backoff = 2 * time.Second
	}
	if n.Poll <= 0 {
		n.Poll = 5 * time.Second
	}
	if n.MaxAge <= 0 {
		n.MaxAge = 2 * time.Hour
	}
	if n.Parallel <= 0 {
		n.Parallel = 8
	}
	n.nudge = make(chan struct{}, 1)
	n.busy = map[string]bool{}
	n.slots = make(chan struct{}, n.Parallel)
}

// Start starts the notifier; it stops when ctx ends. Call it before
// Nudge.
func (n *Notifier) Start(ctx context.Context) {
	n.defaults()
	go n.run(ctx)
}

// Nudge makes the notifier read the store at once (after a registration
// for an appointment). It never blocks.
func (n *Notifier) Nudge() {
	select {
	case n.nudge <- struct{}{}:
	default:
	}
}

func (n *Notifier) run(ctx context.Context) {
	tick := time.NewTicker(n.Poll)
	defer tick.Stop()
	for {
		n.dispatch(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.nudge:
		}
	}
}

// dispatch starts a delivery for every pending arrival not under way,
// as far as the parallel slots allow.
func (n *Notifier) dispatch(ctx context.Context) {
	list, err := n.Store.PendingArrivals(ctx, n.Now().Add(-n.MaxAge), batch)
	if err != nil {
		if ctx.Err() == nil {
			n.Logger.Warn("arrival webhooks: cannot read the pending arrivals", "err", err)
		}
		return
	}
	for _, a := range list {
		n.mu.Lock()
		busy := n.busy[a.ID]
		n.mu.Unlock()
		if busy {
			continue
		}
		select {
		case n.slots <- struct{}{}:
		default:
			return // all slots busy: the next round takes the rest
		}
		n.mu.Lock()
		n.busy[a.ID] = true
		n.mu.Unlock()
		go func() {
			defer func() {
				n.mu.Lock()
				delete(n.busy, a.ID)
				n.mu.Unlock()
				<-n.slots
				n.Nudge() // a slot is free: take what waits
			}()
			n.deliver(ctx, a)
		}()
	}
}

// deliver tells every target of a's site and host, then marks a told;
// when ctx ends first it leaves a pending, to be sent after a restart.
func (n *Notifier) deliver(ctx context.Context, a *registry.Appointment) {
	at := n.Now()
	if a.ArrivedAt != nil {
		at = *a.ArrivedAt
	}
	site, err := n.Store.Site(ctx, a.Site)
	if err != nil {
		site = nil // the name is cosmetic: the code stands in
	}
	body, err := json.Marshal(NewArrival(a, site, at))
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, t := range n.Targets {
		if t.Audience != "" || t.Site != a.Site || t.Host != "" && t.Host != a.Host {
			continue
		}
		wg.Go(func() { n.send(ctx, delivery{t: t, id: a.ID, body: body}) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	if err := n.Store.MarkNotified(context.WithoutCancel(ctx), a.ID, n.Now()); err != nil {
		n.Logger.Warn("arrival webhooks: cannot mark the arrival told; it may be sent again", "site", a.Site, "code", a.Code, "err", err)
	}
}

type delivery struct {
	t    Target
	id   string // the appointment's id: the receiver's dedupe key
	body []byte
}

// maxBackoff caps the wait between attempts.
const maxBackoff = 5 * time.Minute

// send posts d until the target answers 2xx, the attempts are used up
// (logged) or ctx ends.
func (n *Notifier) send(ctx context.Context, d delivery) {
	wait := n.Backoff
	for attempt := 1; ; attempt++ {
		err := n.post(ctx, d)
		if err == nil {
			n.delivered.Add(1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == n.Attempts {
			n.givenUp.Add(1)
			n.Logger.Error("webhook delivery given up", "site", d.t.Site, "host", d.t.Host, "attempts", attempt, "err", err)
			return
		}
		n.failed.Add(1)
		n.Logger.Warn("webhook delivery failed; retrying", "site", d.t.Site, "host", d.t.Host, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

func (n *Notifier) post(ctx context.Context, d delivery) error {
	return post(ctx, n.Client, d, n.Now())
}

// post sends d's body to its target, signed at ts.
func post(ctx context.Context, client *http.Client, d delivery, ts time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.t.URL, bytes.NewReader(d.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "registry-webhook/1")
	req.Header.Set("X-Registry-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("X-Registry-Delivery", d.id)
	req.Header.Set("X-Registry-Signature", Sign(d.t.Secret, ts, d.body))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", errorWithoutURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

// errorWithoutURL drops the URL from a client error: webhook URLs often
// carry their own token.
func errorWithoutURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
