package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

func (a *app) usersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Staff accounts of the reception desk's web pages",
		Long: `users manages the accounts staff sign in with at /desk. An account is one
person (never share one), has a role and works for one or more sites:

  desk       the Pforte: registers visitors and their companions, types in
             paper forms, sees who is in the building (short codes, areas
             and times, never names), checks visitors out, sees the day's
             appointments and books new ones. It never sees stored contact
             data.
  scheduler  the service line: books appointments and sees the day's list,
             nothing else.
  host       a staff member or department visitors come to (--host, one of
             the site's hosts): sees its own appointments of the day and
             when its visitor arrived (never a name), and books its own
             appointments.

'users add' and 'users reset-password' print a one-time password (or write
it to a new file of mode 0600 with -o); the person chooses their own at the
first sign-in. Passwords are stored as argon2id hashes. Five failed
sign-ins in a row lock an account for 15 minutes. Disabling an account or
setting a new password ends its sessions at once. Every change is recorded
in the audit log, which names the account only by a commitment that is
erased with the other staff names after --staff-retention.`,
	}
	var as string
	cmd.PersistentFlags().StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	settings(cmd.PersistentFlags(), "as")
	cmd.AddCommand(a.usersAddCmd(&as), a.usersListCmd(), a.usersSetCmd(&as), a.usersResetCmd(&as),
		a.usersDisableCmd(&as, true), a.usersDisableCmd(&as, false), a.usersRemoveCmd(&as))
	return cmd
}

