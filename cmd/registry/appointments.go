package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/ical"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/retention"
)

func (a *app) appointmentsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "appointments",
		Short: "Make, list, cancel and import appointments (the service line's and the hosts' side)",
		Long: `appointments manages the visits arranged beforehand. An appointment has a
site, a host (a staff member or department from the site's --host list),
an area, a start and an end, and a code like T-4711 that is unique at its
site for its day: the service line tells it to the visitor, the visitor
states it at the desk or types it on the phone. An appointment holds
nothing about the visitor. At a site with --by-appointment the desk admits
visitors without one only as walk-ins with a reason.

Appointments are deleted with the statutory period, like visits.`,
	}
	var as string
	cmd.PersistentFlags().StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	settings(cmd.PersistentFlags(), "as")
	cmd.AddCommand(a.appointmentsAddCmd(&as), a.appointmentsListCmd(), a.appointmentsCancelCmd(&as), a.appointmentsImportCmd(&as))
	return cmd
}

// parseLocal parses RFC 3339 or "2026-11-03 09:15" (German time).
func parseLocal(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, registry.LocalZone); err == nil {
		return t, nil
	}
	return time.Time{}, withHint(registry.Errorf(registry.EINVALID, "%s %q is not a time", flag, s), "use \"2026-11-03 09:15\" (German time) or RFC 3339")
}

// parseDay parses --date, by default today in German time.
func (a *app) parseDay(s string) (registry.Day, error) {
	if s == "" {
		return registry.LocalDay(a.now()), nil
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return "", withHint(registry.Errorf(registry.EINVALID, "--date %q is not a date", s), "use YYYY-MM-DD")
	}
	return registry.Day(s), nil
}

