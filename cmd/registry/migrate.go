package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema",
		Long: `migrate applies the embedded schema migrations to the database and exits.
It creates a new SQLite file (mode 0600, in a directory of mode 0700) when
there is none; serve does too, every other command refuses a database
that does not exist, so that a mistyped --db never creates an empty one.
Every command migrates an existing database on its own as well; run
migrate on its own to upgrade the schema before you roll out a new
version on several intake nodes. Migrations only go forward.

After an upgrade from a release before approvers were persons, migrate (and
serve) record in the audit log that the old rule (one signature per
change) has ended, so that no change written later under it counts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.openStore(cmd.Context(), createDB)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.CloseApproverRule(cmd.Context()); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "database %s is up to date\n", describeDB(a.db))
			return err
		},
	}
}
