package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List and verify the tamper-evident audit log",
		Long: `audit shows and proves the audit log. Every registration batch (a count,
never personal data), token change, trace request, approval, rejection,
export, denied export and purge is an entry, written in the same database
transaction as the action itself. Each entry holds the hash of the one
before it, so a changed, removed or reordered entry breaks the chain.

To notice a rewritten or truncated log, take signed checkpoints regularly
('audit checkpoint') and keep them OFF the server, for example in the
DPO's files. 'audit verify --checkpoint' proves that today's log still
contains, unchanged, everything the checkpoint covered.`,
	}
	cmd.AddCommand(a.auditListCmd(), a.auditVerifyCmd(), a.auditCheckpointCmd(), a.auditKeygenCmd())
	return cmd
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var cpFile, vkeyFile string
	var logOnly bool
	cmd := &cobra.Command{
		Use:   "verify [--checkpoint FILE --verifier-key FILE] [--log-only]",
		Short: "Recompute the hash chain, prove the log extends a checkpoint, and check the data against it",
		Long: `verify recomputes the hash chain of the audit log and, with --checkpoint,
proves that the log still holds everything the checkpoint covered.

Then it checks the database against what the log commits to: every visit
must be one a registration entry committed to (a visit injected, or one
whose site, area, check-in or sealed data was altered, is found), every
visit the log committed to must still be there unless a purge removed its
day, every check-out must be one the log recorded, every trace request's
export mark must match the log (a request reset after its export is found),
and every export must have consumed valid signed approvals. --log-only
skips these checks. The exit status is 1 when anything does not verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cp *audit.Checkpoint
			if cpFile != "" {
				var err error
				if cp, err = readCheckpoint(cpFile, vkeyFile); err != nil {
					return err
				}
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				r, err := audit.Verify(cmd.Context(), s, cp)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "audit log verified: %d entries, head %s\n", r.Size, hex.EncodeToString(r.Head))
				if cp != nil {
					fmt.Fprintf(a.stdout, "it contains, unchanged, the %d entries of checkpoint %s\n", cp.Size, cpFile)
				}
				if logOnly {
					return nil
				}
				d, err := audit.VerifyData(cmd.Context(), s)
				if err != nil {
					return err
				}
				for _, p := range d.Problems {
					fmt.Fprintf(a.stdout, "DATA: %s\n", p)
				}
				if d.Omitted > 0 {
					fmt.Fprintf(a.stdout, "DATA: and %d more findings\n", d.Omitted)
				}
				if n := len(d.Problems) + d.Omitted; n > 0 {
					return registry.Errorf(registry.EINVALID, "the database does not match the audit log: %d findings", n)
				}
				fmt.Fprintf(a.stdout, "data verified: %d visits (the log commits to %d, the rest purged), %d trace requests, %d exports with valid signed approvals\n",
					d.Visits, d.Leaves, d.Requests, d.Exports)
				if d.Unattested > 0 {
					fmt.Fprintf(a.stdout, "note: %d visits were stored before this version committed visits to the log; they cannot be checked and are purged within the retention period\n", d.Unattested)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cpFile, "checkpoint", "", "a signed checkpoint `FILE` from 'audit checkpoint'")
	cmd.Flags().StringVar(&vkeyFile, "verifier-key", "", "`FILE` with the verifier key printed by 'audit keygen'")
	cmd.Flags().BoolVar(&logOnly, "log-only", false, "check the log only, not the data against it")
	settings(cmd.Flags(), "verifier-key")
	return cmd
}

func readCheckpoint(cpFile, vkeyFile string) (*audit.Checkpoint, error) {
	if vkeyFile == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "a checkpoint needs its verifier key"), "pass --verifier-key FILE (printed by 'registry audit keygen')")
	}
	msg, err := os.ReadFile(cpFile)
	if err != nil {
		return nil, err
	}
	vkey, err := os.ReadFile(vkeyFile)
	if err != nil {
		return nil, err
	}
	return audit.Open(msg, strings.TrimSpace(string(vkey)))
}

func (a *app) auditCheckpointCmd() *cobra.Command {
	var skeyFile, origin string
	cmd := &cobra.Command{
		Use:     "checkpoint --signing-key FILE",
		Short:   "Verify the log and print a signed checkpoint to keep off the server",
		Example: `  registry audit checkpoint --signing-key /media/dpo/audit-signer.key > checkpoint-$(date +%F).txt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if skeyFile == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no signing key"), "pass --signing-key FILE (created by 'registry audit keygen')")
			}
			skey, err := os.ReadFile(skeyFile)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				r, err := audit.Verify(cmd.Context(), s, nil)
				if err != nil {
					return err
				}
				msg, err := audit.Sign(audit.NewCheckpoint(origin, r), string(skey))
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(msg)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&skeyFile, "signing-key", "", "`FILE` with the signer key from 'audit keygen'")
	cmd.Flags().StringVar(&origin, "origin", "registry-audit", "name of this log in the checkpoint, for example your city")
	settings(cmd.Flags(), "signing-key", "origin")
	return cmd
}

func (a *app) auditKeygenCmd() *cobra.Command {
	var out, name string
	cmd := &cobra.Command{
		Use:   "keygen --name NAME -o FILE",
		Short: "Create the key that signs audit checkpoints",
		Long: `keygen writes a new ed25519 signer key to FILE (mode 0600) and prints the
verifier key on standard output. Keep the signer key with the DPO, not on
the server; keep the verifier key with the checkpoints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE")
			}
			skey, vkey, err := audit.GenerateSignerKey(name)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(f, skey); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, vkey)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the signer key to this `FILE` (must not exist)")
	cmd.Flags().StringVar(&name, "name", "registry-dpo", "key name, without spaces or '+'")
	return cmd
}
