package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/retention"
)

type purgeOptions struct {
	keystore       string
	as             string
	dryRun         bool
	asJSON         bool
	allowClockJump bool
	resetClock     bool
	yes            bool
	policy         retention.Policy
	// configured is the retention period serve runs with
	// (REGISTRY_RETENTION, else the default): a --retention shorter than
	// it deletes what the statutory period still keeps, and asks first.
	configured time.Duration
}

func (a *app) purgeCmd() *cobra.Command {
	var o purgeOptions
	cmd := &cobra.Command{
		Use:   "purge [--dry-run] [--json]",
		Short: "Delete what the retention period no longer allows, and report it",
		Long: `purge enforces the statutory retention period. It

  - deletes every visit whose check-in lies more than --retention ago,
    and wipes its bytes from the database files;
  - destroys the private epoch keys of days whose records have all
    expired (plus --key-grace), so that old backups become unreadable;
  - checks out visits still open after --max-stay (marked automatic);
  - expires trace requests whose approval lapsed;

and prints a report to file. 'registry serve' runs the same purge every
hour; run it by hand to produce a report or after the hourly purge
refused to run.

The purge refuses to run when the clock reads earlier than the last
purge, or more than --max-clock-jump after it: a wrong clock would
delete data the health office may still need. Check the clock
(timedatectl) and rerun with --allow-clock-jump if it is right.

After the clock ran ahead (serve purged, or stored data, with a clock
days fast), the clock now reads earlier than the last purge and every
purge is refused until real time catches up, keeping data past the
statutory period. Check the clock, then run purge --reset-clock: it shows
the times stamped ahead, asks you to type yes (--yes answers for a
script), records the reset with your name in the audit log and purges,
measuring from now on from the corrected clock.

A --retention shorter than the configured period (REGISTRY_RETENTION,
default 28d) deletes visits that the statutory period still keeps: purge
says how many and from which days, and asks you to type yes (--yes
answers for a script). Nothing is asked for a --dry-run.`,
		Example: `  registry purge --keystore /var/lib/registry-keys --dry-run
  registry purge --keystore /var/lib/registry-keys --json > purge-$(date +%F).json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.configured = retention.DefaultPolicy().Retention
			if v, ok := a.getenv("REGISTRY_RETENTION"); ok {
				if err := (days{&o.configured}).Set(v); err != nil {
					return fmt.Errorf("environment variable REGISTRY_RETENTION: %w", err)
				}
			}
			return a.runPurge(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.keystore, "keystore", "", "epoch key store `DIR`")
	f.StringVar(&o.as, "as", "", "your name, recorded in the audit log (default: your login name)")
	f.BoolVar(&o.dryRun, "dry-run", false, "report what would be purged, change nothing")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&o.allowClockJump, "allow-clock-jump", false, "purge even though the clock jumped forward since the last purge (check the clock first)")
	f.BoolVar(&o.resetClock, "reset-clock", false, "the last purge or the newest data carry times from a clock that ran ahead: record (audited) that the clock is right now, then purge")
	f.BoolVar(&o.yes, "yes", false, "do not ask before a --retention shorter than the configured period deletes visits, or before --reset-clock")
	settings(f, "keystore", "as")
	policyFlags(f, &o.policy)
	return cmd
}

func (a *app) runPurge(ctx context.Context, o *purgeOptions) error {
	if err := o.policy.Validate(); err != nil {
		return err
	}
	actor, err := dpoActor(o.as)
	if err != nil {
		return err
	}
	if o.resetClock && o.dryRun {
		return withHint(registry.Errorf(registry.EINVALID, "--reset-clock records a reset; a --dry-run changes nothing"), "run purge --reset-clock: it shows what it would record and asks before it does")
	}
	if o.keystore == "" {
		return withHint(registry.Errorf(registry.EINVALID, "no key store configured"), "pass --keystore DIR (or REGISTRY_KEYSTORE): the purge destroys expired day keys there")
	}
	keys, err := crypto.OpenKeyStore(o.keystore)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(store registry.Store) error {
		if err := a.confirmShorterRetention(ctx, store, o); err != nil {
			return err
		}
		p := &retention.Purger{Store: store, Keys: keys, Policy: o.policy, Now: a.now, Logger: a.logger}
		if o.resetClock {
			if err := a.resetClock(ctx, p, actor, o.yes); err != nil {
				return err
			}
		}
		report, err := p.Purge(ctx, retention.Options{DryRun: o.dryRun, Actor: actor, AllowClockJump: o.allowClockJump})
		return a.reportPurge(report, err, o.asJSON)
	})
}

// reportPurge prints the report, when there is one, and says whether the
// purge changed nothing, everything, or only part of what it reports.
func (a *app) reportPurge(report *registry.PurgeReport, err error, asJSON bool) error {
	switch {
	case report == nil && retention.IsClockRefusal(err):
		return fmt.Errorf("purge refused, nothing was changed: %w", err)
	case report == nil:
		return fmt.Errorf("purge failed, nothing was changed: %w", err)
	}
	if werr := retention.WriteReport(a.stdout, report, asJSON); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("purge done as reported, but not completely: %w", err)
	}
	return nil
}

// confirmShorterRetention asks before a purge whose --retention is
// shorter than the configured period deletes visits the statutory period
// still keeps, naming how many and from when; --yes answers for a script.
func (a *app) confirmShorterRetention(ctx context.Context, store registry.Store, o *purgeOptions) error {
	if o.dryRun || o.policy.Retention >= o.configured {
		return nil
	}
	now := a.now()
	from, to := now.Add(-o.configured), now.Add(-o.policy.Retention)
	n, err := store.CountVisits(ctx, from, to)
	if err != nil || n == 0 {
		return err
	}
	what := fmt.Sprintf("--retention %s is %s shorter than the configured %s: this purge deletes %d visits checked in from %s to %s, which the statutory period still keeps",
		days{&o.policy.Retention}, span(o.configured-o.policy.Retention), days{&o.configured}, n, local(from), local(to))
	if o.yes {
		fmt.Fprintf(a.stderr, "registry: %s (--yes)\n", what)
		return nil
	}
	ok, err := confirm(what + ". Delete them now? Type yes: ")
	if err != nil {
		return withHint(registry.Errorf(registry.EINVALID, "%s; nothing was deleted", what), "run it on a terminal to confirm, pass --yes in a script, or leave --retention out to purge by the configured period")
	}
	if !ok {
		return registry.Errorf(registry.EINVALID, "not confirmed; nothing was deleted")
	}
	return nil
}

// resetClock shows what a clock reset records, asks, and records it.
func (a *app) resetClock(ctx context.Context, p *retention.Purger, actor registry.Actor, yes bool) error {
	_, err := p.ResetClock(ctx, actor, func(plan *retention.ClockResetPlan) error {
		var b strings.Builder
		fmt.Fprintf(&b, "this clock reads %s", local(plan.Now))
		if plan.DatabaseNow != nil {
			fmt.Fprintf(&b, " (the database server's: %s)", local(*plan.DatabaseNow))
		}
		if !plan.Reference.IsZero() {
			fmt.Fprintf(&b, "; the last purge is recorded at %s", local(plan.Reference))
		}
		fmt.Fprintf(&b, "; the newest stored time is %s", local(plan.Newest))
		if plan.Ahead > 0 {
			fmt.Fprintf(&b, "; %d visits carry check-in times after now and are purged by those times", plan.Ahead)
		}
		what := b.String()
		if yes {
			fmt.Fprintf(a.stderr, "registry: %s; the purge measures from this clock now (--yes)\n", what)
			return nil
		}
		ok, err := confirm(what + ".\nIs this clock right (timedatectl) and were the later times stamped by a clock running ahead? Type yes: ")
		if err != nil {
			return withHint(registry.Errorf(registry.EINVALID, "%s; nothing was recorded", what), "run it on a terminal to confirm, or pass --yes in a script")
		}
		if !ok {
			return registry.Errorf(registry.EINVALID, "not confirmed; nothing was recorded")
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, "registry: clock reset recorded in the audit log (purge.clock_reset)")
	return nil
}

// span is a duration in whole days when it is one ("14 days"), else as Go
// prints it.
func span(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if n := int(d / (24 * time.Hour)); n == 1 {
			return "1 day"
		} else {
			return fmt.Sprintf("%d days", n)
		}
	}
	return d.String()
}
