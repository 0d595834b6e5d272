package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/retention"
)

// DefaultApprovalValidity is how long an approval stays usable.
const DefaultApprovalValidity = 72 * time.Hour

func (a *app) requestsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "Review, approve and reject the health office's trace requests",
		Long: `requests is the data-protection officer's side of a trace request. A health
office files a request (case reference, time window, sites) over the API,
or you record one that arrived by letter with 'requests create'.

Approving and rejecting are signatures with your approver key (--key, see
'registry approvers'), over the request's id, case, office, window, sites,
areas, the approval's expiry and a one-time nonce: a request filed by the
health office needs one approver, one recorded from a letter two different
approvers. An approval lapses after --valid-for and can be withdrawn before
the export. An approved request can be exported exactly once. Every step is
recorded in the audit log under the approver's registered name.

Away from the server, list, show, approve, reject and withdraw work over
HTTPS with --server URL and --token-file FILE (a DPO token, 'registry
tokens create --role dpo'): the statement comes from the registry, is shown
here with the scope, and is signed here; only the signature travels, and
the signing key never reaches the server. Without network, 'requests
statement' writes a statement to a file and 'requests sign' signs it on
the machine with the key; the DPO's web page takes the signature back.`,
	}
	o := &requestsOptions{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.as, "as", "", "your name for 'create', 'show', 'preview' and 'narrow', recorded in the audit log (default: your login name)")
	pf.StringVar(&o.server, "server", "", "the registry's `URL`: work over HTTPS with a DPO token instead of on the database")
	pf.StringVar(&o.tokenFile, "token-file", "", "`FILE` with your DPO token, for --server")
	settings(pf, "as", "server", "token-file")
	as := &o.as
	cmd.AddCommand(a.requestsListCmd(o), a.requestsShowCmd(o), a.requestsDecideCmd(o, true),
		a.requestsDecideCmd(o, false), a.requestsWithdrawCmd(o), a.requestsCreateCmd(as),
		a.requestsPreviewCmd(as), a.requestsNarrowCmd(as), a.requestsStatementCmd(o), a.requestsSignCmd())
	return cmd
}

// requestsOptions are the settings every requests command shares.
type requestsOptions struct {
	as, server, tokenFile string
}