func (a *app) appointmentsAddCmd(as *string) *cobra.Command {
	var in registry.AppointmentInput
	var start, end, noteFile, keystore, recipients string
	cmd := &cobra.Command{
		Use:   "add --site SITE --host HOST [--area AREA] --start TIME --end TIME [--note-file FILE]",
		Short: "Make an appointment and print its code",
		Long: `add makes an appointment and prints its code.

--note-file reads a note for the health office (at most 500 characters, for
example a companion with a phone number; "-" reads standard input). It is
sealed at once, like a contact: to the health office's recipients
(--recipients) and the epoch key of the appointment's day (--keystore, which
makes that key when the day lies beyond the keys made ahead). Nobody at the
city hall can read it; the health office finds it beside the visitor's
contact in an export. A note is never taken from a flag, so that it stays out
of the shell history and the process list.`,
		Example: `  registry appointments add --site rathaus --host Bauamt --area Bauamt --start "2026-11-03 09:15" --end "2026-11-03 09:45"
  printf 'kommt mit Dolmetscherin, Tel. 0171 5550123' | registry appointments add --site rathaus --host Bauamt \
    --start "2026-11-03 11:00" --end "2026-11-03 11:30" --note-file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			if in.Start, err = parseLocal("--start", start); err != nil {
				return err
			}
			if in.End, err = parseLocal("--end", end); err != nil {
				return err
			}
			if noteFile != "" {
				if in.Note, err = readNote(cmd.InOrStdin(), noteFile); err != nil {
					return err
				}
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				site, err := s.Site(cmd.Context(), in.Site)
				if err != nil {
					return withHint(err, "'registry sites list' shows the configured sites")
				}
				ap, err := registry.NewAppointment(&in, site, "cli", a.now())
				if err != nil {
					return err
				}
				b, err := a.booking(cmd.Context(), s, in.Note != "", keystore, recipients)
				if err != nil {
					return err
				}
				if ap, _, err = b.Book(cmd.Context(), actor, ap, in.Note); err != nil {
					return err
				}
				return printAppointments(a.stdout, []*registry.Appointment{ap}, a.now())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Site, "site", "", "site code")
	f.StringVar(&in.Host, "host", "", "the staff member or department (one of the site's hosts)")
	f.StringVar(&in.Area, "area", "", "room or area (one of the site's areas)")
	f.StringVar(&start, "start", "", "start, \"2026-11-03 09:15\" (German time) or RFC 3339")
	f.StringVar(&end, "end", "", "end, as --start")
	f.StringVar(&noteFile, "note-file", "", "read a note for the health office from `FILE` (\"-\": standard input); sealed at once")
	f.StringVar(&keystore, "keystore", "", "epoch key store `DIR` (for a note)")
	f.StringVar(&recipients, "recipients", "", "the health office's age recipients `FILE` (for a note)")
	settings(f, "keystore", "recipients")
	return cmd
}

// readNote reads a note for the health office from path ("-": stdin),
// refusing more bytes than registry.MaxNoteLength characters can take.
func readNote(stdin io.Reader, path string) (string, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", registry.Errorf(registry.EINVALID, "cannot read the note: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 4*registry.MaxNoteLength+1))
	if err != nil {
		return "", registry.Errorf(registry.EINVALID, "cannot read the note: %v", err)
	}
	if len(b) > 4*registry.MaxNoteLength {
		return "", registry.FieldError("note", "note is longer than %d characters.", registry.MaxNoteLength)
	}
	return string(b), nil
}

// booking returns the Booking of the CLI: with a note, the pinned
// health-office recipients (a changed file is refused, as by serve) and
// the key store, which makes the appointment day's key when missing.
func (a *app) booking(ctx context.Context, s registry.Store, note bool, keystore, recipients string) (*intake.Booking, error) {
	b := &intake.Booking{Store: s}
	if !note {
		return b, nil
	}
	rcpts, err := a.loadRecipients(ctx, s, recipients)
	if err != nil {
		return nil, err
	}
	if keystore == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "a note needs the key store"), "pass --keystore DIR (or REGISTRY_KEYSTORE): the note is sealed with the epoch key of the appointment's day")
	}
	keys, err := crypto.OpenKeyStore(keystore)
	if err != nil {
		return nil, err
	}
	b.Sealer = crypto.NewSealer(rcpts)
	b.Keys = &retention.Purger{Store: s, Keys: keys, Policy: retention.DefaultPolicy(), Now: a.now, Logger: a.logger}
	return b, nil
}

func printAppointments(w io.Writer, list []*registry.Appointment, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tDAY\tFROM\tTO\tHOST\tAREA\tSTATUS\tNOTE")
	for _, ap := range list {
		note := "-"
		if ap.HasNote {
			note = "sealed" // for the health office; nobody here can read it
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ap.Code, ap.Day, ap.Start.In(registry.LocalZone).Format("15:04"),
			ap.End.In(registry.LocalZone).Format("15:04"), escaped(ap.Host), dash(escaped(ap.Area)), ap.StatusAt(now), note)
	}
	return tw.Flush()
}

func (a *app) appointmentsListCmd() *cobra.Command {
	var site, date string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --site SITE [--date YYYY-MM-DD]",
		Short: "List a site's appointments of a day (default today) with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			day, err := a.parseDay(date)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				list, err := s.Appointments(cmd.Context(), site, day)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, list)
				}
				return printAppointments(a.stdout, list, a.now())
			})
		},
	}
	cmd.Flags().StringVar(&site, "site", "", "site code")
	cmd.Flags().StringVar(&date, "date", "", "day, YYYY-MM-DD (default: today)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) appointmentsCancelCmd(as *string) *cobra.Command {
	var site, date string
	cmd := &cobra.Command{
		Use:   "cancel CODE --site SITE [--date YYYY-MM-DD]",
		Short: "Cancel an expected appointment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			day, err := a.parseDay(date)
			if err != nil {
				return err
			}
			code := registry.NormalizeCode(args[0])
			if code == "" {
				return withHint(registry.Errorf(registry.EINVALID, "%q is not an appointment code", args[0]), "codes look like T-4711")
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				ap, err := s.FindAppointment(cmd.Context(), site, day, code)
				if err != nil {
					return err
				}
				if ap, err = s.CancelAppointment(cmd.Context(), actor, ap.ID, a.now()); err != nil {
					return err
				}
				return printAppointments(a.stdout, []*registry.Appointment{ap}, a.now())
			})
		},
	}
	cmd.Flags().StringVar(&site, "site", "", "site code")
	cmd.Flags().StringVar(&date, "date", "", "day, YYYY-MM-DD (default: today)")
	return cmd
}

func (a *app) appointmentsImportCmd(as *string) *cobra.Command {
	var site, host, keystore, secretFile string
	cmd := &cobra.Command{
		Use:   "import FILE.ics --site SITE --host HOST",
		Short: "Import the appointments of a staff calendar (iCalendar export from Outlook, Thunderbird …)",
		Long: `import reads an iCalendar file exported from a host's calendar and makes an
appointment of every event: its start and end, its location as the area
when the site has an area of that name. Summaries, descriptions and
attendees, which often name the visitor, are never read. Importing the
same file again changes nothing (events are matched by their UID); an event
marked cancelled cancels the appointment imported for it. It prints the
codes for the service line.`,
		Example: `  registry appointments import bauamt-kalender.ics --site rathaus --host Bauamt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return registry.Errorf(registry.EINVALID, "cannot read %s: %v", args[0], err)
			}
			defer f.Close()
			evs, err := ical.Parse(f)
			if err != nil {
				return err
			}
			secret, err := a.serverSecret(secretFile, keystore)
			if err != nil {
				return err
			}
			for i := range evs {
				evs[i].UID = secret.BookingUID(site, evs[i].UID)
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				return a.importEvents(cmd.Context(), s, actor, site, host, evs)
			})
		},
	}
	cmd.Flags().StringVar(&site, "site", "", "site code")
	cmd.Flags().StringVar(&host, "host", "", "whose calendar it is (one of the site's hosts)")
	cmd.Flags().StringVar(&keystore, "keystore", "", "key store `DIR` whose server secret keys the events' ids (the database keeps only their keyed hash)")
	cmd.Flags().StringVar(&secretFile, "server-secret", "", "the server secret `FILE` (default: server.secret in the key store)")
	settings(cmd.Flags(), "keystore", "server-secret")
	return cmd
}

