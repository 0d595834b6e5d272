package main

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/checks"
)

// exitError ends the command with its code, after its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// A doctor's findings' states.
const (
	checkOK   = checks.OK
	checkWarn = checks.Warn
	checkFail = checks.Fail
)

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
	r := &checks.Report{}
	add := r.Add
	add(checkOK, "version", "registry "+versionString(), "")
	a.doctorFiles(o, add)
	a.doctorLayout(o, add)
	s, err := a.openStore(ctx, existingDB)
	if err != nil {
		add(checkFail, "database", registry.ErrorMessage(err), checks.FixFor(err, "check --db / REGISTRY_DB and that the database server runs; 'registry migrate' creates a new one"))
		return a.doctorReport(r)
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
			add(checkFail, "integrity", registry.ErrorMessage(err), checks.FixFor(err, ""))
		case len(problems) > 0:
			add(checkFail, "integrity", "the database file is damaged: "+strings.Join(problems, "; "), checks.RestoreFix)
		default:
			add(checkOK, "integrity", "the database file is sound (quick check)", "")
		}
	}
	a.doctorTLS(add)
	co := &checks.Options{Keystore: o.keystore, Recipients: o.recipients, KeysWarn: o.keysWarn, PurgeInterval: o.purgeInterval, Now: a.now}
	checks.WAL(ctx, s, add)
	checks.Recipients(ctx, s, co, add)
	checks.Keys(ctx, s, co, add)
	checks.Purge(ctx, s, co, add)
	var cpErr error
	if o.checkpoint != "" {
		if co.Checkpoint, cpErr = readCheckpoint(o.checkpoint, o.verifierKey); cpErr != nil {
			add(checkFail, "audit", registry.ErrorMessage(cpErr), "check --checkpoint and --verifier-key")
		}
	}
	if cpErr == nil {
		checks.Audit(ctx, s, co, add)
	}
	checks.Approvers(ctx, s, add)
	checks.Sites(ctx, s, add)
	return a.doctorReport(r)
}

// doctorReport prints the findings and returns the exit status.
func (a *app) doctorReport(r *checks.Report) error {
	for _, f := range r.Findings {
		fmt.Fprintf(a.stdout, "%-4s  %-12s %s\n", f.State, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(a.stdout, "      %-12s fix: %s\n", "", f.Fix)
		}
	}
	warn, fail := r.Count(checkWarn), r.Count(checkFail)
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

func (a *app) doctorFiles(o *doctorOptions, add checks.Add) {
	if !isPostgres(a.db) {
		switch st, ok := private(a.db, false); {
		case ok:
			add(checkOK, "files", "database "+a.db+" "+st, "")
		case st == "missing":
			// the database check below says how to create it
		default:
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

func (a *app) doctorTLS(add checks.Add) {
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

// doctorLayout fails when the key store lies where the database's backups
// reach it (the database's directory, the data directory, a configured
// backup path): a copy of the key store beside an old database backup
// reopens every record the purge made unreadable. It also fails on a
// demo installation: the health office's identity beside the data.
func (a *app) doctorLayout(o *doctorOptions, add checks.Add) {
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
				"install for real (docs/operations.md: Installing for real): the health office keeps its identity on its own machine; the server holds only the recipients")
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
// an age identity (AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…), "" for none.
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
		if b, err := os.ReadFile(path); err == nil && (strings.Contains(string(b), "AGE-SECRET-KEY-1") || strings.Contains(string(b), "AGE-SECRET-KEY-PQ-1")) {
			return path
		}
	}
	return ""
}
