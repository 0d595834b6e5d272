package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
)

// The DPO away from the server: 'registry requests … --server URL
// --token-file FILE' reads the requests over HTTPS with a DPO token and
// posts decisions signed on this computer; 'registry requests statement'
// and 'registry requests sign' carry a statement to a machine without a
// network and its signature back.

// remoteDPO is the registry's DPO API.
type remoteDPO struct {
	base, token string
	client      *http.Client
}

// remote returns the API client when --server is set, nil otherwise.
func (o *requestsOptions) remote() (*remoteDPO, error) {
	if o.server == "" {
		return nil, nil
	}
	u, err := url.Parse(o.server)
	if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1"))) || u.Host == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "--server %q is not the registry's https:// address", o.server), "for example --server https://besuch.musterstadt.de")
	}
	if o.tokenFile == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "--server without --token-file"), "pass --token-file FILE with your DPO token ('registry tokens create --role dpo' at the registry)")
	}
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read the token file: %w", err)
	}
	return &remoteDPO{base: strings.TrimRight(u.String(), "/"), token: strings.TrimSpace(string(b)), client: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request and decodes a 200 answer into out.
func (d *remoteDPO) do(ctx context.Context, method, path string, body any, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, registry.Errorf(registry.EUNAVAILABLE, "The registry at %s cannot be reached: %v", d.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(data, &p)
		code := map[int]string{400: registry.EINVALID, 401: registry.EUNAUTHORIZED, 403: registry.EFORBIDDEN, 404: registry.ENOTFOUND, 409: registry.ECONFLICT}[resp.StatusCode]
		if code == "" {
			code = registry.EUNAVAILABLE
		}
		return nil, registry.Errorf(code, "The registry answered %d: %s", resp.StatusCode, p.Detail)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("the registry's answer does not read: %w", err)
		}
	}
	return data, nil
}

func (d *remoteDPO) request(ctx context.Context, id string) (*httpapi.DPORequest, error) {
	var v httpapi.DPORequest
	_, err := d.do(ctx, "GET", "/v1/dpo/requests/"+url.PathEscape(id), nil, &v)
	return &v, err
}

func (d *remoteDPO) statement(ctx context.Context, id, decision string, exp time.Time) ([]byte, error) {
	q := url.Values{"decision": {decision}}
	if decision == registry.DecisionApprove {
		q.Set("expires_at", exp.UTC().Format(time.RFC3339))
	}
	return d.do(ctx, "GET", "/v1/dpo/requests/"+url.PathEscape(id)+"/statement?"+q.Encode(), nil, nil)
}

// showStatement prints what the approver signs, in German time, with the
// scope's counts when known (visits < 0: unknown).
func (a *app) showStatement(st *registry.Statement, visits int, preview []registry.ScopeCount) {
	w := tabwriter.NewWriter(a.stderr, 0, 4, 2, ' ', 0)
	what := map[string]string{registry.DecisionApprove: "APPROVE (Freigabe)", registry.DecisionReject: "REJECT (Ablehnung)",
		registry.DecisionWithdraw: "WITHDRAW your decision (Rücknahme)"}[st.Decision]
	fmt.Fprintf(w, "You sign:\t%s\n", what)
	when := func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return local(t)
	}
	rows := [][2]string{{"request", st.Request}, {"case reference", escaped(st.CaseRef)}, {"office", escaped(st.Office)},
		{"legal basis", escaped(st.LegalBasis)}, {"origin", st.Origin}, {"window", when(st.From) + " – " + when(st.To)},
		{"sites", strings.Join(st.Sites, ", ")}, {"areas", dash(escaped(strings.Join(st.Areas, ", ")))}}
	if len(st.Hosts) > 0 {
		rows = append(rows, [2]string{"hosts", escaped(strings.Join(st.Hosts, ", "))})
	}
	if len(st.Codes) > 0 {
		rows = append(rows, [2]string{"appointments", strings.Join(st.Codes, ", ")})
	}
	if len(st.Index) > 0 && st.Tolerance != nil && st.MinContact != nil {
		rows = append(rows, [2]string{"index case", fmt.Sprintf("codes %s (%d visits): their companions and whoever stayed with them in the same area, %d minutes before or after, for at least %d minutes",
			strings.Join(st.Index, ", "), len(st.IndexVisits), *st.Tolerance, *st.MinContact)})
		if st.WholeSite != "" {
			rows = append(rows, [2]string{"widened to the site", escaped(st.WholeSite)})
		}
	}
	if st.ExpiresAt != "" {
		rows = append(rows, [2]string{"valid until", when(st.ExpiresAt)})
	}
	if visits >= 0 {
		rows = append(rows, [2]string{"scope", fmt.Sprintf("%d visits", visits)})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %s:\t%s\n", r[0], r[1])
	}
	for _, c := range preview {
		fmt.Fprintf(w, "    %s\t%s\t%s\t%d\n", c.Site, dash(escaped(c.Area)), c.Hour.In(registry.LocalZone).Format("2006-01-02 15:00"), c.Visits)
	}
	w.Flush()
}

