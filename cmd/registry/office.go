package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/audit"
	"github.com/cityhall/registry/registry/mail"
	"github.com/cityhall/registry/registry/office"
)

// officeOptions are the settings every office command shares.
type officeOptions struct {
	workspace, name, as string
	identities          []string
}

func (a *app) officeCmd() *cobra.Command {
	o := &officeOptions{}
	cmd := &cobra.Command{
		Use:   "office",
		Short: "The health office's workspace: registries, cases, one result per case",
		Long: `office is the health office's side, run on the health office's own machine
or internal server: a directory of the registries the office works with, its
cases (each filed as trace requests to every registry it concerns, followed
until the answers are downloaded), and one result per case (workbook, PDF,
CSV, SORMAS, IRIS) merged from all of them.

'registry office serve' runs the web interface (http://127.0.0.1:8090 by
default; clerks sign in when it listens anywhere else); every other
command does the same on the terminal.

The workspace (--workspace, default ~/.local/share/registry-office) holds
case references, windows and places, the registries' tokens (sealed with
its own key) and trust files, and the bundles as the registries sent them,
sealed to the office. It holds no visitor data: a result is opened with the
office's identity (--identity; its passphrase asked each time, never
stored) only in memory while it is written out. Cases are deleted after
--retention (183 days, as IRIS connect); every step is in the workspace's
own hash-linked log.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.workspace, "workspace", defaultWorkspace(), "the workspace `DIR`")
	pf.StringArrayVar(&o.identities, "identity", nil, "the health office's age identity `FILE` (opens results; repeat it for an old and a new key)")
	pf.StringVar(&o.name, "office-name", "", "the health office's name, sent with every request (\"Gesundheitsamt Musterstadt\")")
	pf.StringVar(&o.as, "as", "", "your name in the workspace's log (default: your login name)")
	settings(pf, "workspace", "identity", "office-name", "as")
	cmd.AddCommand(a.officeServeCmd(o), a.officeRegistriesCmd(o), a.officeCasesCmd(o), a.officeSyncCmd(o),
		a.officeExportCmd(o), a.officeUsersCmd(o), a.officeLogCmd(o), a.officePurgeCmd(o))
	return cmd
}

func defaultWorkspace() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "registry-office")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "registry-office")
	}
	return "registry-office"
}

// actor is who acts in the workspace's log.
func (o *officeOptions) actor() string {
	if o.as != "" {
		return o.as
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// withWorkspace opens the workspace and runs fn.
func (a *app) withWorkspace(ctx context.Context, o *officeOptions, fn func(*office.Store) error) error {
	s, err := office.Open(ctx, o.workspace)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Now = a.now
	return fn(s)
}

func (a *app) syncer(s *office.Store, o *officeOptions) (*office.Syncer, error) {
	name := o.name
	if name == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "no office name"), "pass --office-name \"Gesundheitsamt Musterstadt\" (or REGISTRY_OFFICE_NAME): it goes with every request")
	}
	return &office.Syncer{Store: s, Client: &office.Client{}, Office: name, Now: a.now, Logger: a.logger}, nil
}

type officeServeOptions struct {
	listen, publicURL string
	retention         time.Duration
	smtp              smtpOptions
	notify            string
	interval          time.Duration
}

// smtpOptions are the e-mail settings notifications use.
type smtpOptions struct {
	url, user, passwordFile, from, ca string
}

func (s *smtpOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&s.url, "smtp", "", "the SMTP server for notifications: smtp://HOST[:587] (STARTTLS), smtps://HOST[:465], smtp+plain://HOST (local relay)")
	f.StringVar(&s.user, "smtp-user", "", "the SMTP login (none: no login)")
	f.StringVar(&s.passwordFile, "smtp-password-file", "", "`FILE` with the SMTP password")
	f.StringVar(&s.from, "smtp-from", "", "the notifications' sender address")
	f.StringVar(&s.ca, "smtp-ca", "", "PEM `FILE` of the CA of an internal SMTP relay")
	settings(f, "smtp", "smtp-user", "smtp-password-file", "smtp-from", "smtp-ca")
}

// recipients parses the addresses of a --notify flag, which --smtp needs.
func (s *smtpOptions) recipients(flag, list string) ([]string, error) {
	to, err := mail.Recipients(list)
	if err != nil {
		return nil, err
	}
	if len(to) > 0 && s.url == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "--%s without --smtp", flag), "name the SMTP server with --smtp smtp://HOST (or REGISTRY_SMTP)")
	}
	return to, nil
}

// mailer returns the configured Mailer, nil without --smtp.
func (s *smtpOptions) mailer() (*mail.Mailer, error) {
	if s.url == "" {
		return nil, nil
	}
	pw := ""
	if s.passwordFile != "" {
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("read the SMTP password file: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	return mail.New(mail.Config{URL: s.url, Username: s.user, Password: pw, From: s.from, CAFile: s.ca})
}

func (a *app) officeServeCmd(o *officeOptions) *cobra.Command {
	so := &officeServeOptions{retention: office.DefaultRetention, interval: 15 * time.Second}
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8090]",
		Short: "Run the workspace's web interface, follow the requests, delete old cases",
		Long: `serve runs the workspace's web interface in German (English switchable), follows
every open request (a notice on the page and, with --smtp and --notify, an
e-mail for every change: case reference and registry, never personal data),
downloads approved exports, and deletes cases older than --retention every
hour.

On 127.0.0.1 (the default) it serves whoever uses this machine. Anywhere
else clerks sign in ('registry office users add'); put a TLS proxy in front.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runOfficeServe(cmd.Context(), o, so) },
	}
	f := cmd.Flags()
	f.StringVar(&so.listen, "listen", "127.0.0.1:8090", "the `ADDR` the web interface listens on")
	f.StringVar(&so.publicURL, "public-url", "", "the workspace's address for links in e-mails (default http://LISTEN)")
	f.Var(days{&so.retention}, "retention", "cases are deleted this long after they were created")
	so.smtp.flags(f)
	f.StringVar(&so.notify, "notify", "", "the addresses notifications go to (comma-separated)")
	settings(f, "notify")
	settingsEnv(f, map[string]string{"listen": "REGISTRY_OFFICE_LISTEN", "public-url": "REGISTRY_OFFICE_URL", "retention": "REGISTRY_OFFICE_RETENTION"})
	return cmd
}

