package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
)

// fileDigest returns the size and hex SHA-256 of the file at path.
func fileDigest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// backuper is a store that copies itself (SQLite).
type backuper interface {
	Backup(ctx context.Context, path string) error
}

func (a *app) backupCmd() *cobra.Command {
	var out, keystore, as string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Write a consistent copy of the SQLite database while serve runs",
		Long: `backup writes a consistent copy of the SQLite database (VACUUM INTO), online,
to a new file of mode 0600. The copy holds only sealed contact data; the
purge's destruction of day keys makes its expired records unreadable. Never
back up the key store: a copy of it would undo that (docs/operations.md: Backups). For
PostgreSQL use pg_dump.

To restore: stop serve and run 'registry restore FILE --checkpoint FILE
--verifier-key FILE' with the latest checkpoint taken before the backup;
it checks the copy first. Registrations made after the backup are lost;
the next purge deletes what expired since.

The audit log records the backup (access, what "backup") with your name
before the copy is taken, so that the copy holds it too. backup prints the
copy's size and SHA-256.`,
		Example: `  registry backup -o /var/backups/registry/registry-$(date +%F).db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE")
			}
			if keystore != "" && within(absPath(filepath.Dir(out)), absPath(keystore)) {
				return withHint(registry.Errorf(registry.EINVALID, "the copy would lie in the key store %s", keystore),
					"write backups where the key store is not: a backup beside the day keys reopens what the purge made unreadable")
			}
			if isPostgres(a.db) {
				return withHint(registry.Errorf(registry.EINVALID, "backup copies SQLite databases"), "for PostgreSQL use pg_dump --format=custom (docs/operations.md: Backups)")
			}
			return a.withActorStore(cmd.Context(), as, func(actor registry.Actor, s registry.Store) error {
				b, ok := s.(backuper)
				if !ok {
					return registry.Errorf(registry.EINVALID, "this store cannot back itself up")
				}
				if _, err := os.Lstat(out); err == nil {
					return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", out)
				}
				// The entry comes first, so that the copy holds the record
				// of its own making (a restored database says when its
				// backup was taken) and a checkpoint taken right after
				// the backup still verifies on the copy.
				if err := a.auditAccess(cmd.Context(), s, actor, "", registry.Access{What: "backup"}); err != nil {
					return err
				}
				if err := b.Backup(cmd.Context(), out); err != nil {
					return err
				}
				size, digest, err := fileDigest(out)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "wrote %s (the database only: never back up the key store)\nsha256 %s, %d bytes\n", out, digest, size)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the copy to this new `FILE`")
	cmd.Flags().StringVar(&keystore, "keystore", "", "the key store `DIR`: never in the copy, and the copy never in it")
	cmd.Flags().StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	settings(cmd.Flags(), "keystore", "as")
	return cmd
}
