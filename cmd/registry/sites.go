package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cityhall/registry/registry"
)

func (a *app) sitesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sites",
		Short: "Configure the sites (buildings) visitors are registered for",
		Long: `sites configures the buildings whose visitors are registered. A site has a
code (as in the URL of its check-in page, lowercase letters, digits and
'-'), a display name that every page, poster and export shows, an address,
its areas (rooms or departments; the desk and the form then offer exactly
these), a capacity for the whole site and optionally per area, opening
hours (visits still open at closing time are checked out automatically
then), whether visitors may check in on their own phones, and the texts
of the privacy notice: the controller and the data-protection officer's
contact (Art. 13 GDPR).

A registration for a site that is not configured is refused. Every change
is recorded in the audit log; running servers pick it up within seconds.`,
	}
	var as string
	cmd.PersistentFlags().StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	settings(cmd.PersistentFlags(), "as")
	cmd.AddCommand(a.sitesAddCmd(&as), a.sitesSetCmd(&as), a.sitesListCmd(), a.sitesShowCmd(), a.sitesRemoveCmd(&as))
	return cmd
}

// siteFlags are the flags that describe a site.
type siteFlags struct {
	name, address, opens, closes, controller, dpo string
	legalBasis                                    string
	areas, hosts, notices                         []string
	capacity                                      int
	selfCheckin, fullNotice, byAppointment        bool
}

func (f *siteFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "display name, for example \"Rathaus Musterstadt\"")
	fs.StringVar(&f.address, "address", "", "postal address, shown on the poster")
	fs.StringArrayVar(&f.areas, "area", nil, "an area (room or department), repeatable; NAME=N gives it a capacity of N")
	fs.IntVar(&f.capacity, "capacity", 0, "most people in the building at once (0: no limit)")
	fs.StringVar(&f.opens, "opens", "", "opening time, for example 08:00 (German time)")
	fs.StringVar(&f.closes, "closes", "", "closing time, for example 18:00: visits still open then are checked out automatically")
	fs.BoolVar(&f.selfCheckin, "self-checkin", false, "visitors may check in on their own phones at /checkin/CODE")
	fs.BoolVar(&f.fullNotice, "full-notice", false, "the public form asks visitors to wait at the desk while the site is at capacity")
	fs.BoolVar(&f.byAppointment, "by-appointment", false, "visitors only with an appointment of the day; the desk admits a walk-in with a reason")
	fs.StringArrayVar(&f.hosts, "host", nil, "a staff member or department appointments are made with, repeatable (--host replaces all)")
	fs.StringVar(&f.controller, "controller", "", "privacy notice: the controller, for example \"Stadt Musterstadt, Der Bürgermeister, Marktplatz 1\"")
	fs.StringVar(&f.dpo, "dpo-contact", "", "privacy notice: the data-protection officer's contact")
	fs.StringVar(&f.legalBasis, "legal-basis", "", "privacy notice: the legal basis, for example \"Art. 6 Abs. 1 lit. e DSGVO i.V.m. der Hausordnung\"")
	fs.StringArrayVar(&f.notices, "notice", nil, "privacy notice in the city hall's own words: LANG=TEXT (de, en, tr, ar, uk, ru, pl), repeatable; LANG= removes one")
}

// apply sets the fields of the flags given on the command line (all of
// them for a new site).
func (f *siteFlags) apply(fs *pflag.FlagSet, s *registry.Site) error {
	set := func(name string, fn func()) {
		if fs.Changed(name) {
			fn()
		}
	}
	set("name", func() { s.Name = f.name })
	set("address", func() { s.Address = f.address })
	set("capacity", func() { s.Capacity = f.capacity })
	set("opens", func() { s.Opens = f.opens })
	set("closes", func() { s.Closes = f.closes })
	set("self-checkin", func() { s.SelfCheckin = f.selfCheckin })
	set("full-notice", func() { s.FullNotice = f.fullNotice })
	set("by-appointment", func() { s.RequiresAppointment = f.byAppointment })
	set("host", func() { s.Hosts = f.hosts })
	set("controller", func() { s.Controller = f.controller })
	set("dpo-contact", func() { s.DPOContact = f.dpo })
	set("legal-basis", func() { s.LegalBasis = f.legalBasis })
	for _, n := range f.notices {
		lang, text, ok := strings.Cut(n, "=")
		if !ok {
			return withHint(registry.Errorf(registry.EINVALID, "--notice %q is not LANG=TEXT", n), "for example --notice \"de=Datenschutz: …\" --notice \"tr=Veri koruma: …\"")
		}
		if s.Notices == nil {
			s.Notices = map[string]string{}
		}
		if text = strings.TrimSpace(text); text == "" {
			delete(s.Notices, strings.TrimSpace(lang))
		} else {
			s.Notices[strings.TrimSpace(lang)] = text
		}
	}
	if fs.Changed("area") {
		s.Areas = nil
		for _, a := range f.areas {
			area, err := parseArea(a)
			if err != nil {
				return err
			}
			if area.Name != "" {
				s.Areas = append(s.Areas, area)
			}
		}
	}
	return nil
}

