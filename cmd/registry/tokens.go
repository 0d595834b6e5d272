package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
)

func (a *app) tokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke API tokens",
		Long: `tokens manages the bearer tokens of the HTTP API. A token has one role:

` + roleHelp + `

A token is shown once, when it is created, and stored only as a hash. It
works until it is revoked, or until it expires when it was created with
--expires. Creating and revoking tokens is recorded in the audit log.`,
	}
	var as string
	cmd.PersistentFlags().StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	settings(cmd.PersistentFlags(), "as")
	cmd.AddCommand(a.tokensCreateCmd(&as), a.tokensListCmd(), a.tokensRevokeCmd(&as))
	return cmd
}

// roleHelp describes the token roles, for the help of tokens and create.
const roleHelp = `  intake         the reception desk, a kiosk or desk software: registers
                 visitors and checks them out (optionally for one --site)
  health-office  the health office (--office): files trace requests,
                 follows them, downloads approved exports
  scheduler      the city's booking or calendar system: makes, lists and
                 cancels appointments (optionally for one --site)
  dpo            the data-protection officer: reads pending requests and
                 posts signed approvals from the DPO's own computer`

func (a *app) tokensCreateCmd(as *string) *cobra.Command {
	var role, site, office, label, out string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "create --role intake|health-office|scheduler|dpo [--site S] [--office O] [--label L] [--expires 90d] [-o FILE]",
		Short: "Create a token and print it, once, on standard output or into a new file of mode 0600",
		Long: `create makes an API token of one role:

` + roleHelp + `

Intake and scheduler tokens may be bound to one --site. Health-office
tokens need --office, a short code of the office (for example
ga-musterstadt): trace requests belong to the office, so that when a token
leaks you revoke it, create a new one with the same --office, and the
office keeps seeing its requests. With --expires the token stops working
after that long (for example 90d for a temporary deputy), as if revoked.`,
		Example: `  registry tokens create --role intake --site rathaus --label "Pforte Rathaus" -o pforte.token
  registry tokens create --role health-office --office ga-musterstadt --label "Gesundheitsamt Musterstadt" -o ga.token
  registry tokens create --role scheduler --site rathaus --label "Terminbuchung" --expires 365d -o booking.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := registry.ParseRole(role)
			if err != nil {
				return err
			}
			if site != "" && (r != registry.RoleIntake && r != registry.RoleScheduler || !registry.ValidSite(site)) {
				return withHint(registry.Errorf(registry.EINVALID, "--site %q is not allowed here", site), "only intake and scheduler tokens take a site, made of lowercase letters, digits and '-'")
			}
			switch {
			case r == registry.RoleHealthOffice && office == "":
				return withHint(registry.Errorf(registry.EINVALID, "a health-office token needs --office"), "pass --office CODE, for example --office ga-musterstadt: the office's requests belong to it")
			case office != "" && (r != registry.RoleHealthOffice || !registry.ValidSite(office)):
				return withHint(registry.Errorf(registry.EINVALID, "--office %q is not allowed here", office), "only health-office tokens take an office, made of lowercase letters, digits and '-'")
			}
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			if out != "" {
				if _, err := os.Stat(out); err == nil {
					return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", out)
				}
			}
			if cmd.Flags().Changed("expires") && (expires < time.Hour || expires > 5*366*24*time.Hour) {
				return withHint(registry.Errorf(registry.EINVALID, "--expires must lie between 1 hour and 5 years"), "for example --expires 90d")
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				secret, t := registry.NewToken(r, site, label, a.now())
				t.Office = office
				if expires > 0 {
					exp := a.now().Add(expires)
					t.ExpiresAt = &exp
				}
				if err := s.CreateToken(cmd.Context(), actor, t); err != nil {
					return err
				}
				if out != "" {
					if err := writeFileAtomic(out, func(w io.Writer) error { _, err := fmt.Fprintln(w, secret); return err }); err != nil {
						return fmt.Errorf("write token file (the token %s exists; revoke it and create another): %w", t.ID, err)
					}
					fmt.Fprintf(a.stderr, "registry: created %s token %s in %s (mode 0600); it is shown only there\n", t.Role, t.ID, out)
					return nil
				}
				fmt.Fprintf(a.stderr, "registry: created %s token %s; it is shown only now\n", t.Role, t.ID)
				_, err := fmt.Fprintln(a.stdout, secret)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "intake, health-office, scheduler or dpo")
	cmd.Flags().StringVar(&site, "site", "", "intake and scheduler tokens only: the one site the token works for")
	cmd.Flags().Var(days{&expires}, "expires", "the token stops working after this long, for example 90d (default: never; revoke it instead)")
	cmd.Flags().StringVar(&office, "office", "", "health-office tokens: the office's code; its trace requests belong to the office")
	cmd.Flags().StringVar(&label, "label", "", "a note for yourself, for example the desk or office")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the token to this new `FILE` (mode 0600) instead of standard output")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func (a *app) tokensListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				ts, err := s.Tokens(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, tokenViews(ts))
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tROLE\tSITE\tOFFICE\tLABEL\tCREATED\tEXPIRES\tSTATE")
				now := a.now()
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, dash(t.Site), dash(t.Office), dash(escaped(t.Label)),
						local(t.CreatedAt), localp(t.ExpiresAt), tokenState(t, now))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type tokenView struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Site    string `json:"site,omitempty"`
	Office  string `json:"office,omitempty"`
	Label   string `json:"label,omitempty"`
	Created string `json:"created"`
	Expires string `json:"expires,omitempty"`
	Revoked string `json:"revoked,omitempty"`
}

func tokenViews(ts []*registry.Token) []tokenView {
	vs := make([]tokenView, 0, len(ts))
	for _, t := range ts {
		v := tokenView{ID: t.ID, Role: string(t.Role), Site: t.Site, Office: t.Office, Label: t.Label, Created: t.CreatedAt.UTC().Format(time.RFC3339)}
		if t.RevokedAt != nil {
			v.Revoked = t.RevokedAt.UTC().Format(time.RFC3339)
		}
		if t.ExpiresAt != nil {
			v.Expires = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		vs = append(vs, v)
	}
	return vs
}

// tokenState says whether a token works at now.
func tokenState(t *registry.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked " + local(*t.RevokedAt)
	case !t.Usable(now):
		return "expired"
	}
	return "active"
}

func (a *app) tokensRevokeCmd(as *string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, s registry.Store) error {
				if err := s.RevokeToken(cmd.Context(), actor, args[0], a.now()); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "revoked token %s\n", args[0])
				return err
			})
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