// settingsEnv marks flags as settings with environment variables of their
// own names (where REGISTRY_<FLAG> means something else already).
func settingsEnv(fs *pflag.FlagSet, envs map[string]string) {
	for n, env := range envs {
		f := fs.Lookup(n)
		f.Usage += " [$" + env + "]"
		if err := fs.SetAnnotation(n, envAnnotation, []string{env}); err != nil {
			panic(err)
		}
	}
}

// officeIdentities opens the office's identity with a passphrase typed in
// the web interface, which also serves as a hardware token's PIN.
func officeIdentities(paths []string) office.Identities {
	return func(pass []byte) ([]age.Identity, error) {
		if len(paths) == 0 {
			return nil, withHint(registry.Errorf(registry.EINVALID, "no identity file configured"), "start the workspace with --identity FILE (or REGISTRY_IDENTITY)")
		}
		ui := &plugin.ClientUI{
			DisplayMessage: func(string, string) error { return nil },
			RequestValue:   func(string, string, bool) (string, error) { return string(pass), nil },
			Confirm:        func(string, string, string, string) (bool, error) { return true, nil },
		}
		return crypto.ReadIdentityFiles(paths, func(string) ([]byte, error) { return pass, nil }, ui)
	}
}

func (a *app) runOfficeServe(ctx context.Context, o *officeOptions, so *officeServeOptions) error {
	return a.withWorkspace(ctx, o, func(s *office.Store) error {
		y, err := a.syncer(s, o)
		if err != nil {
			return err
		}
		to, err := so.smtp.recipients("notify", so.notify)
		if err != nil {
			return err
		}
		m, err := so.smtp.mailer()
		if err != nil {
			return err
		}
		if m != nil && len(to) == 0 {
			return withHint(registry.Errorf(registry.EINVALID, "--smtp without --notify"), "name the addresses to notify with --notify (or REGISTRY_NOTIFY)")
		}
		host, _, err := net.SplitHostPort(so.listen)
		if err != nil {
			return withHint(registry.Errorf(registry.EINVALID, "--listen %q is not HOST:PORT", so.listen), "for example --listen 127.0.0.1:8090")
		}
		ip := net.ParseIP(host)
		local := host == "localhost" || ip != nil && ip.IsLoopback()
		if !local {
			has, err := s.HasUsers(ctx)
			if err != nil {
				return err
			}
			if !has {
				return withHint(registry.Errorf(registry.EINVALID, "the workspace listens on %s, beyond this machine, and no clerk can sign in", so.listen),
					"add clerks first: registry office users add LOGIN --name NAME -o LOGIN.password")
			}
		}
		ln, err := net.Listen("tcp", so.listen)
		if err != nil {
			return withHint(fmt.Errorf("listen on %s: %w", so.listen, err), "choose another address with --listen")
		}
		base := so.publicURL
		if base == "" {
			base = "http://" + ln.Addr().String()
		}
		if m != nil {
			y.Notify = func(ctx context.Context, c *office.Case, reg *office.Registry, r *office.Request, text string) {
				body := text + "\n\n" + base + "/cases/" + c.ID + "\n\n(Benachrichtigung des Arbeitsplatzes Kontaktnachverfolgung; sie enthält keine personenbezogenen Daten.)\n"
				if err := m.Send(ctx, to, "Kontaktnachverfolgung: "+c.Ref+" – "+reg.Name, body); err != nil {
					a.logger.Warn("notification e-mail not sent", "case", c.ID, "error", err)
				}
			}
		}
		hosts := office.LoopbackHosts(ln.Addr().String())
		if so.publicURL != "" {
			if u, err := urlHost(so.publicURL); err == nil {
				hosts = append(hosts, u)
			}
		}
		if !local {
			hosts = nil // behind a proxy: the proxy names the host
		}
		web, err := office.NewWeb(office.WebConfig{Store: s, Syncer: y, Identities: officeIdentities(o.identities), SignIn: !local,
			Actor: o.actor(), Hosts: hosts, Retention: so.retention, Logger: a.logger})
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: web.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 10 * time.Minute, IdleTimeout: time.Minute}
		go srv.Serve(ln)
		a.logger.Info("workspace serving", "url", base, "sign_in", !local, "notify", m != nil)
		go y.Run(ctx, so.interval)
		go func() {
			for t := time.NewTicker(time.Hour); ; {
				if n, err := s.Purge(ctx, so.retention); err != nil {
					a.logger.Error("workspace purge failed", "error", err)
				} else if n > 0 {
					a.logger.Info("cases deleted after the retention period", "cases", n)
				}
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}()
		a.waitForStop(ctx)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
}

func urlHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", registry.Errorf(registry.EINVALID, "--public-url %q is not a URL", raw)
	}
	return strings.ToLower(u.Host), nil
}