// importEvents checks every event first and stores them in one
// transaction: a file with one bad event stores nothing.
func (a *app) importEvents(ctx context.Context, s registry.Store, actor registry.Actor, code, host string, evs []ical.Event) error {
	site, err := s.Site(ctx, code)
	if err != nil {
		return withHint(err, "'registry sites list' shows the configured sites")
	}
	now := a.now()
	var items []registry.ImportedAppointment
	skipped := 0
	for i, e := range evs {
		area := ""
		if site.HasArea(e.Location) {
			area = e.Location
		}
		in := &registry.AppointmentInput{Site: site.Code, Host: host, Area: area, Start: e.Start, End: e.End, UID: e.UID}
		ap, err := registry.NewAppointment(in, site, "ical", now)
		switch {
		case registry.ErrorCode(err) == registry.EINVALID && (e.Cancelled || e.End.Before(now)):
			skipped++ // over already, or cancelled and never importable
			continue
		case err != nil:
			return withHint(registry.Errorf(registry.ErrorCode(err), "event %d (%s): %s", i+1, e, registry.ErrorMessage(err)),
				"nothing of the file was imported; correct the event in the calendar and export again")
		}
		items = append(items, registry.ImportedAppointment{Appointment: ap, Cancelled: e.Cancelled})
	}
	outcomes, err := s.ImportAppointments(ctx, actor, items, now)
	if err != nil {
		return withHint(err, "nothing of the file was imported")
	}
	var made []*registry.Appointment
	cancelled := 0
	for _, o := range outcomes {
		switch {
		case o.Cancelled:
			cancelled++
		case o.Appointment.Status != registry.AppointmentCancelled:
			made = append(made, o.Appointment)
		}
	}
	if err := printAppointments(a.stdout, made, now); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%d appointments, %d cancelled, %d past events skipped\n", len(made), cancelled, skipped)
	return err
}
