// Package checks holds the checks of an installation's store that
// registry doctor runs on demand and serve runs every hour: the WAL's
// treatment of purged rows, the recipients pin, the day keys ahead and
// behind, the purge's last run and the clock, the audit log and the data
// it covers, the approvers. Each finding comes with the fix an operator
// applies; none holds personal data.
package checks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/sqlstore"
	"github.com/cityhall/registry/retention"
)

// State is a finding's verdict.
type State string

// The verdicts.
const (
	OK   State = "ok"
	Warn State = "WARN"
	Fail State = "FAIL"
)

// Finding is one check's result: its state, the check's name, what was
// found, and how to fix it (empty when ok).
type Finding struct {
	State  State  `json:"state"`
	Check  string `json:"check"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Add records a finding.
type Add func(state State, check, detail, fix string)

// Report is the findings of one run.
type Report struct {
	At       time.Time `json:"at"`
	Findings []Finding `json:"findings"`
}

// Add records a finding in r.
func (r *Report) Add(state State, check, detail, fix string) {
	r.Findings = append(r.Findings, Finding{state, check, detail, fix})
}

// Count returns the number of findings in state s.
func (r *Report) Count(s State) int {
	n := 0
	for _, f := range r.Findings {
		if f.State == s {
			n++
		}
	}
	return n
}

// Options are what the checks need beyond the store.
type Options struct {
	// Keystore is the epoch key store's directory ("": not checked).
	Keystore string
	// Recipients is the health office's recipients file ("": warned).
	Recipients string
	// Checkpoint, when set, is a signed checkpoint the log must extend.
	Checkpoint *audit.Checkpoint
	// KeysWarn is how many future days must have keys (default 7).
	KeysWarn int
	// PurgeInterval is how often serve purges (default 1 h).
	PurgeInterval time.Duration
	// Retention is the retention period (default the statutory one).
	Retention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o *Options) retention() time.Duration {
	if o.Retention <= 0 {
		return retention.DefaultPolicy().Retention
	}
	return o.Retention
}

// Store runs every check of the store, in doctor's order.
func Store(ctx context.Context, s registry.Store, o *Options) *Report {
	if o.KeysWarn == 0 {
		o.KeysWarn = 7
	}
	if o.PurgeInterval <= 0 {
		o.PurgeInterval = time.Hour
	}
	r := &Report{At: o.now()}
	if err := s.Ping(ctx); err != nil {
		r.Add(Fail, "database", "does not answer: "+registry.ErrorMessage(err), "start the database server; check the network")
		return r
	}
	WAL(ctx, s, r.Add)
	Recipients(ctx, s, o, r.Add)
	Keys(ctx, s, o, r.Add)
	Purge(ctx, s, o, r.Add)
	Audit(ctx, s, o, r.Add)
	Approvers(ctx, s, r.Add)
	Sites(ctx, s, r.Add)
	return r
}

// Sites warns of a site whose visitors' form still shows the default
// privacy notice: no legal basis named and no notice in the city hall's
// own words.
func Sites(ctx context.Context, s registry.Store, add Add) {
	sites, err := s.Sites(ctx)
	if err != nil {
		add(Fail, "sites", "cannot read the sites: "+registry.ErrorMessage(err), "check the database")
		return
	}
	n := 0
	for _, site := range sites {
		if site.LegalBasis == "" && len(site.Notices) == 0 {
			n++
			add(Warn, "privacy notice", fmt.Sprintf("site %s shows the default privacy notice: no legal basis named, no wording of the city hall's own", site.Code),
				fmt.Sprintf("registry sites set %s --legal-basis \"…\" (and --notice de=\"…\" --notice en=\"…\" for your own words)", site.Code))
		}
	}
	if n == 0 {
		add(OK, "privacy notice", fmt.Sprintf("%d sites name their legal basis or word their own notice", len(sites)), "")
	}
}

// RestoreFix is what to do about a damaged database.
const RestoreFix = "stop serve, keep the damaged file for analysis, restore the latest backup (docs/operations.md: Backups), then registry audit verify --checkpoint FILE"

// FixFor is the fix of a failed check: the restore for a damaged
// database, else def.
func FixFor(err error, def string) string {
	if errors.Is(err, sqlstore.ErrCorrupt) {
		return RestoreFix
	}
	return def
}

// WAL reports how long PostgreSQL's write-ahead log keeps purged
// rows (sealed, unreadable once their day keys are destroyed).
func WAL(ctx context.Context, s registry.Store, add Add) {
	pg, ok := s.(interface {
		WAL(context.Context) (*postgres.WALState, error)
	})
	if !ok {
		return
	}
	w, err := pg.WAL(ctx)
	if err != nil {
		add(Warn, "wal", registry.ErrorMessage(err), "")
		return
	}
	archive := ""
	if w.Archive != "off" {
		archive = "; WAL archiving is on (archive_mode = " + w.Archive + "): the archive keeps purged rows, sealed, for as long as you keep it, so keep it no longer than the retention period"
	}
	switch {
	case !w.Privilege:
		add(Warn, "wal", "the role may not switch WAL segments and checkpoint: pg_wal keeps purged rows until the server removes the segments on its own"+archive,
			"as a superuser: GRANT pg_checkpoint TO registry; GRANT EXECUTE ON FUNCTION pg_switch_wal() TO registry (PostgreSQL 15 or newer)")
	case w.Recycle:
		add(Warn, "wal", "wal_recycle = on: recycled WAL segments keep purged rows until new WAL overwrites them"+archive,
			"ALTER SYSTEM SET wal_recycle = off; SELECT pg_reload_conf(); (as a superuser)")
	default:
		add(OK, "wal", "each purge that deletes rows ends the WAL segment and checkpoints; old segments are removed"+archive, "")
	}
}

func Recipients(ctx context.Context, s registry.Store, o *Options, add Add) {
	if o.Recipients == "" {
		add(Warn, "recipients", "no recipients file given", "pass --recipients FILE (or REGISTRY_RECIPIENTS) as for serve")
		return
	}
	r, err := crypto.ReadRecipients(o.Recipients)
	if err != nil {
		add(Fail, "recipients", registry.ErrorMessage(err), "restore the health office's recipients file")
		return
	}
	pinned, problems, err := s.Recipients(ctx)
	switch {
	case err != nil:
		add(Fail, "recipients", registry.ErrorMessage(err), "see registry audit verify")
		return
	case len(problems) > 0:
		add(Fail, "recipients", problems[0], "the audit log holds a recipients change that does not verify: keep the database as it is and call the data-protection officer")
	case pinned == "":
		add(Warn, "recipients", "not pinned yet", "start serve once: it pins the recipients")
		return
	}
	if pinned != r.Fingerprint() {
		add(Fail, "recipients", "the file differs from the pinned recipients ("+pinned+"): serve refuses to start",
			"restore the pinned file, or if the health office really changed its keys: approvers sign it, registry recipients sign "+o.Recipients+" --key YOUR-KEY")
		return
	}
	add(OK, "recipients", "pinned and unchanged ("+r.Fingerprint()+"), "+r.Kind().Describe(), "")
	if r.Kind() != crypto.Hybrid {
		add(Warn, "recipients", "the health office's keys are classic (X25519): a copy of an export bundle kept today could be opened by a future quantum computer",
			"the office creates a hybrid key (registry keygen), the approvers sign the new recipients file; see the README, \"Post-quantum keys\"")
	}
}

func Keys(ctx context.Context, s registry.Store, o *Options, add Add) {
	if o.Keystore == "" {
		return
	}
	if _, err := os.Stat(o.Keystore); err != nil { // doctor looks, it never creates
		add(Fail, "epoch keys", "no key for today (no key store yet): registrations are refused", "start serve: it creates the key store and the keys ahead")
		return
	}
	ks, err := crypto.OpenKeyStore(o.Keystore)
	if err != nil {
		add(Fail, "epoch keys", registry.ErrorMessage(err), "check --keystore")
		return
	}
	days, err := ks.Days()
	if err != nil {
		add(Fail, "epoch keys", err.Error(), "check the key store")
		return
	}
	today := registry.DayOf(o.now())
	ahead := 0
	for d := today; ; d = d.AddDays(1) {
		found := false
		for _, k := range days {
			if k == d {
				found = true
			}
		}
		if !found {
			break
		}
		ahead++
	}
	switch {
	case ahead == 0:
		add(Fail, "epoch keys", "no key for today: registrations are refused", "start serve (it creates keys ahead); check the key store's permissions")
	case ahead-1 < o.KeysWarn:
		add(Warn, "epoch keys", fmt.Sprintf("keys for %d days ahead (want %d)", ahead-1, o.KeysWarn), "serve creates them; is it running?")
	default:
		add(OK, "epoch keys", fmt.Sprintf("keys for today and %d days ahead (%s)", ahead-1, kindCounts(ks, days)), "")
	}
	cutoff := o.now().Add(-o.retention() - 8*24*time.Hour)
	old := 0
	for _, d := range days {
		if d.End().Before(cutoff) {
			old++
		}
	}
	if old > 0 {
		add(Fail, "epoch keys", fmt.Sprintf("%d day keys older than the retention period are still in the key store", old), "the purge destroys them; check that serve purges (and that no backup restored them)")
	}
}

// kindCounts counts the key store's keys by kind: "16 hybrid, 3 x25519".
func kindCounts(ks *crypto.KeyStore, days []registry.Day) string {
	var hybrid, classic, unreadable int
	for _, d := range days {
		switch kind, err := ks.Kind(d); {
		case err != nil:
			unreadable++
		case kind == crypto.Hybrid:
			hybrid++
		default:
			classic++
		}
	}
	out := fmt.Sprintf("%d hybrid, %d x25519", hybrid, classic)
	if unreadable > 0 {
		out += fmt.Sprintf(", %d unreadable", unreadable)
	}
	return out
}

func Purge(ctx context.Context, s registry.Store, o *Options, add Add) {
	ev, err := s.LastAudit(ctx, registry.AuditPurge)
	if err != nil {
		add(Warn, "purge", "no purge recorded yet", "start serve (it purges every --purge-interval) or run registry purge")
		return
	}
	now := o.now()
	age := now.Sub(ev.Time)
	switch {
	case age < 0:
		add(Fail, "clock", "the clock is "+(-age).Round(time.Second).String()+" behind the last purge", "fix the host's time (NTP) before serve purges; if the host's time is right and the purge ran with a clock ahead: registry purge --reset-clock")
	case age > 3*o.PurgeInterval:
		add(Fail, "purge", "last purge "+age.Round(time.Minute).String()+" ago", "is serve running? see its log and /readyz; registry purge runs one now")
	default:
		add(OK, "purge", "last purge "+age.Round(time.Second).String()+" ago", "")
	}
}

func Audit(ctx context.Context, s registry.Store, o *Options, add Add) {
	cp := o.Checkpoint
	r, err := audit.Verify(ctx, s, cp)
	if err != nil {
		add(Fail, "audit", registry.ErrorMessage(err), FixFor(err, "the log was changed: keep the database as it is and call the data-protection officer"))
		return
	}
	d, err := audit.VerifyData(ctx, s)
	if err != nil {
		add(Fail, "audit", registry.ErrorMessage(err), FixFor(err, "see registry audit verify"))
		return
	}
	if n := len(d.Problems) + d.Omitted; n > 0 {
		add(Fail, "audit", fmt.Sprintf("%d findings in the data, first: %s", n, d.Problems[0]), "registry audit verify lists them; keep the database as it is and call the data-protection officer")
		return
	}
	detail := fmt.Sprintf("%d entries verify; %d visits match the log", r.Size, d.Visits)
	if cp != nil {
		detail += "; extends the checkpoint"
	}
	add(OK, "audit", detail, "")
}

// Approvers counts the approvers (persons) and reports what the
// log does not prove.
func Approvers(ctx context.Context, s registry.Store, add Add) {
	set, err := s.Approvers(ctx)
	if err != nil {
		add(Fail, "approvers", registry.ErrorMessage(err), "see registry approvers list")
		return
	}
	for _, p := range set.Problems {
		add(Fail, "approvers", p, "keep the database as it is and call the data-protection officer; registry audit verify lists every finding")
	}
	for _, k := range set.Keys {
		if k.Unproven {
			add(Fail, "approvers", "the approvers table holds key "+registry.SafeKeyID(k.ID)+", which the audit log never registered: written into the database by hand (it counts for nothing)",
				"keep the database as it is and call the data-protection officer")
		}
	}
	persons := len(set.Persons())
	switch {
	case persons == 0:
		add(Warn, "approvers", "no approver is registered: no trace request can be approved", "registry approvers keygen on the DPO's computer, then registry approvers add NAME --public-key KEY")
	case persons == 1:
		add(Warn, "approvers", fmt.Sprintf("one person with %d keys: a request recorded from a letter needs two persons", len(set.Active())),
			"register a second and a third approver (registry approvers add): with two, a lost key blocks every change of the approvers")
	case persons == 2:
		add(OK, "approvers", fmt.Sprintf("2 persons with %d keys (a third keeps the approvers changeable when one key is lost)", len(set.Active())), "")
	default:
		add(OK, "approvers", fmt.Sprintf("%d persons with %d keys", persons, len(set.Active())), "")
	}
}

// Runner runs Store every Interval and keeps the last report, for the
// DPO's page and the alerts.
type Runner struct {
	Store    registry.Store
	Options  Options
	Interval time.Duration // default 1 h

	mu   sync.Mutex
	last *Report
}

// Last returns the last report, nil before the first run.
func (r *Runner) Last() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// RunOnce runs the checks now and keeps the report.
func (r *Runner) RunOnce(ctx context.Context) *Report {
	o := r.Options
	rep := Store(ctx, r.Store, &o)
	r.mu.Lock()
	r.last = rep
	r.mu.Unlock()
	return rep
}

// Run runs the checks at once and every Interval until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