func (a *app) officeRegistriesCmd(o *officeOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "registries", Short: "The registries the office works with"}
	var regURL, tokenFile, trustFile string
	add := &cobra.Command{
		Use:   "add NAME --url URL --token-file FILE --trust FILE",
		Short: "Add a registry: its address, the office's token for it and its trust file",
		Long: `add puts a registry into the directory and fetches its sites. Then compare the
trust file's digest it prints with the registry's data-protection officer
on the phone and confirm it ('registry office registries confirm'): only
then does the workspace open that registry's bundles.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := os.ReadFile(tokenFile)
			if err != nil {
				return withHint(fmt.Errorf("read the token file: %w", err), "pass --token-file FILE with the token the registry's IT created")
			}
			trust, err := os.ReadFile(trustFile)
			if err != nil {
				return withHint(fmt.Errorf("read the trust file: %w", err), "pass --trust FILE: the file 'registry trust export' wrote at the city hall")
			}
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				reg, err := s.AddRegistry(cmd.Context(), o.actor(), args[0], regURL, string(token), trust)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "added %s (%s)\ntrust file digest: %s\n", reg.Name, reg.ID, reg.TrustDigest)
				if err := office.RefreshSites(cmd.Context(), s, &office.Client{}, reg.ID); err != nil {
					fmt.Fprintf(a.stderr, "registry: sites not fetched yet: %s\n", registry.ErrorMessage(err))
				}
				fmt.Fprintf(a.stdout, "compare the digest on the phone, then: registry office registries confirm %s DIGEST\n", reg.ID)
				return nil
			})
		},
	}
	add.Flags().StringVar(&regURL, "url", "", "the registry's `URL` (https://…)")
	add.Flags().StringVar(&tokenFile, "token-file", "", "`FILE` with the office's token for the registry")
	add.Flags().StringVar(&trustFile, "trust", "", "the registry's trust `FILE`")
	list := &cobra.Command{
		Use: "list", Short: "List the registries", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				regs, err := s.Registries(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tURL\tTRUST\tSITES")
				for _, r := range regs {
					trust := "NOT CONFIRMED " + r.TrustDigest
					if r.Confirmed() {
						trust = "confirmed"
					}
					var sites []string
					for _, s := range r.Sites {
						sites = append(sites, s.Code)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, escaped(r.Name), r.URL, trust, dash(strings.Join(sites, ",")))
				}
				return tw.Flush()
			})
		},
	}
	confirm := &cobra.Command{
		Use: "confirm ID DIGEST", Short: "Confirm a registry's trust-file digest, compared on the phone", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				if err := s.ConfirmTrust(cmd.Context(), o.actor(), args[0], args[1]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "trust file of %s confirmed\n", args[0])
				return err
			})
		},
	}
	refresh := &cobra.Command{
		Use: "refresh ID", Short: "Fetch a registry's sites and areas", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				return office.RefreshSites(cmd.Context(), s, &office.Client{}, args[0])
			})
		},
	}
	cmd.AddCommand(add, list, confirm, refresh)
	return cmd
}

func (a *app) officeCasesCmd(o *officeOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "cases", Short: "The office's cases"}
	var ref, legal, contact, from, to string
	var asks, hosts, codes, index []string
	create := &cobra.Command{
		Use:   "create --ref REF --legal-basis TEXT --contact TEXT --from TIME --to TIME --ask REGISTRY[:SITE[:AREA,…]]…",
		Short: "Create a case and file its requests to the registries",
		Long: `create stores a case and one request per registry (per site group), filed by
the next sync ('registry office sync', or serve within seconds).

--ask REGISTRY asks every site of the registry; REGISTRY:SITE one site (all
areas); REGISTRY:SITE:AREA,AREA those areas of the site. Repeat it.
--host REGISTRY:NAME and --appointment REGISTRY:CODE limit a registry's
requests to the visitors of those hosts or appointments. --index
REGISTRY:CODE limits them to the index case and who met it: CODE is the
code on its visitor slip, its appointment code, or the slip's scanned QR
code (only the visit's id is kept).`,
		Example: `  registry office cases create --ref GA-2026-0900 --legal-basis "§ 25 IfSG" --contact "Frau Beispiel, 0221 555-0" \
    --from 2026-11-24T08:00:00+01:00 --to 2026-11-24T11:00:00+01:00 --ask rathaus-musterstadt --ask stadtbibliothek:bibliothek`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseTime("--from", from)
			if err != nil {
				return err
			}
			t, err := parseTime("--to", to)
			if err != nil {
				return err
			}
			scopes, err := askScopes(asks, hosts, codes, index)
			if err != nil {
				return err
			}
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				c, err := s.CreateCase(cmd.Context(), o.actor(), &office.CaseInput{Ref: ref, LegalBasis: legal, Contact: contact, From: f, To: t, Scopes: scopes})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "case %s: %s, %d requests to file\n", c.ID, c.Ref, len(c.Requests))
				return err
			})
		},
	}
	cf := create.Flags()
	cf.StringVar(&ref, "ref", "", "the health office's file reference")
	cf.StringVar(&legal, "legal-basis", "", "the legal basis")
	cf.StringVar(&contact, "contact", "", "the contact at the health office")
	cf.StringVar(&from, "from", "", "window start (RFC 3339)")
	cf.StringVar(&to, "to", "", "window end (RFC 3339)")
	cf.StringArrayVar(&asks, "ask", nil, "REGISTRY[:SITE[:AREA,…]] to ask (repeat)")
	cf.StringArrayVar(&hosts, "host", nil, "REGISTRY:NAME: only visits to this host (repeat)")
	cf.StringArrayVar(&codes, "appointment", nil, "REGISTRY:CODE: only visits of this appointment (repeat)")
	cf.StringArrayVar(&index, "index", nil, "REGISTRY:CODE: only the index case of this slip or appointment code and who met it (repeat)")
	list := &cobra.Command{
		Use: "list", Short: "List the cases and how far their requests got", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				cases, err := s.Cases(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tREF\tWINDOW (German time)\tREQUESTS")
				for _, c := range cases {
					var st []string
					for _, r := range c.Requests {
						st = append(st, r.RegistryID+":"+string(r.Status))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s – %s\t%s\n", c.ID, escaped(c.Ref), local(c.From), local(c.To), strings.Join(st, " "))
				}
				if len(cases) == 0 {
					fmt.Fprintln(tw, "(no cases)")
				}
				return tw.Flush()
			})
		},
	}
	requestCmd := func(use, short string, fn func(ctx context.Context, s *office.Store, c *office.Case, q *office.Request) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " CASE REQUEST", Short: short, Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
					c, err := s.Case(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					for _, q := range c.Requests {
						if q.ID == args[1] {
							return fn(cmd.Context(), s, c, q)
						}
					}
					return registry.Errorf(registry.ENOTFOUND, "case %s has no request %s", args[0], args[1])
				})
			},
		}
	}
	withdraw := requestCmd("withdraw", "Withdraw a request of a case", func(ctx context.Context, s *office.Store, c *office.Case, q *office.Request) error {
		return office.Withdraw(ctx, s, &office.Client{}, o.actor(), c, q)
	})
	refile := requestCmd("refile", "File a lost, refused, rejected or expired request again", func(ctx context.Context, s *office.Store, c *office.Case, q *office.Request) error {
		return s.Refile(ctx, o.actor(), q)
	})
	show := &cobra.Command{
		Use: "show CASE", Short: "Show a case and its requests", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				c, err := s.Case(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "case %s: %s\nwindow: %s – %s\nlegal basis: %s\ncontact: %s\n", c.ID, escaped(c.Ref), local(c.From), local(c.To), escaped(c.LegalBasis), escaped(c.Contact))
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "REQUEST\tREGISTRY\tREQUEST AT THE REGISTRY\tSITES\tAREAS\tSTATUS\tNOTE")
				for _, r := range c.Requests {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.RegistryID, dash(r.RemoteID), dash(strings.Join(r.Sites, ",")), dash(strings.Join(r.Areas, ",")), r.Status, escaped(r.Note))
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(create, list, show, withdraw, refile)
	return cmd
}

