package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/sqlstore"
	"github.com/cityhall/registry/retention"
)

// exitError ends the command with its code, after its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// A doctor's finding.
const (
	checkOK   = "ok"
	checkWarn = "WARN"
	checkFail = "FAIL"
)

type finding struct {
	state, check, detail, fix string
}

type doctorOptions struct {
	keystore, recipients, checkpoint, verifierKey, dataDir string
	backupPaths                                            []string
	keysWarn                                               int
	purgeInterval                                          time.Duration
}

func (a *app) doctorCmd() *cobra.Command {
	o := doctorOptions{keysWarn: 7, purgeInterval: time.Hour}
	cmd := &cobra.Command{
		Use:   "doctor [--keystore DIR] [--recipients FILE] [--checkpoint FILE --verifier-key FILE]",
		Short: "Check an installation and say how to fix what is wrong (exit 0 ok, 1 warnings, 2 failures)",
		Long: `doctor checks the installation with the settings of serve (the same
REGISTRY_* environment): the database is reachable and migrated, PostgreSQL
is reached over verified TLS, the key store, its keys, the server secret and
the SQLite file are readable by their owner only, the recipients file is
the pinned one, epoch keys exist for the days ahead, the purge ran recently
and the clock is not behind it, the audit log verifies (against a
checkpoint if given) and the data matches it, approvers are registered, and
which version runs. Every finding that is not ok comes with a fix. The exit
status is 0 when all is well, 1 with warnings, 2 with failures: run it from
the monitoring system.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDoctor(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.keystore, "keystore", "", "epoch key store `DIR`")
	f.StringVar(&o.recipients, "recipients", "", "the health office's recipients `FILE`")
	f.StringVar(&o.checkpoint, "checkpoint", "", "a signed checkpoint `FILE` the audit log must extend")
	f.StringVar(&o.verifierKey, "verifier-key", "", "`FILE` with the checkpoint's verifier key")
	f.IntVar(&o.keysWarn, "keys-warn", o.keysWarn, "warn when fewer future days have keys")
	f.DurationVar(&o.purgeInterval, "purge-interval", o.purgeInterval, "how often serve purges")
	f.StringVar(&o.dataDir, "data-dir", "", "serve's data `DIR` (its tmp)")
	f.StringSliceVar(&o.backupPaths, "backup-paths", nil, "the `DIRS` the host's backups take (comma-separated): the key store must not lie in any of them")
	settings(f, "keystore", "recipients", "verifier-key", "keys-warn", "purge-interval", "data-dir", "backup-paths")
	return cmd
}

func (a *app) runDoctor(ctx context.Context, o *doctorOptions) error {
	var fs []finding
	add := func(state, check, detail, fix string) { fs = append(fs, finding{state, check, detail, fix}) }
	add(checkOK, "version", "registry "+versionString(), "")
	a.doctorFiles(o, add)
	a.doctorLayout(o, add)
	s, err := a.openStore(ctx, existingDB)
	if err != nil {
		add(checkFail, "database", registry.ErrorMessage(err), fixFor(err, "check --db / REGISTRY_DB and that the database server runs; 'registry migrate' creates a new one"))
		return a.doctorReport(fs)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		add(checkFail, "database", "does not answer: "+registry.ErrorMessage(err), "start the database server; check the network")
	} else {
		add(checkOK, "database", describeDB(a.db)+" reachable and migrated", "")
	}
	if qc, ok := s.(interface {
		QuickCheck(context.Context) ([]string, error)
	}); ok {
		switch problems, err := qc.QuickCheck(ctx); {
		case err != nil:
			add(checkFail, "integrity", registry.ErrorMessage(err), fixFor(err, ""))
		case len(problems) > 0:
			add(checkFail, "integrity", "the database file is damaged: "+strings.Join(problems, "; "), restoreFix)
		default:
			add(checkOK, "integrity", "the database file is sound (quick check)", "")
		}
	}
	a.doctorTLS(add)
	a.doctorWAL(ctx, s, add)
	a.doctorRecipients(ctx, s, o, add)
	a.doctorKeys(ctx, s, o, add)
	a.doctorPurge(ctx, s, o, add)
	a.doctorAudit(ctx, s, o, add)
	a.doctorApprovers(ctx, s, add)
	return a.doctorReport(fs)
}

// restoreFix is what to do about a damaged database.
const restoreFix = "stop serve, keep the damaged file for analysis, restore the latest backup (README: Backups, Restore), then registry audit verify --checkpoint FILE"

// fixFor is the fix of a failed check: the restore for a damaged
// database, else def.
func fixFor(err error, def string) string {
	if errors.Is(err, sqlstore.ErrCorrupt) {
		return restoreFix
	}
	return def
}

// doctorReport prints the findings and returns the exit status.
func (a *app) doctorReport(fs []finding) error {
	warn, fail := 0, 0
	for _, f := range fs {
		fmt.Fprintf(a.stdout, "%-4s  %-12s %s\n", f.state, f.check, f.detail)
		if f.fix != "" {
			fmt.Fprintf(a.stdout, "      %-12s fix: %s\n", "", f.fix)
		}
		switch f.state {
		case checkWarn:
			warn++
		case checkFail:
			fail++
		}
	}
	switch {
	case fail > 0:
		return &exitError{2, fmt.Sprintf("%d checks failed, %d warnings", fail, warn)}
	case warn > 0:
		return &exitError{1, fmt.Sprintf("%d warnings", warn)}
	}
	fmt.Fprintln(a.stdout, "all checks passed")
	return nil
}

// private reports whether a path is closed to group and others.
func private(path string, dir bool) (string, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing", false
	}
	if dir != fi.IsDir() {
		return "not a " + map[bool]string{true: "directory", false: "file"}[dir], false
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Sprintf("mode %04o", fi.Mode().Perm()), false
	}
	return fmt.Sprintf("mode %04o", fi.Mode().Perm()), true
}

func (a *app) doctorFiles(o *doctorOptions, add func(state, check, detail, fix string)) {
	if !isPostgres(a.db) {
		if st, ok := private(a.db, false); ok {
			add(checkOK, "files", "database "+a.db+" "+st, "")
		} else {
			add(checkFail, "files", "database "+a.db+": "+st, "chmod 600 "+a.db+" (and its -wal and -shm files); the directory 700")
		}
	}
	if o.keystore == "" {
		add(checkWarn, "key store", "no key store given", "pass --keystore DIR (or REGISTRY_KEYSTORE) as for serve")
		return
	}
	if st, ok := private(o.keystore, true); !ok {
		fix := "chmod 700 " + o.keystore + "; it must belong to the service user"
		if st == "missing" {
			fix = "check --keystore (REGISTRY_KEYSTORE); serve creates the key store at its first start"
		}
		add(checkFail, "key store", o.keystore+": "+st, fix)
		return
	}
	bad := 0
	filepath.WalkDir(o.keystore, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, ok := private(path, false); !ok {
				bad++
				add(checkFail, "key store", path+" may be read by others", "chmod 600 "+path)
			}
		}
		return nil
	})
	if bad == 0 {
		add(checkOK, "key store", o.keystore+" and its files readable by their owner only", "")
	}
}

// doctorWAL reports how long PostgreSQL's write-ahead log keeps purged
// rows (sealed, unreadable once their day keys are destroyed).
func (a *app) doctorWAL(ctx context.Context, s registry.Store, add func(state, check, detail, fix string)) {
	pg, ok := s.(interface {
		WAL(context.Context) (*postgres.WALState, error)
	})
	if !ok {
		return
	}
	w, err := pg.WAL(ctx)
	if err != nil {
		add(checkWarn, "wal", registry.ErrorMessage(err), "")
		return
	}
	archive := ""
	if w.Archive != "off" {
		archive = "; WAL archiving is on (archive_mode = " + w.Archive + "): the archive keeps purged rows, sealed, for as long as you keep it, so keep it no longer than the retention period"
	}
	switch {
	case !w.Privilege:
		add(checkWarn, "wal", "the role may not switch WAL segments and checkpoint: pg_wal keeps purged rows until the server removes the segments on its own"+archive,
			"as a superuser: GRANT pg_checkpoint TO registry; GRANT EXECUTE ON FUNCTION pg_switch_wal() TO registry (PostgreSQL 15 or newer)")
	case w.Recycle:
		add(checkWarn, "wal", "wal_recycle = on: recycled WAL segments keep purged rows until new WAL overwrites them"+archive,
			"ALTER SYSTEM SET wal_recycle = off; SELECT pg_reload_conf(); (as a superuser)")
	default:
		add(checkOK, "wal", "each purge that deletes rows ends the WAL segment and checkpoints; old segments are removed"+archive, "")
	}
}

func (a *app) doctorTLS(add func(state, check, detail, fix string)) {
	if !isPostgres(a.db) {
		return
	}
	u, err := url.Parse(a.db)
	mode := ""
	if err == nil {
		mode = u.Query().Get("sslmode")
	}
	host := ""
	if u != nil {
		host = u.Hostname()
	}
	switch {
	case mode == "verify-full" || mode == "verify-ca":
		add(checkOK, "tls", "PostgreSQL over TLS, sslmode="+mode, "")
	case host == "" || host == "localhost" || host == "127.0.0.1" || strings.HasPrefix(host, "/"):
		add(checkWarn, "tls", "PostgreSQL on this host without verified TLS (sslmode="+dash(mode)+")", "fine on a unix socket; over a network use sslmode=verify-full")
	default:
		add(checkFail, "tls", "PostgreSQL at "+host+" without verified TLS (sslmode="+dash(mode)+")", "add sslmode=verify-full and the server's CA (sslrootcert) to the URL")
	}
}

func (a *app) doctorRecipients(ctx context.Context, s registry.Store, o *doctorOptions, add func(state, check, detail, fix string)) {
	if o.recipients == "" {
		add(checkWarn, "recipients", "no recipients file given", "pass --recipients FILE (or REGISTRY_RECIPIENTS) as for serve")
		return
	}
	r, err := crypto.ReadRecipients(o.recipients)
	if err != nil {
		add(checkFail, "recipients", registry.ErrorMessage(err), "restore the health office's recipients file")
		return
	}
	pinned, problems, err := s.Recipients(ctx)
	switch {
	case err != nil:
		add(checkFail, "recipients", registry.ErrorMessage(err), "see registry audit verify")
		return
	case len(problems) > 0:
		add(checkFail, "recipients", problems[0], "the audit log holds a recipients change that does not verify: keep the database as it is and call the data-protection officer")
	case pinned == "":
		add(checkWarn, "recipients", "not pinned yet", "start serve once: it pins the recipients")
		return
	}
	if pinned != r.Fingerprint() {
		add(checkFail, "recipients", "the file differs from the pinned recipients ("+pinned+"): serve refuses to start",
			"restore the pinned file, or if the health office really changed its keys: approvers sign it, registry recipients sign "+o.recipients+" --key YOUR-KEY")
		return
	}
	add(checkOK, "recipients", "pinned and unchanged ("+r.Fingerprint()+")", "")
}

func (a *app) doctorKeys(ctx context.Context, s registry.Store, o *doctorOptions, add func(state, check, detail, fix string)) {
	if o.keystore == "" {
		return
	}
	if _, err := os.Stat(o.keystore); err != nil { // doctor looks, it never creates
		add(checkFail, "epoch keys", "no key for today (no key store yet): registrations are refused", "start serve: it creates the key store and the keys ahead")
		return
	}
	ks, err := crypto.OpenKeyStore(o.keystore)
	if err != nil {
		add(checkFail, "epoch keys", registry.ErrorMessage(err), "check --keystore")
		return
	}
	days, err := ks.Days()
	if err != nil {
		add(checkFail, "epoch keys", err.Error(), "check the key store")
		return
	}
	today := registry.DayOf(a.now())
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
		add(checkFail, "epoch keys", "no key for today: registrations are refused", "start serve (it creates keys ahead); check the key store's permissions")
	case ahead-1 < o.keysWarn:
		add(checkWarn, "epoch keys", fmt.Sprintf("keys for %d days ahead (want %d)", ahead-1, o.keysWarn), "serve creates them; is it running?")
	default:
		add(checkOK, "epoch keys", fmt.Sprintf("keys for today and %d days ahead", ahead-1), "")
	}
	cutoff := a.now().Add(-retention.DefaultPolicy().Retention - 8*24*time.Hour)
	old := 0
	for _, d := range days {
		if d.End().Before(cutoff) {
			old++
		}
	}
	if old > 0 {
		add(checkFail, "epoch keys", fmt.Sprintf("%d day keys older than the retention period are still in the key store", old), "the purge destroys them; check that serve purges (and that no backup restored them)")
	}
}

func (a *app) doctorPurge(ctx context.Context, s registry.Store, o *doctorOptions, add func(state, check, detail, fix string)) {
	ev, err := s.LastAudit(ctx, registry.AuditPurge)
	if err != nil {
		add(checkWarn, "purge", "no purge recorded yet", "start serve (it purges every --purge-interval) or run registry purge")
		return
	}
	now := a.now()
	age := now.Sub(ev.Time)
	switch {
	case age < 0:
		add(checkFail, "clock", "the clock is "+(-age).Round(time.Second).String()+" behind the last purge", "fix the host's time (NTP) before serve purges; if the host's time is right and the purge ran with a clock ahead: registry purge --reset-clock")
	case age > 3*o.purgeInterval:
		add(checkFail, "purge", "last purge "+age.Round(time.Minute).String()+" ago", "is serve running? see its log and /readyz; registry purge runs one now")
	default:
		add(checkOK, "purge", "last purge "+age.Round(time.Second).String()+" ago", "")
	}
}

func (a *app) doctorAudit(ctx context.Context, s registry.Store, o *doctorOptions, add func(state, check, detail, fix string)) {
	var cp *audit.Checkpoint
	if o.checkpoint != "" {
		var err error
		if cp, err = readCheckpoint(o.checkpoint, o.verifierKey); err != nil {
			add(checkFail, "audit", registry.ErrorMessage(err), "check --checkpoint and --verifier-key")
			return
		}
	}
	r, err := audit.Verify(ctx, s, cp)
	if err != nil {
		add(checkFail, "audit", registry.ErrorMessage(err), fixFor(err, "the log was changed: keep the database as it is and call the data-protection officer"))
		return
	}
	d, err := audit.VerifyData(ctx, s)
	if err != nil {
		add(checkFail, "audit", registry.ErrorMessage(err), fixFor(err, "see registry audit verify"))
		return
	}
	if n := len(d.Problems) + d.Omitted; n > 0 {
		add(checkFail, "audit", fmt.Sprintf("%d findings in the data, first: %s", n, d.Problems[0]), "registry audit verify lists them; keep the database as it is and call the data-protection officer")
		return
	}
	detail := fmt.Sprintf("%d entries verify; %d visits match the log", r.Size, d.Visits)
	if cp != nil {
		detail += "; extends the checkpoint"
	}
	add(checkOK, "audit", detail, "")
}

// doctorApprovers counts the approvers (persons) and reports what the
// log does not prove.
func (a *app) doctorApprovers(ctx context.Context, s registry.Store, add func(state, check, detail, fix string)) {
	set, err := s.Approvers(ctx)
	if err != nil {
		add(checkFail, "approvers", registry.ErrorMessage(err), "see registry approvers list")
		return
	}
	for _, p := range set.Problems {
		add(checkFail, "approvers", p, "keep the database as it is and call the data-protection officer; registry audit verify lists every finding")
	}
	for _, k := range set.Keys {
		if k.Unproven {
			add(checkFail, "approvers", "the approvers table holds key "+registry.SafeKeyID(k.ID)+", which the audit log never registered: written into the database by hand (it counts for nothing)",
				"keep the database as it is and call the data-protection officer")
		}
	}
	persons := len(set.Persons())
	switch {
	case persons == 0:
		add(checkWarn, "approvers", "no approver is registered: no trace request can be approved", "registry approvers keygen on the DPO's computer, then registry approvers add NAME --public-key KEY")
	case persons == 1:
		add(checkWarn, "approvers", fmt.Sprintf("one person with %d keys: a request recorded from a letter needs two persons", len(set.Active())),
			"register a second and a third approver (registry approvers add): with two, a lost key blocks every change of the approvers")
	case persons == 2:
		add(checkOK, "approvers", fmt.Sprintf("2 persons with %d keys (a third keeps the approvers changeable when one key is lost)", len(set.Active())), "")
	default:
		add(checkOK, "approvers", fmt.Sprintf("%d persons with %d keys", persons, len(set.Active())), "")
	}
}

// doctorLayout fails when the key store lies where the database's backups
// reach it (the database's directory, the data directory, a configured
// backup path): a copy of the key store beside an old database backup
// reopens every record the purge made unreadable. It also fails on a
// demo installation: the health office's identity beside the data.
func (a *app) doctorLayout(o *doctorOptions, add func(state, check, detail, fix string)) {
	type place struct{ what, dir string }
	var places []place
	if !isPostgres(a.db) {
		places = append(places, place{"the database's directory", filepath.Dir(a.db)})
	}
	if o.dataDir != "" {
		places = append(places, place{"the data directory", o.dataDir})
	}
	for _, b := range o.backupPaths {
		if b = strings.TrimSpace(b); b != "" {
			places = append(places, place{"the backup path", b})
		}
	}
	if o.keystore != "" && len(places) == 0 {
		add(checkOK, "layout", "the database lies on the PostgreSQL server; name the host's backup paths (--backup-paths) to check the key store against them", "")
	}
	if o.keystore != "" && len(places) > 0 {
		ks, checked := absPath(o.keystore), []string{}
		for _, p := range places {
			if within(ks, absPath(p.dir)) {
				add(checkFail, "layout", "the key store "+o.keystore+" lies in "+p.what+" "+p.dir+": a backup of it takes the day keys along, and an old database backup becomes readable again",
					"move the key store out (for example REGISTRY_KEYSTORE=/var/lib/registry-keys, the shipped layout) and exclude it from every backup and snapshot")
				checked = nil
				break
			}
			if !slices.Contains(checked, p.what) {
				checked = append(checked, p.what)
			}
		}
		if checked != nil {
			add(checkOK, "layout", "the key store lies outside "+strings.Join(checked, ", "), "")
		}
	}
	dirs := []string{o.keystore, o.dataDir}
	if !isPostgres(a.db) {
		dirs = append(dirs, filepath.Dir(a.db))
	}
	for _, dir := range dirs {
		if id := identityIn(dir); id != "" {
			add(checkFail, "demo", "a health-office identity ("+id+") lies beside the data it opens: this is a demo installation, never use it for real visitors",
				"install for real (README: Installing for real): the health office keeps its identity on its own machine; the server holds only the recipients")
			return
		}
	}
}

// absPath is p made absolute and its symbolic links resolved, as far as
// it exists.
func absPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// identityIn returns the name of a file in dir (not below it) that holds
// an age identity (AGE-SECRET-KEY-1 …), "" for none.
func identityIn(dir string) string {
	if dir == "" {
		return ""
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), "epoch-") {
			continue // the key store's own day keys are age identities too
		}
		path := filepath.Join(dir, e.Name())
		if fi, err := e.Info(); err != nil || fi.Size() > 64<<10 {
			continue
		}
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "AGE-SECRET-KEY-1") {
			return path
		}
	}
	return ""
}
