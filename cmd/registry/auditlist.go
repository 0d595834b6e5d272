package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
)

// auditFilter selects audit entries for 'audit list'.
type auditFilter struct {
	after       int64
	limit       int
	actions     []string // prefixes of actions ("request" matches request.created …)
	since, till time.Time
}

func (f *auditFilter) match(e *registry.AuditEvent) bool {
	switch {
	case !f.since.IsZero() && e.Time.Before(f.since), !f.till.IsZero() && !e.Time.Before(f.till):
		return false
	case len(f.actions) == 0:
		return true
	}
	return slices.ContainsFunc(f.actions, func(p string) bool { return e.Action == p || strings.HasPrefix(e.Action, p+".") })
}

func (a *app) auditListCmd() *cobra.Command {
	var f auditFilter
	var since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--action TYPE…] [--since DATE] [--until DATE] [--after SEQ] [--limit N] [--json]",
		Short: "List audit entries in order, in German time, with what each one says",
		Long: `list shows the audit log one entry per line: its number, the time in German
time, who acted, the action and a short summary of what it records (counts,
windows, key ids; never personal data). Filter by action (--action request
shows request.created, request.approved …; repeat or separate with
commas), by German calendar day (--since 2026-11-01 --until 2026-11-30,
both included) and by number (--after). --json prints the entries whole,
with their details and hashes, for a script or an auditor.

Actions: ` + strings.Join(auditActions, ", ") + `.`,
		Example: `  registry audit list --action request --since 2026-11-01
  registry audit list --action purge,export.denied --until 2026-11-30
  registry audit list --after 1200 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.since, err = parseDayFlag("--since", since, 0); err != nil {
				return err
			}
			if f.till, err = parseDayFlag("--until", until, 1); err != nil {
				return err
			}
			for _, p := range f.actions {
				if !slices.ContainsFunc(auditActions, func(x string) bool { return x == p || strings.HasPrefix(x, p+".") }) {
					return withHint(registry.Errorf(registry.EINVALID, "--action %q names no audit action", p), "actions: %s", strings.Join(auditActions, ", "))
				}
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				evs, err := listAudit(cmd.Context(), s, &f)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, auditViews(evs))
				}
				accounts, err := subjectAccounts(cmd.Context(), s, evs)
				if err != nil {
					return err
				}
				return printAudit(a.stdout, evs, accounts)
			})
		},
	}
	cmd.Flags().Int64Var(&f.after, "after", 0, "start after this sequence number")
	cmd.Flags().IntVar(&f.limit, "limit", 1000, "at most this many entries")
	cmd.Flags().StringSliceVar(&f.actions, "action", nil, "only entries of this action or family of actions (repeat, or separate with commas)")
	cmd.Flags().StringVar(&since, "since", "", "only entries from this German calendar day on (YYYY-MM-DD)")
	cmd.Flags().StringVar(&until, "until", "", "only entries up to and including this German calendar day (YYYY-MM-DD)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, with details and hashes")
	return cmd
}

// auditActions are the actions the log holds, sorted.
var auditActions = func() []string {
	list := slices.Clone(registry.AuditActions)
	sort.Strings(list)
	return list
}()

// parseDayFlag parses a German calendar day and returns its start, days
// later ("" is the zero time).
func parseDayFlag(flag, s string, days int) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, registry.LocalZone)
	if err != nil {
		return time.Time{}, withHint(registry.Errorf(registry.EINVALID, "%s %q is not a date", flag, s), "use YYYY-MM-DD, for example 2026-11-24")
	}
	return d.AddDate(0, 0, days), nil
}

// listAudit pages through the log after f.after and returns up to f.limit
// entries that f matches.
func listAudit(ctx context.Context, s registry.AuditStore, f *auditFilter) ([]*registry.AuditEvent, error) {
	var out []*registry.AuditEvent
	for after := f.after; len(out) < f.limit; {
		page, err := s.AuditEvents(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			after = e.Seq
			if f.match(e) && len(out) < f.limit {
				out = append(out, e)
			}
		}
		if len(page) < 1000 {
			break
		}
	}
	return out, nil
}

// subjectAccounts resolves the "actor:<hex>" subjects of evs (accounts of
// user.changed and signin.failed entries) to the accounts' actors, as far
// as the store still knows them (the staff retention erases them).
func subjectAccounts(ctx context.Context, s registry.Store, evs []*registry.AuditEvent) (map[string]registry.Actor, error) {
	r, ok := s.(interface {
		SubjectActor(context.Context, string) (registry.Actor, error)
	})
	out := map[string]registry.Actor{}
	if !ok {
		return out, nil
	}
	for _, e := range evs {
		if _, done := out[e.Subject]; done || !strings.HasPrefix(e.Subject, "actor:") {
			continue
		}
		actor, err := r.SubjectActor(ctx, e.Subject)
		if err != nil {
			return nil, err
		}
		out[e.Subject] = actor
	}
	return out, nil
}

func printAudit(w io.Writer, evs []*registry.AuditEvent, accounts map[string]registry.Actor) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME (German)\tACTOR\tACTION\tSUMMARY")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Seq, local(e.Time), dash(escaped(string(e.Actor))), e.Action, escaped(auditSummary(e, accounts)))
	}
	if len(evs) == 0 {
		fmt.Fprintln(tw, "(no entries match)")
	}
	return tw.Flush()
}

// auditSummary says in a few words what an entry records: counts, sites,
// windows, key ids, never personal data (the log holds none).
func auditSummary(e *registry.AuditEvent, accounts map[string]registry.Actor) string {
	var sum string
	var err error
	decode := func(v any) bool { err = json.Unmarshal([]byte(e.Details), v); return err == nil }
	switch e.Action {
	case registry.AuditVisitsRegistered:
		var p registry.VisitsRegistered
		if decode(&p) {
			sum = fmt.Sprintf("%d visits (%s)", p.Count, siteCounts(p.Sites))
			if p.Appointments > 0 {
				sum += fmt.Sprintf(", %d with appointment", p.Appointments)
			}
		}
	case registry.AuditVisitsCheckedOut:
		var p registry.VisitsCheckedOut
		if decode(&p) {
			sum = fmt.Sprintf("%d check-outs (%s), reason %s", p.Count, siteCounts(p.Sites), dash(string(p.Reason)))
		}
	case registry.AuditPurge:
		var p registry.PurgeReport
		if decode(&p) {
			sum = fmt.Sprintf("cutoff %s: %d visits deleted, keys destroyed %s, %d auto-checked-out", local(p.Cutoff), p.VisitsDeleted, dash(dayList(p.KeysDestroyed)), p.VisitsAutoCheckedOut)
			if p.DryRun {
				sum = "dry run, " + sum
			}
		}
	case registry.AuditRequestCreated:
		var p registry.RequestCreated
		if decode(&p) {
			sum = fmt.Sprintf("request %s of %s, %s to %s, sites %s", short(e.Subject), p.Office, local(p.From), local(p.To), strings.Join(p.Sites, ","))
		}
	case registry.AuditRequestApproved:
		var p registry.RequestApproved
		if decode(&p) {
			sum = fmt.Sprintf("request %s approved by key %s until %s", short(e.Subject), p.Approver, local(p.ExpiresAt))
			if p.Complete {
				sum += " (complete)"
			}
		}
	case registry.AuditRequestRejected:
		var p registry.RequestRejected
		if decode(&p) {
			sum = fmt.Sprintf("request %s rejected by key %s", short(e.Subject), p.Approver)
		}
	case registry.AuditRequestExported:
		var p registry.RequestExported
		if decode(&p) {
			sum = fmt.Sprintf("request %s exported: %d records, sha256 %s", short(e.Subject), p.Count, short(p.Digest))
		}
	case registry.AuditExportDenied:
		var p registry.ExportDenied
		if decode(&p) {
			sum = fmt.Sprintf("export of request %s refused (%s)", dash(short(e.Subject)), p.Reason)
		}
	case registry.AuditApproverChanged:
		var p registry.ApproverChanged
		if decode(&p) {
			sum = fmt.Sprintf("approver key %s: %s", p.ID, p.Op)
		}
	case registry.AuditRecipientsChanged:
		var p registry.RecipientsChanged
		if decode(&p) {
			sum = fmt.Sprintf("recipients %s -> %s", dash(short(p.Old)), short(p.New))
		}
	case registry.AuditClockReset:
		var p registry.ClockReset
		if decode(&p) {
			sum = fmt.Sprintf("clock reference reset: the last purge at %s and data up to %s were stamped by a clock running ahead; %d visits keep later times", local(p.Reference), local(p.Newest), p.Ahead)
		}
	case registry.AuditPurgeDryRun:
		var p registry.PurgeDryRun
		if decode(&p) {
			sum = fmt.Sprintf("dry run, cutoff %s: would delete %d visits, destroy keys %s", local(p.Cutoff), p.VisitsDeleted, dash(dayList(p.KeysDestroyed)))
		}
	case registry.AuditCertificate:
		var p registry.CertificateIssued
		if decode(&p) {
			sum = fmt.Sprintf("deletion certificate for %s: %d visits registered, %d deleted, sha256 %s", p.Month, p.Registered, p.Deleted, short(p.Digest))
		}
	case registry.AuditAccess:
		var p registry.Access
		if decode(&p) {
			switch {
			case p.What == "backup":
				sum = "backup of the database"
			case strings.HasPrefix(p.What, "request."):
				sum = fmt.Sprintf("%s of request %s", p.What, short(e.Subject))
				if p.What == "request.preview" {
					sum += fmt.Sprintf(": %d visits in scope", p.Rows)
				}
			default:
				sum = fmt.Sprintf("%s of %s on %s: %d rows", p.What, p.Site, p.Day, p.Rows)
			}
		}
	case registry.AuditSignInFailed:
		var p registry.SignInFailed
		if decode(&p) {
			sum = "desk sign-in failed: " + p.Reason
			if e.Subject != "" {
				sum += ", account " + account(e.Subject, accounts)
			}
		}
	case registry.AuditApprovalRefused:
		var p registry.ApprovalRefused
		if decode(&p) {
			sum = fmt.Sprintf("decision on request %s refused for key %s: %s", short(e.Subject), p.Key, p.Reason)
		}
	case registry.AuditUserChanged:
		var p registry.UserChanged
		if decode(&p) {
			sum = fmt.Sprintf("account %s %s", account(e.Subject, accounts), p.Change)
			if p.What != "" {
				sum += " (" + p.What + ")"
			}
		}
	case registry.AuditEpochKeysCreated:
		var p registry.EpochKeysCreated
		if decode(&p) {
			sum = "day keys " + dayList(p.Days)
		}
	}
	if sum == "" {
		sum = e.Details
		if len(sum) > 100 {
			sum = sum[:97] + "..."
		}
	}
	return sum
}

// account names the account an "actor:<hex>" subject commits to, or says
// that it was erased.
func account(subject string, accounts map[string]registry.Actor) string {
	if a := accounts[subject]; a != "" {
		return strings.TrimPrefix(string(a), "user:")
	}
	return "(erased)"
}

// siteCounts is "rathaus 3, bauamt 1".
func siteCounts(m map[string]int) string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, m[c])
	}
	return strings.Join(parts, ", ")
}

// dayList is "2026-11-02, 2026-11-03", or "" for none; long lists are
// cut to their first and last day.
func dayList(days []registry.Day) string {
	if len(days) > 3 {
		return fmt.Sprintf("%s … %s (%d days)", days[0], days[len(days)-1], len(days))
	}
	parts := make([]string, len(days))
	for i, d := range days {
		parts[i] = string(d)
	}
	return strings.Join(parts, ", ")
}

// short cuts an id or digest to its first 12 characters.
func short(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

type auditView struct {
	Seq     int64  `json:"seq"`
	Time    string `json:"time"`
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Subject string `json:"subject,omitempty"`
	Details string `json:"details"`
	Hash    string `json:"hash"`
}

func auditViews(evs []*registry.AuditEvent) []auditView {
	vs := make([]auditView, 0, len(evs))
	for _, e := range evs {
		vs = append(vs, auditView{e.Seq, rfc3339(e.Time), string(e.Actor), e.Action, e.Subject, e.Details, hex.EncodeToString(e.Hash)})
	}
	return vs
}
