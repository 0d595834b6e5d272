package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
)

// backuper is a store that copies itself (SQLite).
type backuper interface {
	Backup(ctx context.Context, path string) error
}

func (a *app) backupCmd() *cobra.Command {
	var out, keystore string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Write a consistent copy of the SQLite database while serve runs",
		Long: `backup writes a consistent copy of the SQLite database (VACUUM INTO), online,
to a new file of mode 0600. The copy holds only sealed contact data; the
purge's destruction of day keys makes its expired records unreadable. Never
back up the key store: a copy of it would undo that (README: Backups). For
PostgreSQL use pg_dump.

To restore: stop serve, put the copy in place of the database file, start
serve, and run 'registry audit verify --checkpoint FILE' with the latest
checkpoint taken before the backup. Registrations made after the backup
are lost; the next purge deletes what expired since.`,
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
				return withHint(registry.Errorf(registry.EINVALID, "backup copies SQLite databases"), "for PostgreSQL use pg_dump --format=custom (README: Backups)")
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				b, ok := s.(backuper)
				if !ok {
					return registry.Errorf(registry.EINVALID, "this store cannot back itself up")
				}
				if err := b.Backup(cmd.Context(), out); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "wrote %s (the database only: never back up the key store)\n", out)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the copy to this new `FILE`")
	cmd.Flags().StringVar(&keystore, "keystore", "", "the key store `DIR`: never in the copy, and the copy never in it")
	settings(cmd.Flags(), "keystore")
	return cmd
}
