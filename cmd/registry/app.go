package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cityhall/registry/registry"
)

// app holds what every command shares: the output streams, the clock, the
// environment and the global flags. Commands take it instead of reaching for
// globals, so tests can run them with buffers and a fixed clock.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	now            func() time.Time

	db        string
	logLevel  string
	logFormat string
	logger    *slog.Logger
}

func newApp(stdout, stderr io.Writer) *app {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.LookupEnv, now: time.Now}
	if testClock != nil {
		if t, ok := testClock(); ok {
			a.now = func() time.Time { return t }
		}
	}
	return a
}

const envPrefix = "REGISTRY_"

func (a *app) root() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Contact-tracing visitor registry for city halls",
		Long: `registry keeps the contact data of visitors to public buildings for the
health office, sealed with the health office's public key, and deletes it
after the statutory period.

Every setting can also be given through the environment: --db is
REGISTRY_DB, --keystore is REGISTRY_KEYSTORE, --max-stay is
REGISTRY_MAX_STAY; the help of each command names the variable in
[$…]. A flag given on the command line wins over the environment.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: a.setup,
		Version:           versionString(),
	}
	cmd.SetVersionTemplate("registry {{.Version}}\n")
	cmd.SetFlagErrorFunc(flagError)
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.db, "db", "data/registry.db", "database: a SQLite file path or a postgres:// URL (put passwords in PGPASSWORD or ~/.pgpass, not here)")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	settings(pf, "db", "log-level", "log-format")
	cmd.AddCommand(
		a.keygenCmd(), a.serveCmd(), a.tokensCmd(), a.migrateCmd(), a.versionCmd(),
		a.purgeCmd(), a.keysCmd(), a.requestsCmd(), a.exportCmd(), a.decryptCmd(), a.auditCmd(),
		a.sitesCmd(), a.usersCmd(), a.posterCmd(), a.approversCmd(), a.trustCmd(), a.recipientsCmd(), a.appointmentsCmd(), a.doctorCmd(), a.backupCmd(), a.officeCmd(), a.certificateCmd(), a.demoCmd(), a.restoreCmd(),
	)
	return cmd
}

const envAnnotation = "registry_env"

// settings marks flags as settings: each can also be set through the
// environment variable REGISTRY_<NAME> (dashes become underscores), which the
// help text names. Per-invocation flags (--dry-run, -o) are not settings.
func settings(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		f := fs.Lookup(n)
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(n, "-", "_"))
		f.Usage += " [$" + env + "]"
		if err := fs.SetAnnotation(n, envAnnotation, []string{env}); err != nil {
			panic(err) // only on a misspelt flag name: a programming error
		}
	}
}

// setup applies REGISTRY_* environment variables to every flag not given on
// the command line (the one place where the environment is read for flags),
// then builds the logger.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		name, isSetting := f.Annotations[envAnnotation]
		if err != nil || f.Changed || !isSetting {
			return
		}
		if v, ok := a.getenv(name[0]); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("environment variable %s: %w", name, e)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := checkDSNSecret(cmd); err != nil {
		return err
	}
	a.logger, err = newLogger(a.stderr, a.logLevel, a.logFormat)
	return err
}

// checkDSNSecret refuses a password in a --db flag: command lines are
// visible to every user of the host (ps). The environment and ~/.pgpass are
// the places for it.
func checkDSNSecret(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("db")
	if f == nil || !f.Changed || !isPostgres(f.Value.String()) {
		return nil
	}
	if dsnHasPassword(f.Value.String()) {
		return withHint(registry.Errorf(registry.EINVALID, "--db carries a password on the command line"),
			"set REGISTRY_DB in the environment instead, or put the password in PGPASSWORD or ~/.pgpass")
	}
	return nil
}

// dpoActor returns the audit actor for a person working through the CLI:
// the --as flag (REGISTRY_AS), or else the operating-system user.
func dpoActor(as string) (registry.Actor, error) {
	if as == "" {
		if u, err := user.Current(); err == nil {
			as = u.Username
		}
	}
	clean, err := registry.CleanText("as", as)
	if err != nil || clean == "" || strings.Contains(clean, ":") || len(clean) > 100 {
		return "", withHint(registry.Errorf(registry.EINVALID, "cannot tell who you are"), "pass --as NAME (or set REGISTRY_AS) with your name: printable text without ':', at most 100 characters, for example --as \"Frau DSB\"")
	}
	as = clean
	return registry.Actor("dpo:" + as), nil
}
