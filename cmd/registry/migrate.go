package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema",
		Long: `migrate applies the embedded schema migrations to the database and exits.
serve and every other command migrate on their own as well; run migrate
on its own to upgrade the schema before you roll out a new version on
several intake nodes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(registry.Store) error {
				_, err := fmt.Fprintf(a.stdout, "database %s is up to date\n", describeDB(a.db))
				return err
			})
		},
	}
}
