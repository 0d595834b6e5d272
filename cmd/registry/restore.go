package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/sqlite"
	"github.com/cityhall/registry/registry/sqlstore"
)

func (a *app) restoreCmd() *cobra.Command {
	var cpFile, vkeyFile, as string
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore BACKUP [--checkpoint FILE --verifier-key FILE] [--yes]",
		Short: "Put a 'registry backup' copy in place of the SQLite database, checked first",
		Long: `restore replaces the SQLite database (--db) with a copy 'registry backup'
wrote. It refuses while serve runs on the database. It first checks the
copy: the file is sound (quick check), its audit log verifies, extends the
checkpoint you give (take the latest one made before the backup), and the
data matches the log. It then says what the restore rolls back (the audit
entries and visits stored after the backup are gone), asks, keeps the
current database aside as DB.before-restore-TIME (with its -wal and -shm),
and puts the copy in place. The audit log of the restored database records
the restore.

restore never touches the key store: a day whose key the purge destroyed
after the backup stays unreadable, and the next purge deletes what
expired since. For PostgreSQL use pg_restore (docs/operations.md:
Backups).`,
		Example: `  systemctl stop registry
  registry restore /var/backups/registry/registry-2026-11-23.db --checkpoint /media/dpo/checkpoint-2026-11.txt --verifier-key /media/dpo/audit-verifier.key
  systemctl start registry`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), args[0], cpFile, vkeyFile, as, yes)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cpFile, "checkpoint", "", "a signed checkpoint `FILE` the backup's log must extend")
	f.StringVar(&vkeyFile, "verifier-key", "", "the checkpoint's verifier key `FILE`")
	f.StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	f.BoolVar(&yes, "yes", false, "do not ask before the restore rolls back")
	settings(f, "as")
	return cmd
}

// snapshot is what a database holds, for the restore's report.
type snapshot struct {
	entries int64
	visits  int64
}

func (a *app) runRestore(ctx context.Context, backup, cpFile, vkeyFile, as string, yes bool) error {
	if isPostgres(a.db) {
		return withHint(registry.Errorf(registry.EINVALID, "restore puts back SQLite copies"), "for PostgreSQL restore a pg_dump with pg_restore (docs/operations.md: Backups)")
	}
	actor, err := dpoActor(as)
	if err != nil {
		return err
	}
	var cp *audit.Checkpoint
	if cpFile != "" {
		if cp, err = readCheckpoint(cpFile, vkeyFile); err != nil {
			return err
		}
	}
	release, err := serveLock(a.db, true)
	if err != nil {
		return withHint(err, "stop serve first (systemctl stop registry); restore never replaces a database in use")
	}
	defer release()

	// The candidate: a copy of the backup beside the database, so that the
	// backup file itself stays as it was and the final step is a rename.
	dir := filepath.Dir(a.db)
	candidate := filepath.Join(dir, fmt.Sprintf(".restore-%d.db", a.now().UnixNano()))
	if err := copyFile(backup, candidate); err != nil {
		return err
	}
	defer os.Remove(candidate)
	restored, err := a.checkCandidate(ctx, candidate, cp)
	if errors.Is(err, sqlstore.ErrCorrupt) {
		return withHint(registry.Errorf(registry.EINVALID, "The backup %s cannot be restored: the file is damaged or no database; nothing was changed.", backup), "take an older backup")
	} else if err != nil {
		return withHint(registry.Errorf(registry.ErrorCode(err), "The backup %s cannot be restored: %s Nothing was changed.", backup, registry.ErrorMessage(err)), "take an older backup, or the checkpoint made before this one")
	}
	current, currentErr := a.snapshotOf(ctx, a.db)
	fmt.Fprintf(a.stdout, "backup: %d audit entries, %d visits; the log verifies", restored.entries, restored.visits)
	if cp != nil {
		fmt.Fprintf(a.stdout, " and extends the checkpoint of %d entries", cp.Size)
	}
	fmt.Fprintln(a.stdout, "; the data matches the log")
	switch {
	case currentErr != nil:
		fmt.Fprintf(a.stdout, "the current database cannot be read (%s): what it held since the backup cannot be counted\n", registry.ErrorMessage(currentErr))
	default:
		fmt.Fprintf(a.stdout, "rolled back: %d audit entries and %d visits the current database holds beyond the backup\n",
			max(0, current.entries-restored.entries), max(0, current.visits-restored.visits))
	}
	if !yes {
		ok, err := confirm("Restore the backup and keep the current database aside? Type yes: ")
		if err != nil {
			return withHint(err, "pass --yes in a script")
		}
		if !ok {
			return registry.Errorf(registry.EINVALID, "not confirmed; nothing was changed")
		}
	}
	aside := fmt.Sprintf("%s.before-restore-%s", a.db, a.now().UTC().Format("20060102T150405Z"))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(a.db+suffix, aside+suffix); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("keep the current database aside: %w", err)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(candidate+suffix, a.db+suffix); err != nil && (suffix == "" || !os.IsNotExist(err)) {
			return fmt.Errorf("put the backup in place (the current database is at %s): %w", aside, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	s, err := sqlite.Open(ctx, a.db)
	if err != nil {
		return err
	}
	defer s.Close()
	ev, err := registry.NewAuditEvent(a.now(), actor, "", registry.Access{What: "restore", Rows: int(max(0, current.visits-restored.visits))})
	if err == nil {
		err = s.AppendAudit(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("record the restore: %w", err)
	}
	_, err = fmt.Fprintf(a.stdout, "restored %s; the former database is at %s\nthe key store was not touched: days purged since the backup stay unreadable\n", a.db, aside)
	return err
}

// checkCandidate opens the restore candidate (migrating it as serve would)
// and checks that it is sound, that its log verifies and extends cp, and
// that its data matches the log.
func (a *app) checkCandidate(ctx context.Context, path string, cp *audit.Checkpoint) (snapshot, error) {
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return snapshot{}, err
	}
	defer s.Close()
	problems, err := s.QuickCheck(ctx)
	if err != nil {
		return snapshot{}, err
	}
	if len(problems) > 0 {
		return snapshot{}, registry.Errorf(registry.EINVALID, "the file is damaged: %v", problems)
	}
	if _, err := audit.Verify(ctx, s, cp); err != nil {
		return snapshot{}, err
	}
	d, err := audit.VerifyData(ctx, s)
	if err != nil {
		return snapshot{}, err
	}
	if n := len(d.Problems) + d.Omitted; n > 0 {
		return snapshot{}, registry.Errorf(registry.EINVALID, "its data does not match its audit log: %d findings (registry audit verify on the copy names them)", n)
	}
	return snapshotStore(ctx, s)
}

// snapshotOf counts what the database at path holds.
func (a *app) snapshotOf(ctx context.Context, path string) (snapshot, error) {
	if _, err := os.Stat(path); err != nil {
		return snapshot{}, err
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return snapshot{}, err
	}
	defer s.Close()
	return snapshotStore(ctx, s)
}

func snapshotStore(ctx context.Context, s registry.Store) (snapshot, error) {
	var n snapshot
	head, err := s.LastAudit(ctx, "")
	if err != nil && registry.ErrorCode(err) != registry.ENOTFOUND {
		return n, err
	}
	if head != nil {
		n.entries = head.Seq
	}
	n.visits, err = s.CountVisits(ctx, time.Unix(0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	return n, err
}

// copyFile copies src to a new file dst (mode 0600), synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