// askScopes turns --ask, --host and --appointment into scopes: one per
// registry and area set.
func askScopes(asks, hosts, codes, index []string) ([]office.Scope, error) {
	type key struct{ reg, areas string }
	var order []key
	groups := map[key]*office.Scope{}
	byReg := map[string][]key{}
	for _, a := range asks {
		parts := strings.SplitN(a, ":", 3)
		k := key{reg: parts[0]}
		if len(parts) == 3 {
			k.areas = parts[2]
		}
		if k.reg == "" {
			return nil, withHint(registry.Errorf(registry.EINVALID, "--ask %q names no registry", a), "REGISTRY, REGISTRY:SITE or REGISTRY:SITE:AREA,AREA")
		}
		if groups[k] == nil {
			groups[k] = &office.Scope{RegistryID: k.reg}
			if k.areas != "" {
				groups[k].Areas = strings.Split(k.areas, ",")
			}
			order = append(order, k)
			byReg[k.reg] = append(byReg[k.reg], k)
		}
		if len(parts) >= 2 && parts[1] != "" {
			groups[k].Sites = append(groups[k].Sites, parts[1])
		}
	}
	for _, list := range []struct {
		flag string
		vals []string
		add  func(*office.Scope, string)
	}{
		{"--host", hosts, func(s *office.Scope, v string) { s.Hosts = append(s.Hosts, v) }},
		{"--appointment", codes, func(s *office.Scope, v string) { s.Appointments = append(s.Appointments, v) }},
		{"--index", index, func(s *office.Scope, v string) { s.Index = append(s.Index, office.IndexCodes(v)...) }},
	} {
		for _, v := range list.vals {
			reg, val, ok := strings.Cut(v, ":")
			if !ok || len(byReg[reg]) == 0 {
				return nil, withHint(registry.Errorf(registry.EINVALID, "%s %q names no registry given with --ask", list.flag, v), "write %s REGISTRY:VALUE", list.flag)
			}
			for _, k := range byReg[reg] {
				list.add(groups[k], val)
			}
		}
	}
	var out []office.Scope
	for _, k := range order {
		out = append(out, *groups[k])
	}
	return out, nil
}

