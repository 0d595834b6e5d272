package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// readSigner opens an approver's signer: a registry key file (asking for
// its passphrase when protected), "ssh-agent" or "ssh-agent:KEY-ID" (a key
// held by ssh-agent), or the .pub file of a key the agent holds.
func readSigner(spec string) (crypto.Signer, error) {
	switch {
	case spec == "":
		return nil, withHint(registry.Errorf(registry.EINVALID, "no signing key given"),
			"pass --key FILE (your approver key, 'registry approvers keygen'), or --key ssh-agent for a key in ssh-agent")
	case spec == "ssh-agent":
		return crypto.OpenAgentSigner("")
	case strings.HasPrefix(spec, "ssh-agent:"):
		return crypto.OpenAgentSigner(strings.TrimPrefix(spec, "ssh-agent:"))
	}
	if b, err := os.ReadFile(spec); err == nil && len(b) < 4096 {
		if k, err := registry.ParsePublicKey(string(b)); err == nil && k.Kind != registry.KeyRegistry {
			return crypto.OpenAgentSigner(k.String())
		}
	}
	return crypto.ReadSigningKeyFile(spec, crypto.TerminalPassphrase())
}

// endorse signs c with each signer of specs.
func endorse(c *registry.ApproverChange, specs []string) error {
	for _, spec := range specs {
		sg, err := readSigner(spec)
		if err != nil {
			return err
		}
		sig, err := sg.SignStatement(registry.PurposeApproverChange, c.Statement())
		if err != nil {
			return err
		}
		c.Endorsements = append(c.Endorsements, registry.Endorsement{Key: sg.PublicKey().ID(), Signature: sig})
	}
	return nil
}

func (a *app) approversAddCmd(as *string, op string) *cobra.Command {
	var pub string
	var keys []string
	use, short := "add NAME --public-key KEY [--key YOUR-KEY]…", "Register a new approver (person) with a first key"
	example := `  registry approvers add "Anna Schmidt (DSB)" --public-key registry-ed25519:…
  registry approvers add "Bert Meier (stv. DSB)" --public-key "$(cat bert.pub)" --key /media/dsb/anna.registry-key
  registry approvers add "Carla Weiß" --public-key registry-ed25519:… --key /media/dsb/anna.registry-key --key ssh-agent`
	if op == registry.ChangeAddKey {
		use, short = "add-key PERSON --public-key KEY [--key YOUR-KEY]…", "Register another key of an approver (a person's name or id)"
		example = `  registry approvers add-key "Anna Schmidt (DSB)" --public-key "$(cat ~/.ssh/id_ed25519_sk.pub)" --key bert.key --key carla.key`
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, person := args[0], ""
			if op == registry.ChangeAddKey {
				name, person = "", args[0]
			}
			return a.changeApprovers(cmd.Context(), *as, keys, func(set *registry.ApproverSet, actor registry.Actor) (*registry.ApproverChange, error) {
				return registry.NewApproverChange(set, op, name, person, pub, actor, a.now())
			})
		},
	}
	cmd.Flags().StringVar(&pub, "public-key", "", "the approver's public key: registry-ed25519:… ('approvers keygen' prints it) or an OpenSSH ssh-ed25519 / sk-ssh-ed25519@openssh.com key")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "endorse with this key (repeat for a second person): a key file, ssh-agent, ssh-agent:KEY-ID or a .pub file of an agent's key")
	return cmd
}

func (a *app) approversRemoveCmd(as *string) *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "remove KEY-ID [--key YOUR-KEY]…",
		Short: "Remove an approver's key (endorsed by other persons; the last one not while requests are open)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.changeApprovers(cmd.Context(), *as, keys, func(set *registry.ApproverSet, actor registry.Actor) (*registry.ApproverChange, error) {
				return registry.NewApproverChange(set, registry.ChangeRemoveKey, "", "", args[0], actor, a.now())
			})
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "endorse with this key (repeat for a second person)")
	return cmd
}

// changeApprovers makes a change of the approver set, endorses it with
// the keys given and proposes it; it reports whether it was applied or
// who must still endorse it.
func (a *app) changeApprovers(ctx context.Context, as string, keys []string, change func(*registry.ApproverSet, registry.Actor) (*registry.ApproverChange, error)) error {
	return a.withActorStore(ctx, as, func(actor registry.Actor, s registry.Store) error {
		set, err := s.Approvers(ctx)
		if err != nil {
			return err
		}
		c, err := change(set, actor)
		if err != nil {
			return err
		}
		if err := endorse(c, keys); err != nil {
			return err
		}
		applied, err := s.ProposeApproverChange(ctx, actor, c)
		if registry.ErrorCode(err) == registry.EFORBIDDEN && len(keys) == 0 {
			return withHint(err, "pass --key FILE with the key of an approver who may endorse it")
		} else if err != nil {
			return err
		}
		return a.reportChange(ctx, s, c, applied)
	})
}