// confirmSigning asks on the terminal before a signature is made, unless
// yes or there is no terminal (a script).
func confirmSigning(yes bool) error {
	if yes || !haveTerminal() {
		return nil
	}
	ok, err := confirm("Sign this statement? Type yes: ")
	if err != nil {
		return err
	}
	if !ok {
		return registry.Errorf(registry.EINVALID, "not confirmed; nothing was signed")
	}
	return nil
}

// haveTerminal reports whether a controlling terminal can be asked.
func haveTerminal() bool {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// remoteDecide fetches the statement of a decision from the registry,
// shows it with the scope, asks, signs it here and posts the signature.
func (a *app) remoteDecide(ctx context.Context, d *remoteDPO, id, decision string, exp time.Time, note, keySpec string, yes bool) error {
	k, err := readSigner(keySpec)
	if err != nil {
		return err
	}
	v, err := d.request(ctx, id)
	if err != nil {
		return err
	}
	raw, err := d.statement(ctx, id, decision, exp)
	if err != nil {
		return err
	}
	st, err := registry.ParseStatement(raw)
	if err != nil {
		return err
	}
	// What is signed is what was asked for: this request, this decision,
	// this expiry; a server that answered another statement is refused.
	if st.Request != id || st.Decision != decision || decision == registry.DecisionApprove && !sameTime(st.ExpiresAt, exp) {
		return registry.Errorf(registry.EINVALID, "The registry answered a statement for another request, decision or expiry; nothing was signed.")
	}
	a.showStatement(st, v.Visits, v.Preview)
	if err := confirmSigning(yes); err != nil {
		return err
	}
	sig, err := k.SignStatement(registry.PurposeDecision, raw)
	if err != nil {
		return err
	}
	in := httpapi.DPODecision{Decision: decision, Key: k.PublicKey().ID(), Signature: base64.StdEncoding.EncodeToString(sig), Note: note}
	if decision == registry.DecisionApprove {
		in.ExpiresAt = exp.UTC().Format(time.RFC3339)
	}
	var out httpapi.DPORequest
	if _, err := d.do(ctx, "POST", "/v1/dpo/requests/"+url.PathEscape(id)+"/decision", in, &out); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "request %s: %s, %d of %d approvals\n", out.ID, out.Status, out.Have, out.Need)
	return err
}

func sameTime(s string, t time.Time) bool {
	p, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && p.Equal(t.UTC().Truncate(time.Second))
}

// remoteList prints the requests the registry holds.
func (a *app) remoteList(ctx context.Context, d *remoteDPO, status string) error {
	q := ""
	if status != "" {
		q = "?status=" + url.QueryEscape(status)
	}
	var out httpapi.DPORequests
	if _, err := d.do(ctx, "GET", "/v1/dpo/requests"+q, nil, &out); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tCASE\tOFFICE\tFROM (German)\tTO\tSITES")
	for _, r := range out.Requests {
		st := string(r.Status)
		if r.Status == registry.TracePending || r.Status == registry.TraceApproved {
			st = fmt.Sprintf("%s: %d of %d approvals", r.Status, r.Have, r.Need)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, st, escaped(r.CaseRef), escaped(r.Office), local(r.From), local(r.To), strings.Join(r.Sites, ","))
	}
	return w.Flush()
}

