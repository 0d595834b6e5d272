package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/mail"
)

// AlertSource is what the Watcher reads: the trace requests and the
// alerts' outbox.
type AlertSource interface {
	TraceRequests(ctx context.Context, f registry.TraceFilter) ([]*registry.TraceRequest, error)
	registry.AlertStore
}

// Watcher raises the alerts the DPO and IT must see: a new trace request,
// one pending longer than PendingAfter, an approval that lapses unused
// within LapseWithin, and whatever Conditions report (a refused or failed
// purge, a clock jump, a failed check). Each is raised once per key;
// the Dispatcher delivers it.
type Watcher struct {
	Store AlertSource
	// PublicURL is where the DPO's pages are: links point there.
	PublicURL    string
	PendingAfter time.Duration // default 4 h
	LapseWithin  time.Duration // default 24 h
	// Conditions returns further alerts to raise now (raised once per
	// key).
	Conditions func(ctx context.Context, now time.Time) []*registry.Alert
	Now        func() time.Time
	Logger     *slog.Logger
	// OnRaise is called after an alert was stored (the Dispatcher's Nudge).
	OnRaise func()
}

// Link returns the DPO page of a request under base.
func Link(base, requestID string) string {
	if base == "" {
		return "/dpo/requests/" + requestID
	}
	return strings.TrimRight(base, "/") + "/dpo/requests/" + requestID
}

// Check raises what is due at the Watcher's now.
func (w *Watcher) Check(ctx context.Context) error {
	now := w.Now()
	pendingAfter, lapse := w.PendingAfter, w.LapseWithin
	if pendingAfter <= 0 {
		pendingAfter = 4 * time.Hour
	}
	if lapse <= 0 {
		lapse = 24 * time.Hour
	}
	var raise []*registry.Alert
	pending, err := w.Store.TraceRequests(ctx, registry.TraceFilter{Status: registry.TracePending})
	if err != nil {
		return err
	}
	for _, r := range pending {
		raise = append(raise, RequestAlert("request.new", r, w.PublicURL, now))
		if now.Sub(r.CreatedAt) >= pendingAfter {
			raise = append(raise, RequestAlert("request.waiting", r, w.PublicURL, now))
		}
	}
	approved, err := w.Store.TraceRequests(ctx, registry.TraceFilter{Status: registry.TraceApproved})
	if err != nil {
		return err
	}
	for _, r := range approved {
		if r.ExpiresAt != nil && r.ExpiresAt.After(now) && r.ExpiresAt.Sub(now) <= lapse {
			raise = append(raise, RequestAlert("approval.lapsing", r, w.PublicURL, now))
		}
	}
	if w.Conditions != nil {
		raise = append(raise, w.Conditions(ctx, now)...)
	}
	for _, a := range raise {
		ok, err := w.Store.RaiseAlert(ctx, a)
		if err != nil {
			return err
		}
		if ok {
			if w.Logger != nil {
				w.Logger.Info("alert raised", "kind", a.Kind, "audience", a.Audience)
			}
			if w.OnRaise != nil {
				w.OnRaise()
			}
		}
	}
	return nil
}

// Run checks every interval and on Nudge until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration, nudge <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil && w.Logger != nil {
			w.Logger.Warn("alerts: cannot check", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
		}
	}
}

// RequestAlert describes a request's alert of kind request.new,
// request.waiting or approval.lapsing: the case reference, the office,
// the period and sites, a link; never a visitor's data.
func RequestAlert(kind string, r *registry.TraceRequest, base string, now time.Time) *registry.Alert {
	z := registry.LocalZone
	period := fmt.Sprintf("%s bis %s, Standorte %s", r.From.In(z).Format("02.01.2006 15:04"), r.To.In(z).Format("02.01.2006 15:04"), strings.Join(r.Sites, ", "))
	link := Link(base, r.ID)
	var subject, text string
	switch kind {
	case "request.new":
		subject = "Neue Anfrage des Gesundheitsamts wartet auf Freigabe (Az. " + r.CaseRef + ")"
		text = fmt.Sprintf("%s hat eine Kontaktnachverfolgung zum Aktenzeichen %s angefragt (%s).\nDie Anfrage wartet auf Ihre Prüfung und Unterschrift.", r.Office, r.CaseRef, period)
	case "request.waiting":
		subject = "Anfrage wartet seit " + hours(now.Sub(r.CreatedAt)) + " auf Freigabe (Az. " + r.CaseRef + ")"
		text = fmt.Sprintf("Die Anfrage von %s zum Aktenzeichen %s (%s) wartet seit %s auf eine Entscheidung.\nDie Nachverfolgung des Gesundheitsamts wartet mit ihr.", r.Office, r.CaseRef, period, r.CreatedAt.In(z).Format("02.01.2006 15:04"))
	case "approval.lapsing":
		subject = "Freigabe läuft ungenutzt ab (Az. " + r.CaseRef + ")"
		text = fmt.Sprintf("Die freigegebene Anfrage von %s zum Aktenzeichen %s (%s) wurde noch nicht abgerufen; die Freigabe läuft am %s ab.\nDanach ist eine neue Freigabe nötig.", r.Office, r.CaseRef, period, r.ExpiresAt.In(z).Format("02.01.2006 15:04"))
	}
	return &registry.Alert{Key: kind + ":" + r.ID, Kind: kind, Audience: "dpo", Subject: subject, Text: text + "\n\n" + link, Link: link, CreatedAt: now}
}

