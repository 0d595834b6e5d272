package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/notify"
	"github.com/cityhall/registry/retention"
)

type serveOptions struct {
	listen         string
	recipients     string
	keystore       string
	secret         string
	dataDir        string
	intakeOnly     bool
	purgeInterval  time.Duration
	stopTimeout    time.Duration
	policy         retention.Policy
	demo           bool
	demoDir        string
	publicSites    []string
	publicURL      string
	webhooks       string
	metricsListen  string
	accessLog      httpapi.AccessLog
	trustedProxies []string
	limits         httpapi.Limits
	alerts         alertOptions
}

func (a *app) serveCmd() *cobra.Command {
	o := serveOptions{limits: httpapi.DefaultLimits()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the intake service (HTTP API), key rotation and the hourly purge",
		Long: `serve runs the HTTP API for the reception desk, kiosks and the health office.

It seals every visitor's contact data to the health office's recipients
(--recipients) inside a second layer with the day's epoch key, and stores
only the sealed form. It refuses to start without a valid recipients file.
It creates epoch keys in advance in the key store (--keystore) and, every
hour, purges what the retention policy no longer allows; every minute it
checks out the visits still open at their site's closing time.

Sites are configured with 'registry sites', desk staff accounts with
'registry users'; the desk's pages are at /desk, the visitors' check-in
pages at /checkin/SITE for the sites that allow it.

Several nodes: one node holds the key store, creates the keys, purges and
serves exports; any number of others run with --intake-only behind a load
balancer. They need no key store, only the recipients file and a copy of
the primary's server secret (--server-secret), and seal with the public
day keys from the shared PostgreSQL database.

With --demo (what 'make run' uses) it creates, when missing, a demo
health-office key pair, a key store and an intake token under --demo-dir
and prints them. Demo keys are for trying the product out only.

SIGINT and SIGTERM stop it gracefully; SIGHUP is logged and ignored
(restart to apply changed settings).`,
		Example: `  registry serve --db /var/lib/registry/registry.db \
    --recipients /etc/registry/recipients.txt \
    --keystore /var/lib/registry-keys --listen 127.0.0.1:8080

  # an intake-only node of a PostgreSQL installation
  registry serve --intake-only --server-secret /etc/registry/server.secret \
    --recipients /etc/registry/recipients.txt --listen 0.0.0.0:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runServe(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on (put a TLS-terminating proxy in front)")
	f.StringVar(&o.recipients, "recipients", "", "the health office's age recipients `FILE` (public keys, one per line)")
	f.StringVar(&o.keystore, "keystore", "", "epoch key store `DIR` (private day keys; never back it up)")
	f.StringVar(&o.secret, "server-secret", "", "the server secret `FILE` (checkout tokens, idempotency; default: server.secret in the key store, created on first start)")
	f.StringVar(&o.dataDir, "data-dir", "", "`DIR` whose private tmp holds export bundles while they are sent (default: the database's directory, for PostgreSQL the key store's)")
	f.BoolVar(&o.intakeOnly, "intake-only", false, "serve intake only: no key store, no key creation, no purge, no exports (needs --server-secret)")
	f.DurationVar(&o.purgeInterval, "purge-interval", time.Hour, "how often the purge runs inside serve")
	f.DurationVar(&o.stopTimeout, "stop-timeout", 20*time.Second, "after SIGTERM, exit within this long even while the database hangs (keep it below the unit's TimeoutStopSec)")
	f.BoolVar(&o.demo, "demo", false, "create and use demo keys and a demo token when none are configured (never in production)")
	f.StringVar(&o.demoDir, "demo-dir", "data", "where --demo keeps its files")
	f.StringSliceVar(&o.publicSites, "public-sites", nil, "replaced by 'registry sites add|set CODE --self-checkin'")
	_ = f.MarkHidden("public-sites")
	f.Var(&o.accessLog, "access-log", "access log lines: sampled (every error and 1 in 100 other requests), on (every request) or off; /metrics counts every request")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve /metrics on this `ADDR` of its own (for the monitoring network) instead of --listen")
	f.StringVar(&o.webhooks, "webhooks", "", "`FILE` of webhooks that tell hosts their visitor arrived: lines \"SITE[/HOST] URL SECRET-FILE\" (spaces in HOST as _)")
	f.StringVar(&o.publicURL, "public-url", "", "the `URL` visitors reach the server at, for example https://besuch.musterstadt.de: check-out links and QR codes point there, and https makes every cookie Secure (default: each request's own host)")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxies", nil, "comma-separated `CIDRS` of reverse proxies whose X-Forwarded-For names the client (none: believe no header)")
	f.Float64Var(&o.limits.PerClient.PerMinute, "limit-client", o.limits.PerClient.PerMinute, "public form: registrations per minute from one client address")
	f.Float64Var(&o.limits.PerSite.PerMinute, "limit-site", o.limits.PerSite.PerMinute, "public form: registrations per minute at one site")
	f.Float64Var(&o.limits.Total.PerMinute, "limit-total", o.limits.Total.PerMinute, "public form: registrations per minute at all sites")
	f.IntVar(&o.limits.MaxConns, "max-conns", o.limits.MaxConns, "connections served at once; more wait")
	f.IntVar(&o.limits.PerClientConns, "max-client-conns", o.limits.PerClientConns, "connections one client address holds, and requests it has in flight, at once (behind a trusted proxy: per forwarded address)")
	settings(f, "listen", "recipients", "keystore", "server-secret", "data-dir", "intake-only", "purge-interval", "stop-timeout", "public-sites",
		"public-url", "webhooks", "metrics-listen", "access-log", "trusted-proxies", "limit-client", "limit-site", "limit-total", "max-conns", "max-client-conns")
	policyFlags(f, &o.policy)
	o.alerts.flags(f)
	return cmd
}

func (a *app) runServe(ctx context.Context, o *serveOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	store, err := a.openStore(ctx, createDB)
	if err != nil {
		return err
	}
	if !isPostgres(a.db) { // restore refuses while this lock is held
		release, err := serveLock(a.db, false)
		if err != nil {
			store.Close()
			return fmt.Errorf("mark the database as served: %w", err)
		}
		defer release()
	}
	var closers closeOnce
	closeStore := closers.add(store.Close)
	defer closeStore()
	if err := store.CloseApproverRule(ctx); err != nil {
		return fmt.Errorf("close the old approver rule: %w", err)
	}
	if o.demo {
		if err := a.setupDemo(ctx, store, o); err != nil {
			return err
		}
	}
	rcpts, err := a.loadRecipients(ctx, store, o.recipients)
	if err != nil {
		return err
	}
	var keys *crypto.KeyStore
	var purger *retention.Purger
	if !o.intakeOnly {
		if keys, purger, err = a.startKeys(ctx, store, o); err != nil {
			return err
		}
	}
	secret, err := a.serverSecret(o.secret, o.keystore)
	if err != nil {
		return err
	}
	svc := intake.New(store, crypto.NewSealer(rcpts), secret, a.logger)
	svc.Now = a.now
	var restoreProcs func()
	svc.Sealers, restoreProcs = intake.SpareProc()
	defer restoreProcs()
	var collectors []prometheus.Collector
	var targets []notify.Target
	if o.webhooks != "" {
		if targets, err = notify.ReadTargets(o.webhooks); err != nil {
			return err
		}
		n := &notify.Notifier{Store: store, Targets: targets, Logger: a.logger, Now: a.now}
		n.Start(ctx)
		collectors = append(collectors, n)
		// The arrival is in the store; the nudge only tells it sooner.
		svc.OnArrival = func(*registry.Appointment, time.Time) { n.Nudge() }
		a.logger.Info("arrival webhooks", "targets", len(targets))
	}
	var al *alerts
	if !o.intakeOnly {
		if al, err = a.newAlerts(store, o, targets, purger); err != nil {
			return err
		}
	}
	svc.Start(ctx)
	closeIntake := closers.add(svc.Close)
	defer closeIntake()
	cfg := httpapi.Config{Addr: o.listen, Store: store, Intake: svc, Logger: a.logger, Now: a.now, Secret: secret,
		Recipients: rcpts, Retention: o.policy.Retention, MaxStay: o.policy.MaxStay, PublicURL: o.publicURL,
		Limits: &o.limits, IntakeOnly: o.intakeOnly, MetricsAddr: o.metricsListen, Collectors: collectors, AccessLog: o.accessLog}
	if al != nil {
		cfg.OnTraceRequest, cfg.Checks = al.Nudge, al.checks.Last
	}
	if keys != nil {
		cfg.Keys, cfg.PurgeStatus = keys, purger.Status
		cfg.Booking = &intake.Booking{Store: store, Sealer: svc.Sealer, Keys: purger, Secret: secret}
		if cfg.Instance, err = keys.InstanceKey(a.now()); err != nil {
			return err
		}
		cfg.Anchors = keys.Anchors(cfg.Instance)
		if cfg.Scratch, err = a.scratch(o.dataDir, o.keystore); err != nil {
			return err
		}
	}
	srv, err := httpapi.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Open(); err != nil {
		return withHint(fmt.Errorf("listen on %s: %w", o.listen, err), "is another registry running? choose another address with --listen, or make run LISTEN=127.0.0.1:8081")
	}
	a.logger.Info("serving", "url", ownAddress(srv.URL()), "db", describeDB(a.db), "recipients", rcpts.Fingerprint(), "intake_only", o.intakeOnly)
	var jobs sync.WaitGroup
	if purger != nil {
		jobs.Go(func() { purger.Run(ctx, o.purgeInterval) })
		closer := &retention.Closer{Store: store, Now: a.now, Logger: a.logger}
		jobs.Go(func() { closer.Run(ctx, time.Minute) })
	}
	if al != nil {
		al.run(ctx, &jobs)
	}
	a.waitForStop(ctx)
	a.logger.Info("shutting down")
	return a.stopWithin(o.stopTimeout, &closers, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), o.stopTimeout*3/4)
		defer cancel()
		err := srv.Close(sctx)
		jobs.Wait() // a purge in progress stops with ctx; the store closes after it
		closeIntake()
		closeStore()
		return err
	})
}

// stopWithin runs the graceful stop and returns its error, or, when the
// database hangs and the stop has not finished within budget, logs so,
// abandons the closers (deferred closes return at once) and returns
// without waiting further: the process ends, and what was in flight was
// never acknowledged (a client retries it with its Idempotency-Key).
// Every acknowledged registration is committed already.
func (a *app) stopWithin(budget time.Duration, closers *closeOnce, stop func() error) error {
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		return err
	case <-time.After(budget):
		closers.abandon()
		a.logger.Warn("stopping without waiting for the database: it did not answer within the stop timeout; requests still in flight were not acknowledged and are retried by their clients", "stop_timeout", budget)
		return fmt.Errorf("stopped after %v without waiting for the database", budget)
	}
}

// closeOnce hands out close functions that run at most once, and not at
// all once abandoned: a deferred close must not wait again for a database
// a bounded stop gave up on.
type closeOnce struct{ abandoned atomic.Bool }

func (c *closeOnce) add(close func() error) func() error {
	var called atomic.Bool
	return func() error {
		if c.abandoned.Load() || called.Swap(true) {
			return nil
		}
		return close()
	}
}

func (c *closeOnce) abandon() { c.abandoned.Store(true) }

// check validates the options that need no store.
func (o *serveOptions) check() error {
	if err := o.policy.Validate(); err != nil {
		return err
	}
	if len(o.publicSites) > 0 {
		return withHint(registry.Errorf(registry.EINVALID, "--public-sites is gone: sites are configured now"),
			"for each site run 'registry sites set CODE --self-checkin' (or 'registry sites add CODE --name NAME --self-checkin'), then start serve without --public-sites; docs/operations.md: Upgrading")
	}
	if o.stopTimeout < time.Second || o.stopTimeout > 10*time.Minute {
		return withHint(registry.Errorf(registry.EINVALID, "--stop-timeout %v is not between 1s and 10m", o.stopTimeout), "the default 20s fits the unit's TimeoutStopSec=30s")
	}
	if o.publicURL != "" && !strings.HasPrefix(o.publicURL, "https://") && !strings.HasPrefix(o.publicURL, "http://") {
		return withHint(registry.Errorf(registry.EINVALID, "--public-url %q is not an http or https URL", o.publicURL), "for example --public-url https://besuch.musterstadt.de")
	}
	for _, p := range o.trustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return withHint(registry.Errorf(registry.EINVALID, "--trusted-proxies: %q is not an address or CIDR", p), "for example --trusted-proxies 127.0.0.1,10.0.0.0/24")
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		o.limits.TrustedProxies = append(o.limits.TrustedProxies, pfx.Masked())
	}
	for _, r := range []*httpapi.Rate{&o.limits.PerClient, &o.limits.PerSite, &o.limits.Total} {
		r.Burst = max(1, int(r.PerMinute/2))
	}
	switch {
	case o.intakeOnly && o.demo:
		return withHint(registry.Errorf(registry.EINVALID, "--intake-only and --demo exclude each other"), "a demo runs on one node")
	case o.intakeOnly && o.secret == "":
		return withHint(registry.Errorf(registry.EINVALID, "--intake-only needs --server-secret"),
			"copy server.secret from the key store of the node that purges and pass --server-secret FILE (or REGISTRY_SERVER_SECRET)")
	}
	return nil
}

// waitForStop returns when ctx ends (SIGINT, SIGTERM); a SIGHUP, which
// would otherwise end the process without a word, is logged and ignored.
func (a *app) waitForStop(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			a.logger.Warn("SIGHUP received and ignored: nothing is reloaded; restart serve to apply changed settings")
		}
	}
}

// startKeys opens the key store and creates the epoch keys the policy
// needs (a primary node's duty).
func (a *app) startKeys(ctx context.Context, store registry.Store, o *serveOptions) (*crypto.KeyStore, *retention.Purger, error) {
	if o.keystore == "" {
		return nil, nil, withHint(registry.Errorf(registry.EINVALID, "no key store configured"),
			"pass --keystore DIR (or REGISTRY_KEYSTORE) on the node that purges; other nodes run with --intake-only")
	}
	keys, err := crypto.OpenKeyStore(o.keystore)
	if err != nil {
		return nil, nil, err
	}
	purger := &retention.Purger{Store: store, Keys: keys, Policy: o.policy, Now: a.now, Logger: a.logger, Interval: o.purgeInterval}
	if _, _, err := purger.EnsureKeys(ctx, registry.ActorSystem); registry.ErrorCode(err) == registry.ECONFLICT {
		// One unusable day must not stop intake on the others; Run retries
		// and logs every hour, and /readyz reports a missing key for today.
		a.logger.Error("epoch keys incomplete", "err", err)
	} else if err != nil {
		return nil, nil, fmt.Errorf("create epoch keys: %w", err)
	}
	return keys, purger, nil
}

// loadRecipients reads the recipients (failing closed) and pins their
// fingerprint in the audit log.
func (a *app) loadRecipients(ctx context.Context, store registry.Store, path string) (*crypto.Recipients, error) {
	if path == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "no health-office recipients configured; refusing to store contact data I could not seal"),
			"pass --recipients FILE (or REGISTRY_RECIPIENTS); 'registry keygen' on the health office's machine prints a recipient; 'make run' uses demo keys")
	}
	rcpts, err := crypto.ReadRecipients(path)
	if err != nil {
		return nil, err
	}
	sigs, err := readRecipientsSignature(path)
	if err != nil {
		return nil, err
	}
	changed, err := store.PinRecipients(ctx, registry.ActorSystem, rcpts.Fingerprint(), sigs)
	if registry.ErrorCode(err) == registry.EFORBIDDEN {
		return nil, withHint(err, "if the health office really changed its keys, approvers sign the new file: 'registry recipients sign --key KEY %s' adds to %s.sig; if not, restore the old file", path, path)
	} else if err != nil {
		return nil, fmt.Errorf("pin recipients: %w", err)
	}
	if changed {
		a.logger.Warn("health-office recipients pinned (first start or changed); recorded in the audit log", "fingerprint", rcpts.Fingerprint(), "recipients", len(rcpts.Strings()), "kind", rcpts.Kind().String())
	}
	return rcpts, nil
}

// serverSecret reads the server secret (--server-secret, by default
// server.secret in the key store), creating it in the key store when it
// is missing there: the node that holds the key store makes it once; other
// nodes get a copy. Two processes starting together on a fresh key store
// both end up with the one secret the first of them wrote.
func (a *app) serverSecret(file, keystore string) (*crypto.Secret, error) {
	path := file
	inKeyStore := path == ""
	if inKeyStore {
		if keystore == "" {
			return nil, withHint(registry.Errorf(registry.EINVALID, "no server secret"), "pass --keystore DIR (or REGISTRY_KEYSTORE), or --server-secret FILE")
		}
		ks, err := crypto.OpenKeyStore(keystore) // made, mode 0700, when missing
		if err != nil {
			return nil, err
		}
		path = filepath.Join(ks.Dir, crypto.SecretFileName)
	}
	secret, err := crypto.ReadSecretFile(path)
	if registry.ErrorCode(err) == registry.ENOTFOUND && inKeyStore {
		a.logger.Info("creating the server secret in the key store; copy it to every intake node", "path", path)
		secret, err = crypto.CreateSecretFile(path, a.now())
		if registry.ErrorCode(err) == registry.ECONFLICT {
			return crypto.ReadSecretFile(path) // another process made it first
		}
		return secret, err
	} else if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, withHint(err, "copy server.secret from the key store of the node that purges, or leave --server-secret unset on that node")
	}
	return secret, err
}