// parseArea parses NAME or NAME=CAPACITY.
func parseArea(s string) (registry.Area, error) {
	if i := strings.LastIndexByte(s, '='); i >= 0 {
		n, err := strconv.Atoi(strings.TrimSpace(s[i+1:]))
		if err != nil || n < 0 {
			return registry.Area{}, withHint(registry.Errorf(registry.EINVALID, "--area %q: the capacity after '=' is not a number", s), "for example --area \"Bürgerbüro=8\" or --area Standesamt")
		}
		return registry.Area{Name: strings.TrimSpace(s[:i]), Capacity: n}, nil
	}
	return registry.Area{Name: strings.TrimSpace(s)}, nil
}

func (a *app) sitesAddCmd(as *string) *cobra.Command {
	var f siteFlags
	cmd := &cobra.Command{
		Use:   "add CODE --name NAME [flags]",
		Short: "Configure a new site",
		Example: `  registry sites add rathaus --name "Rathaus Musterstadt" --address "Marktplatz 1, 12345 Musterstadt" \
    --area "Bürgerbüro=8" --area Standesamt --capacity 40 --opens 08:00 --closes 18:00 \
    --self-checkin --controller "Stadt Musterstadt, Der Bürgermeister, Marktplatz 1" \
    --dpo-contact "datenschutz@musterstadt.de, 01234 5678"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			s := &registry.Site{Code: args[0]}
			if err := f.apply(cmd.Flags(), s); err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(st registry.Store) error {
				if err := st.PutSite(cmd.Context(), actor, s, true); registry.ErrorCode(err) == registry.ECONFLICT {
					return withHint(err, "'registry sites set' changes an existing site")
				} else if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "configured site %s (%s)\n", s.Code, s.Name)
				return nil
			})
		},
	}
	f.register(cmd.Flags())
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func (a *app) sitesSetCmd(as *string) *cobra.Command {
	var f siteFlags
	cmd := &cobra.Command{
		Use:   "set CODE [flags]",
		Short: "Change a site: only the flags given change (--area replaces all areas)",
		Example: `  registry sites set rathaus --closes 16:00
  registry sites set rathaus --self-checkin=false
  registry sites set rathaus --area "Bürgerbüro=8" --area Standesamt --area Bauamt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, st registry.Store) error {
				s, err := st.Site(cmd.Context(), args[0])
				if err != nil {
					return withHint(err, "'registry sites list' shows the configured sites")
				}
				if err := f.apply(cmd.Flags(), s); err != nil {
					return err
				}
				if err := st.PutSite(cmd.Context(), actor, s, false); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "changed site %s\n", s.Code)
				return nil
			})
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func (a *app) sitesListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the sites",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(st registry.Store) error {
				sites, err := st.Sites(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, sites)
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "CODE\tNAME\tAREAS\tCAPACITY\tHOURS\tSELF CHECK-IN")
				for _, s := range sites {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", s.Code, s.Name, len(s.Areas), capacity(s.Capacity), hours(s), yesNo(s.SelfCheckin))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) sitesShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show CODE",
		Short: "Show a site's configuration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(st registry.Store) error {
				s, err := st.Site(cmd.Context(), args[0])
				if err != nil {
					return withHint(err, "'registry sites list' shows the configured sites")
				}
				if asJSON {
					return writeJSON(a.stdout, s)
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "code\t%s\nname\t%s\naddress\t%s\ncapacity\t%s\nhours\t%s\nself check-in\t%s\nfull notice\t%s\ncontroller\t%s\ndata-protection officer\t%s\n",
					s.Code, s.Name, dash(s.Address), capacity(s.Capacity), hours(s), yesNo(s.SelfCheckin), yesNo(s.FullNotice), dash(s.Controller), dash(s.DPOContact))
				fmt.Fprintf(w, "by appointment only\t%s\n", yesNo(s.RequiresAppointment))
				fmt.Fprintf(w, "legal basis\t%s\n", dash(s.LegalBasis))
				for _, lang := range registry.VisitorLanguages {
					if n := s.Notices[lang]; n != "" {
						fmt.Fprintf(w, "privacy notice (%s)\t%s\n", lang, n)
					}
				}
				for _, ar := range s.Areas {
					fmt.Fprintf(w, "area\t%s (capacity %s)\n", ar.Name, capacity(ar.Capacity))
				}
				for _, h := range s.Hosts {
					fmt.Fprintf(w, "host\t%s\n", h)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) sitesRemoveCmd(as *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove CODE",
		Short: "Remove a site: no more registrations; its visits stay until the retention period ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, st registry.Store) error {
				if err := st.RemoveSite(cmd.Context(), actor, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "removed site %s; its visits are deleted with the retention period\n", args[0])
				return nil
			})
		},
	}
}

func capacity(n int) string {
	if n <= 0 {
		return "no limit"
	}
	return strconv.Itoa(n)
}

func hours(s *registry.Site) string {
	if s.Opens == "" && s.Closes == "" {
		return "-"
	}
	return dash(s.Opens) + "–" + dash(s.Closes)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