func (a *app) requestsListCmd(o *requestsOptions) *cobra.Command {
	var status string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--status pending|approved|rejected|exported|expired]",
		Short: "List trace requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if d, err := o.remote(); err != nil || d != nil {
				if err != nil {
					return err
				}
				return a.remoteList(cmd.Context(), d, status)
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				rs, err := s.TraceRequests(cmd.Context(), registry.TraceFilter{Status: registry.TraceStatus(status)})
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, rs)
				}
				set, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tSTATUS\tCASE\tOFFICE\tFROM (German)\tTO\tSITES")
				for _, r := range rs {
					status := string(r.Status)
					if r.Status == registry.TracePending || r.Status == registry.TraceApproved {
						full, err := s.FindTraceRequest(cmd.Context(), r.ID) // with its approvals
						if err != nil {
							return err
						}
						status = statusText(full, set, a.now())
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, status, escaped(r.CaseRef), escaped(r.Office),
						local(r.From), local(r.To), strings.Join(r.Sites, ","))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only requests in this state")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) requestsShowCmd(o *requestsOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one trace request in full",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if d, err := o.remote(); err != nil || d != nil {
				if err != nil {
					return err
				}
				return a.remoteShow(cmd.Context(), d, args[0])
			}
			return a.withActorStore(cmd.Context(), o.as, func(actor registry.Actor, s registry.Store) error {
				r, err := s.FindTraceRequest(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if err := a.auditAccess(cmd.Context(), s, actor, r.ID, registry.Access{What: "request.show"}); err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, r)
				}
				return a.showRequest(cmd.Context(), s, r)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// auditAccess records that actor looked at something (an AuditAccess
// entry), before it is shown: what cannot be recorded is not shown.
func (a *app) auditAccess(ctx context.Context, s registry.Store, actor registry.Actor, subject string, p registry.Access) error {
	ev, err := registry.NewAuditEvent(a.now(), actor, subject, p)
	if err == nil {
		err = s.AppendAudit(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("record the access in the audit log: %w", err)
	}
	return nil
}

// statusText is a request's status in words: a pending or approved one
// says how many of the approvals it needs it has ("pending: 1 of 2
// approvals").
func statusText(r *registry.TraceRequest, set *registry.ApproverSet, now time.Time) string {
	if r.Status != registry.TracePending && r.Status != registry.TraceApproved || set == nil {
		return string(r.Status)
	}
	have, need := registry.ApprovalCount(r, r.Approvals, set, now)
	return fmt.Sprintf("%s: %d of %d approvals", r.Status, have, need)
}

// showRequest prints r with the approver set of s.
func (a *app) showRequest(ctx context.Context, s registry.Store, r *registry.TraceRequest) error {
	set, err := s.Approvers(ctx)
	if err != nil {
		return err
	}
	return printRequest(a.stdout, r, set, a.now())
}

func printRequest(w io.Writer, r *registry.TraceRequest, set *registry.ApproverSet, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	areas := strings.Join(r.Areas, ", ")
	if areas == "" {
		areas = "(all areas)"
	}
	rows := [][2]string{
		{"id", r.ID}, {"status", statusText(r, set, now)}, {"case reference", r.CaseRef}, {"office", r.Office},
		{"legal basis", r.LegalBasis}, {"contact", r.Contact}, {"window from", local(r.From)},
		{"window to", local(r.To)}, {"sites", strings.Join(r.Sites, ", ")}, {"areas", areas},
		{"hosts", dash(escaped(strings.Join(r.Hosts, ", ")))},
		{"appointments", dash(strings.Join(r.Appointments, ", "))},
		{"index case", indexText(r)},
		{"created by", string(r.CreatedBy)}, {"created at", local(r.CreatedAt)},
		{"origin", r.Origin()}, {"owner office", dash(r.OwnerOffice)}, {"approvals needed", fmt.Sprint(registry.RequiredApprovals(r))},
		{"last decided by", dash(escaped(string(r.DecidedBy)))}, {"decided at", localp(r.DecidedAt)},
		{"decision note", dash(escaped(r.DecisionNote))}, {"approval expires", localp(r.ExpiresAt)},
		{"exported at", localp(r.ExportedAt)}, {"records exported", fmt.Sprint(r.ExportCount)},
		{"export digest", dash(digestForms(r.ExportDigest))},
	}
	for _, a := range r.Approvals {
		var until *time.Time
		if a.Decision == registry.DecisionApprove {
			until = &a.ExpiresAt
		}
		rows = append(rows, [2]string{"signed decision", decisionText(a.Name, a.ApproverID, a.Decision, a.SignedAt, until, a.WithdrawnAt)})
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func (a *app) requestsDecideCmd(o *requestsOptions, approve bool) *cobra.Command {
	var note, key string
	var yes bool
	validFor := DefaultApprovalValidity
	use, short := "reject ID --key FILE --note REASON", "Reject a trace request, signed with your approver key"
	if approve {
		use, short = "approve ID --key FILE [--valid-for 72h] [--note TEXT]", "Approve a trace request for one export, signed with your approver key"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: `The command shows what you sign (the statement over the request as stored:
case, office, window, places, decision and expiry in German time, with the
number of visits in scope), asks on a terminal, and signs it with your
approver key (a key file, or --key ssh-agent for a key in ssh-agent, a
FIDO2 security key among them). It refuses a key that is not a registered
approver's and a second decision by the same person. With --server the
statement comes from the registry over HTTPS and only the signature goes
back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !approve && strings.TrimSpace(note) == "" {
				return withHint(registry.Errorf(registry.EINVALID, "a rejection needs a reason"), "pass --note REASON; the health office sees it")
			}
			if validFor < time.Minute || validFor > 14*24*time.Hour {
				return withHint(registry.Errorf(registry.EINVALID, "--valid-for must lie between 1 minute and 14 days"), "the default is 72h")
			}
			now := a.now().UTC()
			decision, exp := registry.DecisionReject, time.Time{}
			if approve {
				decision, exp = registry.DecisionApprove, now.Add(validFor).Truncate(time.Second)
			}
			if d, err := o.remote(); err != nil || d != nil {
				if err != nil {
					return err
				}
				return a.remoteDecide(cmd.Context(), d, args[0], decision, exp, note, key, yes)
			}
			k, err := readSigner(key)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				r, err := s.FindTraceRequest(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				raw := registry.DecisionStatement(r, decision, exp)
				st, _ := registry.ParseStatement(raw)
				counts, err := s.ScopeSummary(cmd.Context(), r, retention.DefaultPolicy().MaxStay)
				if err != nil {
					return err
				}
				visits := 0
				for _, c := range counts {
					visits += c.Visits
				}
				a.showStatement(st, visits, nil)
				if err := confirmSigning(yes); err != nil {
					return err
				}
				sig, err := k.SignStatement(registry.PurposeDecision, raw)
				if err != nil {
					return err
				}
				ap := &registry.Approval{RequestID: r.ID, ApproverID: k.PublicKey().ID(), Decision: decision, ExpiresAt: exp, Note: note, Signature: sig}
				r, err = s.DecideTraceRequest(cmd.Context(), ap, now)
				if err != nil {
					return err
				}
				return a.showRequest(cmd.Context(), s, r)
			})
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "reason or remark, recorded with the decision")
	cmd.Flags().StringVar(&key, "key", "", "your approver key `FILE` ('registry approvers keygen'), or ssh-agent")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask before signing")
	if approve {
		cmd.Flags().DurationVar(&validFor, "valid-for", validFor, "the approval lapses after this long")
	}
	return cmd
}

func (a *app) requestsWithdrawCmd(o *requestsOptions) *cobra.Command {
	var key string
	var yes bool
	cmd := &cobra.Command{
		Use:   "withdraw ID --key FILE",
		Short: "Withdraw your decision on a trace request before it is exported",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if d, err := o.remote(); err != nil || d != nil {
				if err != nil {
					return err
				}
				return a.remoteDecide(cmd.Context(), d, args[0], registry.DecisionWithdraw, time.Time{}, "", key, yes)
			}
			k, err := readSigner(key)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				r, err := s.FindTraceRequest(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				raw := registry.DecisionStatement(r, registry.DecisionWithdraw, time.Time{})
				st, _ := registry.ParseStatement(raw)
				a.showStatement(st, -1, nil)
				if err := confirmSigning(yes); err != nil {
					return err
				}
				sig, err := k.SignStatement(registry.PurposeDecision, raw)
				if err != nil {
					return err
				}
				if r, err = s.WithdrawApproval(cmd.Context(), r.ID, k.PublicKey().ID(), sig, a.now()); err != nil {
					return err
				}
				return a.showRequest(cmd.Context(), s, r)
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "your approver key `FILE`, or ssh-agent")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask before signing")
	return cmd
}

func (a *app) requestsCreateCmd(as *string) *cobra.Command {
	var in registry.TraceInput
	var from, to, keystore string
	var tolerance, minContact time.Duration
	var retentionPeriod = retention.DefaultPolicy().Retention
	cmd := &cobra.Command{
		Use:   "create --case-ref REF --office NAME --legal-basis TEXT --contact TEXT --from TIME --to TIME --site SITE…",
		Short: "Record a trace request that arrived by letter, fax or phone",
		Long: `create records a trace request that reached you outside the API. It starts
as pending; a different person must approve it. TIME is RFC 3339, for
example 2026-11-20T08:00:00+01:00.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			if in.From, err = parseTime("--from", from); err != nil {
				return err
			}
			if in.To, err = parseTime("--to", to); err != nil {
				return err
			}
			if cmd.Flags().Changed("tolerance") {
				m := int(tolerance / time.Minute)
				in.Tolerance = &m
			}
			in.MinContact = int(minContact / time.Minute)
			r, err := registry.NewTraceRequest(&in, actor, "", a.now(), retentionPeriod)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				if len(r.Index) > 0 {
					secret, err := a.serverSecret("", keystore)
					if err != nil {
						return err
					}
					if err := intake.ResolveIndex(cmd.Context(), s, secret, r); err != nil {
						return err
					}
				}
				if err := s.CreateTraceRequest(cmd.Context(), actor, r); err != nil {
					return err
				}
				return a.showRequest(cmd.Context(), s, r)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.CaseRef, "case-ref", "", "the health office's case reference (Aktenzeichen)")
	f.StringVar(&in.Office, "office", "", "the requesting health office")
	f.StringVar(&in.LegalBasis, "legal-basis", "", "the legal basis named in the request")
	f.StringVar(&in.Contact, "contact", "", "the contact person at the health office")
	f.StringVar(&from, "from", "", "window start, RFC 3339")
	f.StringVar(&to, "to", "", "window end, RFC 3339")
	f.StringSliceVar(&in.Sites, "site", nil, "site code (repeat or separate with commas)")
	f.StringSliceVar(&in.Areas, "area", nil, "area within the sites (repeat; default: all areas)")
	f.StringArrayVar(&in.Hosts, "host", nil, "only the visitors who had an appointment with this host (repeat)")
	f.StringSliceVar(&in.Appointments, "appointment", nil, "only the visitors of this appointment code, for example T-4711 (repeat; with --host: either)")
	f.StringSliceVar(&in.Index, "index", nil, "scope to the index case: the code on its visitor slip or check-out page (K7QD-2M), or its appointment code (repeat for several visits)")
	f.DurationVar(&tolerance, "tolerance", registry.DefaultTolerance*time.Minute, "index case: minutes before and after its stay that still count as together")
	f.DurationVar(&minContact, "min-contact", 0, "index case: the least time together that counts as contact (default: any)")
	f.StringVar(&in.WholeSiteReason, "whole-site", "", "index case: widen the contacts from its area to the whole site, for this REASON")
	f.StringVar(&keystore, "keystore", "", "epoch key store `DIR` (its server secret reads the slips' codes)")
	f.Var(days{&retentionPeriod}, "retention", "statutory retention period (a window starting before it is refused)")
	settings(f, "retention", "keystore")
	return cmd
}

// withStore opens the store, runs fn and closes the store.
func (a *app) withStore(ctx context.Context, fn func(registry.Store) error) error {
	s, err := a.openStore(ctx, existingDB)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// withActorStore resolves the --as name (dpoActor), opens the store and
// runs fn with both.
func (a *app) withActorStore(ctx context.Context, as string, fn func(registry.Actor, registry.Store) error) error {
	actor, err := dpoActor(as)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s registry.Store) error { return fn(actor, s) })
}

// decisionText is a signed decision as the request tables show it.
func decisionText(name, key, decision string, signed time.Time, until, withdrawn *time.Time) string {
	state := decision
	if until != nil {
		state += " until " + local(*until)
	}
	if withdrawn != nil {
		state += ", withdrawn " + local(*withdrawn)
	}
	return fmt.Sprintf("%s (key %s) at %s: %s", escaped(name), key, local(signed), state)
}

// indexText describes a request's index scope, "-" without one.
func indexText(r *registry.TraceRequest) string {
	if len(r.Index) == 0 {
		return "-"
	}
	s := fmt.Sprintf("codes %s (%d visits), same area, %d minutes tolerance, at least %d minutes", strings.Join(r.Index, ", "), len(r.IndexVisits), r.Tolerance, r.MinContact)
	if r.WholeSite != "" {
		s += "; widened to the whole site: " + escaped(r.WholeSite)
	}
	return s
}

func parseTime(flag, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, withHint(registry.Errorf(registry.EINVALID, "%s %q is not a time", flag, s), "use RFC 3339, for example 2026-11-20T08:00:00+01:00")
	}
	return t, nil
}

func (a *app) requestsPreviewCmd(as *string) *cobra.Command {
	maxStay := retention.DefaultPolicy().MaxStay
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "preview ID",
		Short: "Show the scope of a request without personal data: visits per site, area and hour",
		Long: `preview counts the visits a request would export, per site, area and hour of
check-in (German time), from the plaintext times and places only: nothing
is decrypted, no name is shown. Look at it before approving; if the request
asks for more than the case needs, narrow it ('requests narrow').`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withActorStore(cmd.Context(), *as, func(actor registry.Actor, s registry.Store) error {
				r, err := s.FindTraceRequest(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				counts, err := s.ScopeSummary(cmd.Context(), r, maxStay)
				if err != nil {
					return err
				}
				rows := 0
				for _, c := range counts {
					rows += c.Visits
				}
				if err := a.auditAccess(cmd.Context(), s, actor, r.ID, registry.Access{What: "request.preview", Rows: rows}); err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, counts)
				}
				total := 0
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SITE\tAREA\tHOUR (German time)\tVISITS")
				for _, c := range counts {
					total += c.Visits
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", c.Site, dash(escaped(c.Area)), c.Hour.In(registry.LocalZone).Format("2006-01-02 15:00"), c.Visits)
				}
				fmt.Fprintf(w, "total\t\t\t%d\n", total)
				if len(r.Index) > 0 {
					whole, err := s.ScopeSummary(cmd.Context(), r.WindowScope(), maxStay)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "the whole window\t\t\t%d\n", registry.CountScope(whole))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().Var(days{&maxStay}, "max-stay", "open visits count as present for this long after check-in")
	settings(cmd.Flags(), "max-stay")
	return cmd
}

func (a *app) requestsNarrowCmd(as *string) *cobra.Command {
	var from, to string
	var n registry.Narrowing
	cmd := &cobra.Command{
		Use:   "narrow ID [--from TIME] [--to TIME] [--site SITE…] [--area AREA…]",
		Short: "Narrow a request to a shorter window, fewer sites or areas before approving it",
		Long: `narrow makes a request smaller, never larger: a window inside its window,
some of its sites, some of its areas. Decisions already signed over the
wider scope are withdrawn; the request is pending again and needs new
signatures. The change is in the audit log; the health office sees the
narrowed scope on its request.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, err := dpoActor(*as)
			if err != nil {
				return err
			}
			if from != "" {
				if n.From, err = parseTime("--from", from); err != nil {
					return err
				}
			}
			if to != "" {
				if n.To, err = parseTime("--to", to); err != nil {
					return err
				}
			}
			if !cmd.Flags().Changed("site") {
				n.Sites = nil
			}
			if !cmd.Flags().Changed("area") {
				n.Areas = nil
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				r, err := s.NarrowTraceRequest(cmd.Context(), actor, args[0], n, a.now())
				if err != nil {
					return err
				}
				return a.showRequest(cmd.Context(), s, r)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "new window start, RFC 3339 (not before the request's)")
	f.StringVar(&to, "to", "", "new window end, RFC 3339 (not after the request's)")
	f.StringSliceVar(&n.Sites, "site", nil, "keep only these sites")
	f.StringSliceVar(&n.Areas, "area", nil, "keep only these areas")
	return cmd
}