func hours(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%d Stunden", int(d.Hours()))
	}
	return fmt.Sprintf("%d Tagen", int(d.Hours()/24))
}

// A Channel delivers alerts to one audience.
type Channel interface {
	// Name identifies the channel in Alert.Delivered ("mail:dpo").
	Name() string
	// Audience is "dpo" or "it".
	Audience() string
	Send(ctx context.Context, a *registry.Alert) error
}

// MailChannel sends alerts by e-mail.
type MailChannel struct {
	Mailer *mail.Mailer
	To     []string
	For    string
}

func (c *MailChannel) Name() string     { return "mail:" + c.For }
func (c *MailChannel) Audience() string { return c.For }
func (c *MailChannel) Send(ctx context.Context, a *registry.Alert) error {
	body := a.Text + "\n\n-- \nDiese Nachricht enthält keine personenbezogenen Daten von Besuchenden. Anmeldung und Freigabe nur über die Seiten des Registers oder registry requests.\n"
	return c.Mailer.Send(ctx, c.To, "[Register] "+a.Subject, body)
}

// WebhookChannel posts alerts as signed JSON, like the arrivals.
type WebhookChannel struct {
	Target Target
	N      int // the target's number, for its name
	Client *http.Client
	Now    func() time.Time // the signature's time (default time.Now)
}

func (c *WebhookChannel) Name() string     { return fmt.Sprintf("webhook:%s:%d", c.Target.Audience, c.N) }
func (c *WebhookChannel) Audience() string { return c.Target.Audience }
func (c *WebhookChannel) Send(ctx context.Context, a *registry.Alert) error {
	body, err := json.Marshal(struct {
		Event     string    `json:"event"` // "alert"
		Kind      string    `json:"kind"`
		Key       string    `json:"key"`
		Subject   string    `json:"subject"`
		Text      string    `json:"text"`
		Link      string    `json:"link,omitempty"`
		CreatedAt time.Time `json:"created_at"`
	}{"alert", a.Kind, a.Key, a.Subject, a.Text, a.Link, a.CreatedAt.UTC()})
	if err != nil {
		return err
	}
	client := c.Client
	if client == nil {
		client = NoRedirects(&http.Client{Timeout: 10 * time.Second})
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return post(ctx, client, delivery{t: c.Target, id: a.ID, body: body}, now())
}

// Dispatcher delivers the alerts' outbox to the channels: every channel of
// an alert's audience until it took the alert, retried from the store
// with a backoff from Backoff (default 1 min) doubling to 1 h, given up
// after Attempts (default 24). An alert nobody is configured to receive
// is closed at once (it stays on the DPO's page).
type Dispatcher struct {
	Store    registry.AlertStore
	Channels []Channel
	Now      func() time.Time
	Logger   *slog.Logger
	Attempts int
	Backoff  time.Duration

	once  sync.Once
	nudge chan struct{}
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.nudge = make(chan struct{}, 1)
		if d.Attempts <= 0 {
			d.Attempts = 24
		}
		if d.Backoff <= 0 {
			d.Backoff = time.Minute
		}
		if d.Logger == nil {
			d.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Nudge makes Run deliver at once; it never blocks.
func (d *Dispatcher) Nudge() {
	d.init()
	select {
	case d.nudge <- struct{}{}:
	default:
	}
}

// Run delivers every interval and on Nudge until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	d.init()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := d.Deliver(ctx); err != nil && ctx.Err() == nil {
			d.Logger.Warn("alerts: cannot deliver", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.nudge:
		}
	}
}

// Deliver sends every alert due now once to each channel that has not
// taken it, and stores the outcome.
func (d *Dispatcher) Deliver(ctx context.Context) error {
	d.init()
	now := d.Now()
	due, err := d.Store.PendingAlerts(ctx, now, 50)
	if err != nil {
		return err
	}
	for _, a := range due {
		var errs []string
		for _, c := range d.Channels {
			if !a.For(c.Audience()) || slices.Contains(a.Delivered, c.Name()) {
				continue
			}
			if err := c.Send(ctx, a); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				errs = append(errs, c.Name()+": "+errorWithoutURL(err).Error())
				continue
			}
			a.Delivered = append(a.Delivered, c.Name())
		}
		a.Attempts++
		a.LastError = strings.Join(errs, "; ")
		switch {
		case len(errs) == 0:
			a.ClosedAt = &now
		case a.Attempts >= d.Attempts:
			a.ClosedAt = &now
			d.Logger.Error("alert delivery given up", "kind", a.Kind, "attempts", a.Attempts, "err", a.LastError)
		default:
			wait := d.Backoff << min(a.Attempts-1, 10)
			a.NextAt = now.Add(min(wait, time.Hour))
			d.Logger.Warn("alert delivery failed; retrying", "kind", a.Kind, "attempt", a.Attempts, "err", a.LastError)
		}
		if err := d.Store.UpdateAlert(context.WithoutCancel(ctx), a); err != nil {
			return err
		}
	}
	return nil
}
