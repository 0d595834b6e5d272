package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/retention"
)

type serveOptions struct {
	listen        string
	recipients    string
	keystore      string
	secret        string
	purgeInterval time.Duration
	policy        retention.Policy
	demo          bool
	demoDir       string
	publicSites   []string
}

func (a *app) serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the intake service (HTTP API), key rotation and the hourly purge",
		Long: `serve runs the HTTP API for the reception desk, kiosks and the health office.

It seals every visitor's contact data to the health office's recipients
(--recipients) inside a second layer with the day's epoch key, and stores
only the sealed form. It refuses to start without a valid recipients file.
It creates epoch keys in advance in the key store (--keystore) and, every
hour, purges what the retention policy no longer allows.

With --demo (what 'make run' uses) it creates, when missing, a demo
health-office key pair, a key store and an intake token under --demo-dir
and prints them. Demo keys are for trying the product out only.`,
		Example: `  registry serve --db /var/lib/registry/registry.db \
    --recipients /etc/registry/recipients.txt \
    --keystore /var/lib/registry/keys --listen 127.0.0.1:8080`,
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
	f.DurationVar(&o.purgeInterval, "purge-interval", time.Hour, "how often the purge runs inside serve")
	f.BoolVar(&o.demo, "demo", false, "create and use demo keys and a demo token when none are configured (never in production)")
	f.StringVar(&o.demoDir, "demo-dir", "data", "where --demo keeps its files")
	f.StringSliceVar(&o.publicSites, "public-sites", nil, "comma-separated site `CODES` whose visitors may check in on their own phones at /checkin/{site} (none: the form is off)")
	settings(f, "listen", "recipients", "keystore", "server-secret", "purge-interval", "public-sites")
	policyFlags(f, &o.policy)
	return cmd
}

func (a *app) runServe(ctx context.Context, o *serveOptions) error {
	if err := o.policy.Validate(); err != nil {
		return err
	}
	for _, site := range o.publicSites {
		if !registry.ValidSite(site) {
			return withHint(registry.Errorf(registry.EINVALID, "--public-sites: %q is not a site code", site),
				"site codes are lowercase letters, digits and '-', as printed on the entrance poster: --public-sites rathaus,bauamt")
		}
	}
	store, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	if o.demo {
		if err := a.setupDemo(ctx, store, o); err != nil {
			return err
		}
	}
	rcpts, keys, err := a.loadServeKeys(ctx, store, o)
	if err != nil {
		return err
	}
	purger := &retention.Purger{Store: store, Keys: keys, Policy: o.policy, Now: a.now, Logger: a.logger}
	if _, _, err := purger.EnsureKeys(ctx, registry.ActorSystem); registry.ErrorCode(err) == registry.ECONFLICT {
		// One unusable day must not stop intake on the others; Run retries
		// and logs every hour, and /readyz reports a missing key for today.
		a.logger.Error("epoch keys incomplete", "err", err)
	} else if err != nil {
		return fmt.Errorf("create epoch keys: %w", err)
	}
	secret, err := a.serverSecret(o)
	if err != nil {
		return err
	}
	svc := intake.New(store, crypto.NewSealer(rcpts), secret, a.logger)
	svc.Now = a.now
	svc.Start(ctx)
	defer svc.Close()
	srv, err := httpapi.New(httpapi.Config{Addr: o.listen, Store: store, Intake: svc, Logger: a.logger, Now: a.now,
		Keys: keys, Recipients: rcpts, Retention: o.policy.Retention, MaxStay: o.policy.MaxStay, PublicSites: o.publicSites})
	if err != nil {
		return err
	}
	if err := srv.Open(); err != nil {
		return withHint(fmt.Errorf("listen on %s: %w", o.listen, err), "is another registry running? choose another address with --listen")
	}
	a.logger.Info("serving", "url", srv.URL(), "db", describeDB(a.db), "recipients", rcpts.Fingerprint())
	purging := make(chan struct{})
	go func() { defer close(purging); purger.Run(ctx, o.purgeInterval) }()
	<-ctx.Done()
	a.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Close(sctx)
	<-purging // a purge in progress stops with ctx; the store closes after it
	return err
}

// loadServeKeys reads the recipients (failing closed), pins their
// fingerprint in the audit log, and opens the key store.
func (a *app) loadServeKeys(ctx context.Context, store registry.Store, o *serveOptions) (*crypto.Recipients, *crypto.KeyStore, error) {
	if o.recipients == "" {
		return nil, nil, withHint(registry.Errorf(registry.EINVALID, "no health-office recipients configured; refusing to store contact data I could not seal"),
			"pass --recipients FILE (or REGISTRY_RECIPIENTS); 'registry keygen' on the health office's machine prints a recipient; 'make run' uses demo keys")
	}
	rcpts, err := crypto.ReadRecipients(o.recipients)
	if err != nil {
		return nil, nil, err
	}
	changed, err := store.PinRecipients(ctx, registry.ActorSystem, rcpts.Fingerprint())
	if err != nil {
		return nil, nil, fmt.Errorf("pin recipients: %w", err)
	}
	if changed {
		a.logger.Warn("health-office recipients pinned (first start or changed); recorded in the audit log", "fingerprint", rcpts.Fingerprint(), "recipients", rcpts.Strings())
	}
	if o.keystore == "" {
		return nil, nil, withHint(registry.Errorf(registry.EINVALID, "no key store configured"), "pass --keystore DIR (or REGISTRY_KEYSTORE)")
	}
	keys, err := crypto.OpenKeyStore(o.keystore)
	if err != nil {
		return nil, nil, err
	}
	return rcpts, keys, nil
}

// serverSecret reads the server secret (--server-secret, by default
// server.secret in the key store), creating it in the key store when it
// is missing there: the node that holds the key store makes it once; other
// nodes get a copy.
func (a *app) serverSecret(o *serveOptions) (*crypto.Secret, error) {
	path := o.secret
	inKeyStore := path == ""
	if inKeyStore {
		path = filepath.Join(o.keystore, crypto.SecretFileName)
	}
	secret, err := crypto.ReadSecretFile(path)
	if registry.ErrorCode(err) == registry.ENOTFOUND && inKeyStore {
		a.logger.Info("creating the server secret in the key store; copy it to every intake node", "path", path)
		return crypto.CreateSecretFile(path, a.now())
	} else if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, withHint(err, "copy server.secret from the key store of the node that purges, or leave --server-secret unset on that node")
	}
	return secret, err
}
