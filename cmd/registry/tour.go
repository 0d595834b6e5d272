package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
)

func (a *app) demoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The demo installation of 'make run'",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.demoTourCmd())
	return cmd
}

func (a *app) demoTourCmd() *cobra.Command {
	var server, dir string
	cmd := &cobra.Command{
		Use:   "tour [--server http://127.0.0.1:8080]",
		Short: "Walk through the whole story on the demo installation, printing each step",
		Long: `tour goes once through what the registry is for, on the demo installation
that 'make run' serves (start it first, in another terminal): visitors are
registered at the desk's API, the health office files a trace request,
two approvers sign it, the health office downloads the export and decrypts
it into a workbook you can open. Each step prints the command or request
it makes, so that you can repeat it by hand.

The demo's health-office identity lies next to the data it opens: never
use demo mode for real visitors.`,
		Example: `  make run                  # in one terminal
  bin/registry demo tour    # in another`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTour(cmd.Context(), strings.TrimRight(server, "/"), dir)
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://127.0.0.1:8080", "the address 'make run' serves at")
	cmd.Flags().StringVar(&dir, "demo-dir", "data", "the demo installation's directory ('make run': data)")
	return cmd
}

// tour is one walk through the demo.
type tour struct {
	a      *app
	ctx    context.Context
	server string
	dir    string
	env    []string
	step   int
	client *http.Client
}

func (a *app) runTour(ctx context.Context, server, dir string) error {
	t := &tour{a: a, ctx: ctx, server: server, dir: dir, client: &http.Client{Timeout: 30 * time.Second},
		env: append(os.Environ(), "REGISTRY_DB="+a.db, "REGISTRY_KEYSTORE="+filepath.Join(dir, demoKeystore),
			"REGISTRY_RECIPIENTS="+filepath.Join(dir, demoRecipients), "REGISTRY_AS=demo")}
	if resp, err := t.client.Get(server + "/readyz"); err != nil {
		return withHint(fmt.Errorf("the demo does not answer at %s: %w", server, err), "start it first with 'make run' in another terminal (or pass --server)")
	} else {
		resp.Body.Close()
	}
	intake, err := readTrimmed(filepath.Join(dir, demoToken))
	if err != nil {
		return withHint(err, "the tour runs on the demo installation of 'make run'; pass --demo-dir where it keeps its files")
	}

	t.say("Three visitors arrive at the Rathaus; the desk (or a kiosk) registers them. Their contact data is sealed for the health office before it is stored.")
	now := a.now()
	for i, v := range []struct{ given, family, area string }{{"Erika", "Mustermann", "Bürgerbüro"}, {"Max", "Musterfrau", "Bürgerbüro"}, {"Ayşe", "Yılmaz", "Standesamt"}} {
		body := fmt.Sprintf(`{"site":"rathaus","area":%q,"given_name":%q,"family_name":%q,"street":"Heidestraße","house_number":"17","postcode":"51147","city":"Köln","phone":"+49 221 123456%d","check_in":%q}`,
			v.area, v.given, v.family, i, now.Add(time.Duration(-50+15*i)*time.Minute).UTC().Format(time.RFC3339))
		if _, err := t.http("POST", "/v1/visits", intake, body, 201); err != nil {
			return err
		}
	}

	t.say("The health office gets a token of its own (IT creates it once).")
	officeToken := filepath.Join(dir, "demo-office.token")
	if _, err := os.Stat(officeToken); err != nil {
		if _, err := t.run("tokens", "create", "--role", "health-office", "--office", "demo-gesundheitsamt", "--label", "Demo-Gesundheitsamt", "-o", officeToken); err != nil {
			return err
		}
	}
	office, err := readTrimmed(officeToken)
	if err != nil {
		return err
	}

	t.say("An infected person was in the Rathaus in the last hour. The health office files a trace request for that window.")
	ref := "DEMO-" + now.In(registry.LocalZone).Format("150405") + "-" + registry.NewID()[:4]
	req := fmt.Sprintf(`{"case_ref":%q,"office":"Demo-Gesundheitsamt","legal_basis":"§ 25 IfSG","contact":"Demo-Sachbearbeitung","from":%q,"to":%q,"sites":["rathaus"]}`,
		ref, now.Add(-90*time.Minute).UTC().Format(time.RFC3339), now.Add(-time.Minute).UTC().Format(time.RFC3339))
	out, err := t.http("POST", "/v1/trace-requests", office, req, 201)
	if err != nil {
		return err
	}
	var filed struct{ ID string }
	if err := json.Unmarshal(out, &filed); err != nil || !registry.ValidID(filed.ID) {
		return fmt.Errorf("the registry answered no request id: %s", out)
	}

	t.say("Two approvers (the data-protection officer and a deputy) have keys of their own; the second is added with the first one's signature.")
	anna, bert := filepath.Join(dir, "demo-approver-anna.key"), filepath.Join(dir, "demo-approver-bert.key")
	for _, p := range []struct{ key, name string }{{anna, "Anna (Demo-DSB)"}, {bert, "Bert (Demo-Vertretung)"}} {
		if _, err := os.Stat(p.key); err == nil {
			continue // added on an earlier tour
		}
		out, err := t.run("approvers", "keygen", "-o", p.key)
		if err != nil {
			return err
		}
		pub := regexp.MustCompile(`public key: (\S+)`).FindStringSubmatch(out)
		if pub == nil {
			return fmt.Errorf("approvers keygen printed no public key")
		}
		args := []string{"approvers", "add", p.name, "--public-key", pub[1]}
		if p.key == bert {
			args = append(args, "--key", anna)
		}
		if _, err := t.run(args...); err != nil {
			return err
		}
	}

	t.say("Before signing, an approver sees what the request would disclose, without any personal data.")
	if _, err := t.run("requests", "preview", filed.ID); err != nil {
		return err
	}
	t.say("Both sign the request with their own keys (a request from the health office needs one; here both sign).")
	for _, key := range []string{anna, bert} {
		if _, err := t.run("requests", "approve", filed.ID, "--key", key, "--yes"); err != nil {
			return err
		}
	}

	t.say("The health office downloads the export: one file, sealed to its own key.")
	bundle := filepath.Join(dir, ref+".registry-export.age")
	data, err := t.http("GET", "/v1/trace-requests/"+filed.ID+"/export", office, "", 200)
	if err != nil {
		return err
	}
	if err := os.WriteFile(bundle, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(t.a.stdout, "    wrote %s (%d bytes)\n", bundle, len(data))

	t.say("It pins the registry's keys once (the trust file) and decrypts the export on its own machine into a workbook.")
	trust := filepath.Join(dir, "demo.trust")
	os.Remove(trust) // the approvers may have changed since the last tour
	if _, err := t.run("trust", "export", "-o", trust); err != nil {
		return err
	}
	book := filepath.Join(dir, "kontakte-"+ref+".xlsx")
	if _, err := t.run("decrypt", "--identity", filepath.Join(dir, demoIdentity), "--trust", trust, "-o", book, bundle); err != nil {
		return err
	}
	t.say("Done. Open the workbook with LibreOffice or Excel: " + book + "\nEverything above is in the audit log: registry audit list")
	return nil
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// say prints the next step's explanation.
func (t *tour) say(what string) {
	t.step++
	fmt.Fprintf(t.a.stdout, "\n%d. %s\n", t.step, what)
}

// run runs the registry with args, printing the command and its output.
func (t *tour) run(args ...string) (string, error) {
	fmt.Fprintf(t.a.stdout, "  $ registry %s\n", strings.Join(quoteArgs(args), " "))
	self, _ := os.Executable()
	cmd := exec.CommandContext(t.ctx, self, args...)
	cmd.Env = t.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		fmt.Fprintf(t.a.stdout, "    %s\n", line)
	}
	if err != nil {
		return out.String(), fmt.Errorf("registry %s: %w", args[0], err)
	}
	return out.String(), nil
}

// http sends a request with the bearer token, printing it and its status.
func (t *tour) http(method, path, token, body string, want int) ([]byte, error) {
	fmt.Fprintf(t.a.stdout, "  %s %s%s\n", method, t.server, path)
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.ctx, method, t.server+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(t.a.stdout, "    HTTP %d\n", resp.StatusCode)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s answered %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	return data, nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, s := range args {
		if strings.ContainsAny(s, " ()'\"") {
			s = "'" + s + "'"
		}
		out[i] = s
	}
	return out
}
