package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

func (a *app) keysCmd() *cobra.Command {
	var keystore string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Show the epoch keys: which days have keys, which were destroyed",
		Long: `keys lists the per-day epoch keys: their kind (hybrid: post-quantum,
ML-KEM-768 + X25519; x25519: classic), the public half in the database
(shortened) and whether the private half is still in the key store. A day whose private
key was destroyed can no longer be read from any copy of the database,
backups included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := crypto.OpenKeyStore(keystore)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				eks, err := s.EpochKeys(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "DAY\tKIND\tRECIPIENT\tPRIVATE KEY\tDESTROYED")
				for _, k := range eks {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Day, keyKind(k.Recipient), shortRecipient(k.Recipient), privateKeyState(ks, k.Day), destroyedAt(k))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&keystore, "keystore", "", "epoch key store `DIR`")
	settings(cmd.Flags(), "keystore")
	return cmd
}

// keyKind names the kind of a stored public half.
func keyKind(recipient string) string {
	if kind, ok := crypto.KindOf(recipient); ok {
		return kind.String()
	}
	return "unknown"
}

// shortRecipient shortens a recipient for a table: a hybrid one is ~1,960
// characters long.
func shortRecipient(r string) string {
	if len(r) <= 62 {
		return r
	}
	return r[:20] + "…" + r[len(r)-12:]
}

func privateKeyState(ks *crypto.KeyStore, day registry.Day) string {
	_, err := ks.Identity(day)
	switch {
	case err == nil:
		return "present"
	case registry.ErrorCode(err) == registry.ENOTFOUND:
		return "absent"
	}
	return "unreadable"
}

func destroyedAt(k *registry.EpochKey) string {
	if k.DestroyedAt == nil {
		return "-"
	}
	return k.DestroyedAt.UTC().Format(time.RFC3339)
}
