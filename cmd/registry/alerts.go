package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/checks"
	"github.com/cityhall/registry/registry/notify"
	"github.com/cityhall/registry/retention"
)

// alertOptions are serve's settings for telling the DPO and IT.
type alertOptions struct {
	smtp         smtpOptions
	dpo, it      string
	pendingAfter time.Duration
}

func (o *alertOptions) flags(f *pflag.FlagSet) {
	o.smtp.flags(f)
	f.StringVar(&o.dpo, "notify-dpo", "", "the DPO's e-mail addresses (comma-separated): new, waiting and lapsing requests, refused purges, failed checks")
	f.StringVar(&o.it, "notify-it", "", "IT's e-mail addresses (comma-separated): refused or failed purges, clock jumps, failed checks")
	f.DurationVar(&o.pendingAfter, "notify-pending-after", 4*time.Hour, "remind the DPO of a request pending this long")
	settings(f, "notify-dpo", "notify-it", "notify-pending-after")
}

// alerts is what serve runs to tell the DPO and IT.
type alerts struct {
	watcher    *notify.Watcher
	dispatcher *notify.Dispatcher
	checks     *checks.Runner
	nudge      chan struct{}
}

// Nudge makes the watcher look at once (after a new trace request).
func (al *alerts) Nudge() {
	select {
	case al.nudge <- struct{}{}:
	default:
	}
}

// newAlerts builds the watcher, the dispatcher with its channels (mail
// per audience, the webhook file's @dpo and @it lines) and the hourly
// checks.
func (a *app) newAlerts(store registry.Store, o *serveOptions, targets []notify.Target, purger *retention.Purger) (*alerts, error) {
	var channels []notify.Channel
	m, err := o.alerts.smtp.mailer()
	if err != nil {
		return nil, err
	}
	for _, aud := range []struct{ name, flag, list string }{{"dpo", "notify-dpo", o.alerts.dpo}, {"it", "notify-it", o.alerts.it}} {
		to, err := o.alerts.smtp.recipients(aud.flag, aud.list)
		if err != nil {
			return nil, err
		}
		if len(to) > 0 {
			channels = append(channels, &notify.MailChannel{Mailer: m, To: to, For: aud.name})
		}
	}
	if m != nil && len(channels) == 0 {
		return nil, withHint(registry.Errorf(registry.EINVALID, "--smtp without --notify-dpo or --notify-it"), "name whom to tell: --notify-dpo datenschutz@… (or REGISTRY_NOTIFY_DPO)")
	}
	if o.alerts.pendingAfter < time.Minute {
		return nil, withHint(registry.Errorf(registry.EINVALID, "--notify-pending-after %v is shorter than a minute", o.alerts.pendingAfter), "for example --notify-pending-after 4h")
	}
	client := notify.NoRedirects(&http.Client{Timeout: 10 * time.Second})
	for i, t := range targets {
		if t.Audience != "" {
			channels = append(channels, &notify.WebhookChannel{Target: t, N: i + 1, Client: client, Now: a.now})
		}
	}
	al := &alerts{nudge: make(chan struct{}, 1)}
	al.checks = &checks.Runner{Store: store, Options: checks.Options{Keystore: o.keystore, Recipients: o.recipients,
		PurgeInterval: o.purgeInterval, Retention: o.policy.Retention, Now: a.now}}
	al.dispatcher = &notify.Dispatcher{Store: store, Channels: channels, Now: a.now, Logger: a.logger}
	al.watcher = &notify.Watcher{Store: store, PublicURL: o.publicURL, PendingAfter: o.alerts.pendingAfter, Now: a.now, Logger: a.logger,
		OnRaise: al.dispatcher.Nudge, Conditions: func(context.Context, time.Time) []*registry.Alert {
			var out []*registry.Alert
			if purger != nil {
				out = append(out, purgeAlerts(purger.Status(), o.publicURL)...)
			}
			return append(out, checkAlerts(al.checks.Last(), o.publicURL)...)
		}}
	return al, nil
}

// run starts the checks, the watcher and the dispatcher on jobs.
func (al *alerts) run(ctx context.Context, jobs *sync.WaitGroup) {
	jobs.Go(func() { al.checks.Run(ctx) })
	jobs.Go(func() { al.watcher.Run(ctx, time.Minute, al.nudge) })
	jobs.Go(func() { al.dispatcher.Run(ctx, time.Minute) })
}

func dpoLink(base string) string { return strings.TrimRight(base, "/") + "/dpo/" }

// purgeAlerts are the alerts of a refused, failed or suspicious purge.
func purgeAlerts(s retention.Status, base string) []*registry.Alert {
	if !s.Degraded() {
		return nil
	}
	at := s.LastRun.In(registry.LocalZone)
	var kind, subject, text string
	switch {
	case s.Refused:
		kind, subject = "purge.refused", "Löschung verweigert am "+at.Format("02.01.2006")
		text = "Die stündliche Löschung wurde verweigert (" + s.Problem + ").\nAbgelaufene Tage bleiben gespeichert, bis eine Löschung gelingt. Bitte mit der IT die Uhr des Servers prüfen."
	case s.Failed:
		kind, subject = "purge.failed", "Löschung fehlgeschlagen am "+at.Format("02.01.2006")
		text = "Die stündliche Löschung ist fehlgeschlagen (" + s.Problem + ").\nAbgelaufene Tage bleiben gespeichert, bis eine Löschung gelingt."
	default:
		kind, subject = "clock.jump", "Uhrsprung oder lange Pause vor der Löschung am "+at.Format("02.01.2006 15:04")
		text = "Die Löschung lief nach einer ungewöhnlichen Pause (" + s.Problem + ").\nBitte die Uhr des Servers und das Protokoll der Löschungen prüfen."
	}
	key := kind + ":" + at.Format("2006-01-02")
	if kind == "clock.jump" {
		key = kind + ":" + s.LastRun.UTC().Format(time.RFC3339)
	}
	link := dpoLink(base)
	return []*registry.Alert{{Key: key, Kind: kind, Audience: "dpo it", Subject: subject, Text: text + "\n\n" + link, Link: link, CreatedAt: s.LastRun}}
}

// checkAlerts are the alerts of the failed checks of r, one per check and
// day: the audit log, the approvers and the recipients pin concern the
// DPO as well as IT.
func checkAlerts(r *checks.Report, base string) []*registry.Alert {
	if r == nil {
		return nil
	}
	var out []*registry.Alert
	link := dpoLink(base)
	for _, f := range r.Findings {
		if f.State != checks.Fail {
			continue
		}
		aud := "it"
		switch f.Check {
		case "audit", "approvers", "recipients":
			aud = "dpo it"
		}
		text := "Die stündliche Prüfung des Registers meldet einen Fehler.\nPrüfung: " + f.Check + "\nBefund: " + f.Detail
		if f.Fix != "" {
			text += "\nAbhilfe: " + f.Fix
		}
		out = append(out, &registry.Alert{Key: "check.failed:" + f.Check + ":" + r.At.In(registry.LocalZone).Format("2006-01-02"), Kind: "check.failed",
			Audience: aud, Subject: "Prüfung fehlgeschlagen: " + f.Check, Text: text + "\n\n" + link, Link: link, CreatedAt: r.At})
	}
	return out
}