func (a *app) usersAddCmd(as *string) *cobra.Command {
	var name, role, out, host string
	var sites []string
	cmd := &cobra.Command{
		Use:   "add LOGIN --name NAME --role desk|scheduler|host|dpo [--host HOST] [--site CODE[,CODE…]] [-o FILE]",
		Short: "Create an account and print its one-time password",
		Example: `  registry users add mmueller --name "Maria Müller" --role desk --site rathaus -o mmueller.password
  registry users add pforte2 --name "Jan Schmidt" --role desk --site rathaus,bauamt
  registry users add bauamt --name "Bauamt, Vorzimmer" --role host --host Bauamt --site rathaus
  registry users add dsb --name "Dana Schmidt (DSB)" --role dpo -o dsb.password`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			r, err := registry.ParseUserRole(role)
			if err != nil {
				return err
			}
			switch {
			case r == registry.UserDPO && len(sites) > 0:
				return withHint(registry.Errorf(registry.EINVALID, "a DPO account works for no site"), "leave out --site: the DPO's pages at /dpo/ cover the whole registry")
			case r != registry.UserDPO && len(sites) == 0:
				return withHint(registry.Errorf(registry.EINVALID, "--site is required"), "name the sites the account works for: --site rathaus[,bauamt]")
			}
			if err := checkNewFile(out); err != nil {
				return err
			}
			pw := registry.NewPassword()
			u := &registry.User{Login: args[0], Name: name, Role: r, Sites: sites, Host: host, PasswordHash: crypto.HashPassword(pw), MustChange: true}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				if err := a.checkSites(cmd, s, sites); err != nil {
					return err
				}
				if host != "" {
					for _, code := range sites {
						if site, err := s.Site(cmd.Context(), code); err == nil && len(site.Hosts) > 0 && !site.HasHost(host) {
							return withHint(registry.Errorf(registry.EINVALID, "%q is not one of the hosts of site %s", host, code), "registry sites set %s --host … lists them", code)
						}
					}
				}
				if err := s.CreateUser(cmd.Context(), actor, u); err != nil {
					return withHint(err, "a login is 2 to 64 of a-z, 0-9, '.', '-' and '_', starting with a letter")
				}
				return a.printPassword(out, u.Login, pw)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the person's name")
	f.StringVar(&role, "role", "desk", "desk (the Pforte), scheduler (the service line: books appointments), host (its own appointments) or dpo (the data-protection officer's pages at /dpo/)")
	f.StringVar(&host, "host", "", "host accounts: the host their appointments name")
	f.StringSliceVar(&sites, "site", nil, "the site codes the account works for")
	f.StringVarP(&out, "output", "o", "", "write the one-time password to this new `FILE` (mode 0600) instead of standard output")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// checkSites refuses site codes that are not configured.
func (a *app) checkSites(cmd *cobra.Command, s registry.Store, sites []string) error {
	for _, code := range sites {
		if _, err := s.Site(cmd.Context(), code); registry.ErrorCode(err) == registry.ENOTFOUND {
			return withHint(registry.Errorf(registry.EINVALID, "--site %s: there is no such site", code), "'registry sites list' shows the configured sites; 'registry sites add' adds one")
		} else if err != nil {
			return err
		}
	}
	return nil
}

// checkNewFile refuses an output file that exists.
func checkNewFile(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", path)
	}
	return nil
}

// printPassword shows a one-time password once: on standard output, or
// in a new file of mode 0600.
func (a *app) printPassword(out, login, pw string) error {
	if out != "" {
		if err := writeFileAtomic(out, func(w io.Writer) error { _, err := fmt.Fprintln(w, pw); return err }); err != nil {
			return fmt.Errorf("write password file (reset the password of %s and try again): %w", login, err)
		}
		fmt.Fprintf(a.stderr, "registry: one-time password of %s in %s (mode 0600); it must be changed at the first sign-in\n", login, out)
		return nil
	}
	fmt.Fprintf(a.stderr, "registry: one-time password of %s, shown only now; it must be changed at the first sign-in\n", login)
	_, err := fmt.Fprintln(a.stdout, pw)
	return err
}

func (a *app) usersListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the accounts (never their passwords)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				us, err := s.Users(cmd.Context())
				if err != nil {
					return err
				}
				views := make([]userView, len(us))
				for i, u := range us {
					views[i] = newUserView(u, a.now())
				}
				if asJSON {
					return writeJSON(a.stdout, views)
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "LOGIN\tNAME\tROLE\tSITES\tSTATE\tCREATED")
				for _, v := range views {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Login, v.Name, v.Role, strings.Join(v.Sites, ","), v.State, v.Created)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type userView struct {
	Login   string   `json:"login"`
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Sites   []string `json:"sites"`
	State   string   `json:"state"`
	Created string   `json:"created"`
}

func newUserView(u *registry.User, now time.Time) userView {
	state := "active"
	switch {
	case u.DisabledAt != nil:
		state = "disabled"
	case u.Locked(now):
		state = "locked until " + u.LockedUntil.Format(time.RFC3339)
	case u.MustChange:
		state = "one-time password"
	}
	return userView{Login: u.Login, Name: u.Name, Role: string(u.Role), Sites: u.Sites, State: state, Created: rfc3339(u.CreatedAt)}
}

func (a *app) usersSetCmd(as *string) *cobra.Command {
	var name, role string
	var sites []string
	cmd := &cobra.Command{
		Use:     "set LOGIN [--name NAME] [--role desk|scheduler] [--site CODE[,CODE…]]",
		Short:   "Change an account's name, role or sites",
		Example: `  registry users set mmueller --site rathaus,bauamt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, s registry.Store) error {
				u, err := s.User(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				var what []string
				if cmd.Flags().Changed("name") {
					u.Name, what = name, append(what, "name")
				}
				if cmd.Flags().Changed("role") {
					if u.Role, err = registry.ParseUserRole(role); err != nil {
						return err
					}
					what = append(what, "role")
				}
				if cmd.Flags().Changed("site") {
					if err := a.checkSites(cmd, s, sites); err != nil {
						return err
					}
					u.Sites, what = sites, append(what, "sites")
				}
				if len(what) == 0 {
					return withHint(registry.Errorf(registry.EINVALID, "nothing to change"), "give --name, --role or --site")
				}
				if err := s.UpdateUser(cmd.Context(), actor, u, strings.Join(what, ",")); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "changed %s of %s\n", strings.Join(what, ", "), u.Login)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the person's name")
	cmd.Flags().StringVar(&role, "role", "", "desk or scheduler (a host account is made with 'users add --role host --host …')")
	cmd.Flags().StringSliceVar(&sites, "site", nil, "the site codes the account works for")
	return cmd
}

func (a *app) usersResetCmd(as *string) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "reset-password LOGIN [-o FILE]",
		Short: "Give an account a new one-time password, unlock it and end its sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			if err := checkNewFile(out); err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				u, err := s.User(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				pw := registry.NewPassword()
				u.PasswordHash, u.MustChange, u.FailedSignIns, u.LockedUntil = crypto.HashPassword(pw), true, 0, nil
				if err := s.UpdateUser(cmd.Context(), actor, u, "password"); err != nil {
					return err
				}
				return a.printPassword(out, u.Login, pw)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the one-time password to this new `FILE` (mode 0600) instead of standard output")
	return cmd
}

func (a *app) usersDisableCmd(as *string, disable bool) *cobra.Command {
	use, short, what := "disable LOGIN", "Disable an account at once and end its sessions", "disabled"
	if !disable {
		use, short, what = "enable LOGIN", "Enable a disabled account again", "enabled"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, s registry.Store) error {
				u, err := s.User(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				u.DisabledAt = nil
				if disable {
					now := a.now().UTC()
					u.DisabledAt = &now
				}
				if err := s.UpdateUser(cmd.Context(), actor, u, what); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s %s\n", what, u.Login)
				return nil
			})
		},
	}
}

func (a *app) usersRemoveCmd(as *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove LOGIN",
		Short: "Delete an account and its sessions (the audit log keeps only its commitment)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, s registry.Store) error {
				if err := s.RemoveUser(cmd.Context(), actor, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "removed %s\n", args[0])
				return nil
			})
		},
	}
}