// reportChange says what a proposed or endorsed change did.
func (a *app) reportChange(ctx context.Context, s registry.Store, c *registry.ApproverChange, applied bool) error {
	what := describeChange(c)
	if applied {
		_, err := fmt.Fprintf(a.stdout, "%s: done\ngive the health office a new trust file: registry trust export -o trust.txt\n", what)
		return err
	}
	set, err := s.Approvers(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s: proposed as change %s, waiting for %s\neach of them runs: registry approvers endorse %s --key THEIR-KEY\n",
		what, c.ID, set.Remaining(c), c.ID)
	return err
}

// describeChange names a change in words.
func describeChange(c *registry.ApproverChange) string {
	switch c.Op {
	case registry.ChangeAddPerson:
		return fmt.Sprintf("add approver %s (key %s)", escaped(registry.ShowScripts(c.Name)), c.KeyID)
	case registry.ChangeAddKey:
		return fmt.Sprintf("add key %s to person %s", c.KeyID, c.Person)
	}
	return fmt.Sprintf("remove key %s of person %s", c.KeyID, c.Person)
}

func (a *app) approversEndorseCmd(as *string) *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "endorse CHANGE-ID --key YOUR-KEY",
		Short: "Endorse a pending change of the approvers with your key",
		Long: `endorse shows a pending change of the approver set ('approvers pending') and
signs it with your key. Once enough persons endorsed it, it is applied.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 {
				return withHint(registry.Errorf(registry.EINVALID, "no signing key given"), "pass --key FILE, or --key ssh-agent")
			}
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, s registry.Store) error {
				pending, err := s.ApproverChanges(cmd.Context(), a.now())
				if err != nil {
					return err
				}
				var c *registry.ApproverChange
				for _, p := range pending {
					if p.ID == args[0] {
						c = p
					}
				}
				if c == nil {
					return withHint(registry.Errorf(registry.ENOTFOUND, "there is no pending approver change %s", registry.SafeKeyID(args[0][:min(16, len(args[0]))])),
						"see 'registry approvers pending'; a change waits %d days", int(registry.ProposalValidity.Hours()/24))
				}
				fmt.Fprintf(a.stderr, "registry: endorsing: %s\n", describeChange(c))
				var applied bool
				for _, spec := range keys {
					e := &registry.ApproverChange{}
					*e = *c
					e.Endorsements = nil
					if err := endorse(e, []string{spec}); err != nil {
						return err
					}
					if c, applied, err = s.EndorseApproverChange(cmd.Context(), actor, c.ID, e.Endorsements[0], a.now()); err != nil {
						return err
					}
				}
				return a.reportChange(cmd.Context(), s, c, applied)
			})
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "your key: a key file, ssh-agent, ssh-agent:KEY-ID or a .pub file of an agent's key")
	return cmd
}

func (a *app) approversPendingCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pending",
		Short: "List the changes of the approvers that wait for endorsements",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				pending, err := s.ApproverChanges(cmd.Context(), a.now())
				if err != nil {
					return err
				}
				set, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "CHANGE\tWHAT\tPROPOSED\tEXPIRES\tWAITING FOR")
				for _, c := range pending {
					waiting := set.Remaining(c)
					if c.Serial != set.Serial {
						waiting = "stale: the approvers changed since; propose it again"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.ID, describeChange(c), local(c.CreatedAt), local(c.ExpiresAt), dash(waiting))
				}
				if len(pending) == 0 {
					fmt.Fprintln(w, "(no pending changes)")
				}
				return w.Flush()
			})
		},
	}
}

func (a *app) approversListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the approvers by person, with their keys, removed ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				set, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, set.Keys)
				}
				return printApprovers(a.stdout, set)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printApprovers(out io.Writer, set *registry.ApproverSet) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PERSON\tNAME\tKEY ID\tKIND\tADDED\tSTATE")
	for _, ap := range set.Keys {
		state := "active"
		kind := "?"
		if k := ap.Key(); k != nil {
			kind = k.Kind
		}
		switch {
		case ap.Unproven:
			state = "UNPROVEN (no approver change in the audit log registered it: the table was edited; it counts for nothing)"
		case ap.RemovedAt != nil:
			state = "removed " + local(*ap.RemovedAt)
		}
		name := ap.Name
		if name == "" {
			name = "(erased)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", ap.Person, escaped(registry.ShowScripts(name)), ap.ID, kind, local(ap.AddedAt), state)
	}
	for _, p := range set.Problems {
		fmt.Fprintf(w, "!\t%s\t\t\t\t\n", p)
	}
	return w.Flush()
}