// remoteShow prints one request with its decisions and scope.
func (a *app) remoteShow(ctx context.Context, d *remoteDPO, id string) error {
	v, err := d.request(ctx, id)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	areas := strings.Join(v.Areas, ", ")
	if areas == "" {
		areas = "(all areas)"
	}
	rows := [][2]string{{"id", v.ID}, {"status", fmt.Sprintf("%s: %d of %d approvals", v.Status, v.Have, v.Need)}, {"case reference", escaped(v.CaseRef)},
		{"office", escaped(v.Office)}, {"legal basis", escaped(v.LegalBasis)}, {"contact", escaped(v.Contact)}, {"window from", local(v.From)},
		{"window to", local(v.To)}, {"sites", strings.Join(v.Sites, ", ")}, {"areas", escaped(areas)}, {"origin", v.Origin},
		{"visits in scope", fmt.Sprint(v.Visits)}, {"approval expires", localp(v.ExpiresAt)}, {"exported at", localp(v.ExportedAt)}}
	for _, ap := range v.Approvals {
		rows = append(rows, [2]string{"signed decision", decisionText(ap.Name, ap.Key, ap.Decision, ap.SignedAt, ap.ExpiresAt, ap.Withdrawn)})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
	}
	return w.Flush()
}

// requestsStatementCmd writes a statement to sign offline.
func (a *app) requestsStatementCmd(o *requestsOptions) *cobra.Command {
	var decision, out string
	validFor := DefaultApprovalValidity
	cmd := &cobra.Command{
		Use:   "statement ID --decision approve|reject|withdraw -o FILE",
		Short: "Write the statement of a decision to a file, to sign it on a machine without network",
		Long: `statement writes the exact bytes an approver signs for a decision on the
request (approve: valid for --valid-for from now). Carry the file to the
machine that holds your key and sign it there ('registry requests sign'
or 'ssh-keygen -Y sign -n registry-trace-decision/1 -f KEY FILE'); bring
the signature back through the DPO's web page. With --server it asks the
registry over HTTPS; without, the database.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE")
			}
			exp := a.now().Add(validFor).UTC().Truncate(time.Second)
			var raw []byte
			d, err := o.remote()
			if err != nil {
				return err
			}
			if d != nil {
				raw, err = d.statement(cmd.Context(), args[0], decision, exp)
			} else {
				err = a.withStore(cmd.Context(), func(s registry.Store) error {
					r, err := s.FindTraceRequest(cmd.Context(), args[0])
					if err == nil {
						raw = registry.DecisionStatement(r, decision, exp)
					}
					return err
				})
			}
			if err != nil {
				return err
			}
			if err := writeSecretFile(out, string(raw)); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s: sign it with 'registry requests sign %s --key YOUR-KEY'\n", out, out)
			return err
		},
	}
	cmd.Flags().StringVar(&decision, "decision", registry.DecisionApprove, "approve, reject or withdraw")
	cmd.Flags().DurationVar(&validFor, "valid-for", validFor, "an approval lapses after this long")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the new statement `FILE`")
	return cmd
}

// requestsSignCmd signs a statement file offline.
func (a *app) requestsSignCmd() *cobra.Command {
	var key, out string
	var yes bool
	cmd := &cobra.Command{
		Use:   "sign STATEMENT --key FILE [-o FILE.sig]",
		Short: "Sign a decision statement offline (no database, no network)",
		Long: `sign shows the statement (the case, the window, the places, the decision and
its expiry in German time), asks, and writes the signature file that the
DPO's web page takes back ("Unterschrift hochladen"). The key is your
approver key file or a key in ssh-agent (--key ssh-agent), a FIDO2
security key among them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			st, err := registry.ParseStatement(raw)
			if err != nil {
				return err
			}
			k, err := readSigner(key)
			if err != nil {
				return err
			}
			a.showStatement(st, -1, nil)
			if err := confirmSigning(yes); err != nil {
				return err
			}
			sig, err := k.SignStatement(registry.PurposeDecision, raw)
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0] + ".sig"
			}
			if err := writeSecretFile(out, string(registry.FormatSignatureFile(k.PublicKey(), sig))); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s (key %s)\n", out, k.PublicKey().ID())
			return err
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "your approver key `FILE`, or ssh-agent")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the signature `FILE` (default: STATEMENT.sig)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask before signing")
	return cmd
}