func (a *app) officeSyncCmd(o *officeOptions) *cobra.Command {
	return &cobra.Command{
		Use: "sync", Short: "File and follow the open requests once, download approved exports", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				y, err := a.syncer(s, o)
				if err != nil {
					return err
				}
				// Every open request, now: whoever runs sync by hand wants
				// the answer, not the backoff.
				cases, err := s.Cases(cmd.Context())
				if err != nil {
					return err
				}
				for _, c := range cases {
					if err := y.SyncCase(cmd.Context(), c.ID); err != nil {
						return err
					}
				}
				cases, err = s.Cases(cmd.Context())
				if err != nil {
					return err
				}
				for _, c := range cases {
					for _, r := range c.Requests {
						fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", escaped(c.Ref), r.RegistryID, r.Status, escaped(r.Note))
					}
				}
				return nil
			})
		},
	}
}

func (a *app) officeExportCmd(o *officeOptions) *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "export CASE -o FILE [--format xlsx|pdf|csv|json|sormas|iris]",
		Short: "Write a case's result, merged from every registry's answer",
		Long: `export opens every downloaded bundle of the case with the office's identity
(its passphrase asked on the terminal, or a hardware token through its age
plugin), verifies each against its registry's confirmed trust file, and
writes one result: the workbook (a case sheet with every registry's
approvals, counts and digests; one contact list naming the registry, site
and area, people found in several registries marked; one timeline), the
PDF, CSV (';' for German Excel), SORMAS or IRIS. The format follows -o's
extension unless --format says otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE.xlsx (or .pdf, .csv, .json)")
			}
			if format == "" {
				for f, ext := range map[string]string{"xlsx": ".xlsx", "pdf": ".pdf", "csv": ".csv", "json": ".json"} {
					if strings.EqualFold(filepath.Ext(out), ext) {
						format = f
					}
				}
				if format == "" {
					return withHint(registry.Errorf(registry.EINVALID, "cannot write %s", out), "name it .xlsx, .pdf, .csv or .json, or give --format")
				}
			}
			if _, err := os.Stat(out); err == nil {
				return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", out)
			}
			if len(o.identities) == 0 {
				return withHint(registry.Errorf(registry.EINVALID, "no identity file"), "pass --identity FILE (or REGISTRY_IDENTITY): the health office's age identity")
			}
			ui := plugin.NewTerminalUI(func(format string, v ...any) { fmt.Fprintf(a.stderr, "registry: "+format+"\n", v...) },
				func(format string, v ...any) { fmt.Fprintf(a.stderr, "registry: warning: "+format+"\n", v...) })
			ids, err := crypto.ReadIdentityFiles(o.identities, crypto.TerminalPassphrase(), ui)
			if err != nil {
				return err
			}
			sep := ','
			if format == "csv" || format == "sormas" {
				sep = ';'
			}
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				var opened *office.Opened
				err := writeFileAtomic(out, func(w io.Writer) error {
					var err error
					opened, err = s.WriteResult(cmd.Context(), w, o.actor(), args[0], ids, format, sep)
					return err
				})
				if err != nil {
					return err
				}
				h := opened.Source.BundleHeader()
				fmt.Fprintf(a.stderr, "registry: case %s: %d records from %d registries\n", escaped(opened.Case.Ref), h.Count, len(h.Parts))
				for _, p := range h.Parts {
					fmt.Fprintf(a.stderr, "registry:   %s: %d records, sha256 %s\n", escaped(p.Registry), p.Count, p.Digest)
				}
				for _, m := range opened.Outstanding {
					fmt.Fprintf(a.stderr, "registry:   not in the result: %s\n", escaped(m))
				}
				_, err = fmt.Fprintf(a.stdout, "wrote %s\n", out)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "xlsx, pdf, csv, json, sormas or iris (default: from -o)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the new `FILE`")
	return cmd
}

func (a *app) officeUsersCmd(o *officeOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Clerks who sign in when the workspace listens beyond this machine"}
	var name, out string
	add := &cobra.Command{
		Use: "add LOGIN --name NAME -o FILE", Short: "Add a clerk; the password goes into a new file", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no password file"), "pass -o FILE: the new password is written there (mode 0600), never printed")
			}
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				pw, err := s.AddUser(cmd.Context(), o.actor(), args[0], name)
				if err != nil {
					return err
				}
				if err := writeSecretFile(out, pw+"\n"); err != nil {
					s.RemoveUser(cmd.Context(), o.actor(), args[0])
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "added clerk %s; the password is in %s\n", args[0], out)
				return err
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "the clerk's name")
	add.Flags().StringVarP(&out, "output", "o", "", "new `FILE` for the password")
	remove := &cobra.Command{
		Use: "remove LOGIN", Short: "Remove a clerk", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error { return s.RemoveUser(cmd.Context(), o.actor(), args[0]) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List the clerks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				users, err := s.Users(cmd.Context())
				if err != nil {
					return err
				}
				for _, u := range users {
					fmt.Fprintf(a.stdout, "%s\t%s\n", u.Login, escaped(u.Name))
				}
				return nil
			})
		},
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

// writeSecretFile writes a new file of mode 0600.
func writeSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", path)
	} else if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *app) officeLogCmd(o *officeOptions) *cobra.Command {
	return &cobra.Command{
		Use: "log", Short: "Show the workspace's log and verify its chain", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				evs, err := listAudit(cmd.Context(), s, &auditFilter{limit: 100000})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME (German)\tWHO\tWHAT\tSUBJECT\tDETAILS")
				for _, e := range evs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, local(e.Time), escaped(string(e.Actor)), e.Action, dash(e.Subject), escaped(e.Details))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				res, err := audit.Verify(cmd.Context(), s, nil)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "log verified: %d entries\n", res.Size)
				return err
			})
		},
	}
}

func (a *app) officePurgeCmd(o *officeOptions) *cobra.Command {
	retention := office.DefaultRetention
	cmd := &cobra.Command{
		Use: "purge", Short: "Delete cases older than the retention period now (serve does it hourly)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWorkspace(cmd.Context(), o, func(s *office.Store) error {
				n, err := s.Purge(cmd.Context(), retention)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "deleted %d cases older than %s\n", n, days{&retention})
				return err
			})
		},
	}
	cmd.Flags().Var(days{&retention}, "retention", "delete cases created this long ago")
	settingsEnv(cmd.Flags(), map[string]string{"retention": "REGISTRY_OFFICE_RETENTION"})
	return cmd
}
