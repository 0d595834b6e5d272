package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/mail/mailtest"
)

// runErr runs the binary and returns its output and error.
func (w *officeWorld) runErr(env []string, args ...string) (string, error) {
	cmd := exec.Command(w.bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// fileRequest files a trace request at r as its health office and returns
// its id.
func fileRequest(t *testing.T, r *officeRegistry, ref string) string {
	t.Helper()
	token, _ := os.ReadFile(r.officeToken)
	body := `{"case_ref":"` + ref + `","office":"Gesundheitsamt Musterstadt","legal_basis":"§ 25 IfSG","contact":"Frau Beispiel",` +
		`"from":"2026-11-24T08:00:00+01:00","to":"2026-11-24T10:30:00+01:00","sites":["rathaus"]}`
	req, _ := http.NewRequest("POST", r.url+"/v1/trace-requests", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := faultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("file a request: %v %v", resp, err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&out)
	return out.ID
}

// export downloads a request's export as the health office.
func downloadExport(t *testing.T, r *officeRegistry, id string) int {
	t.Helper()
	token, _ := os.ReadFile(r.officeToken)
	req, _ := http.NewRequest("GET", r.url+"/v1/trace-requests/"+id+"/export", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := faultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRemoteApproval: the DPO approves from a computer of their own over
// HTTPS with a DPO token: the statement comes from the registry, is shown
// and signed there (a key file, and a key held by an ssh-agent started
// here), and the export counts the approval. A signature over a changed
// statement, and a key the registry does not know, are refused.
func TestRemoteApproval(t *testing.T) {
	w := newOfficeWorld(t)
	hall := w.hall
	dpoToken := filepath.Join(w.dir, "dpo.token")
	w.run(hall.env, "tokens", "create", "--role", "dpo", "--label", "DSB zu Hause", "-o", dpoToken)
	// The DPO's computer: no database, no key store, only the token and the key.
	home := t.TempDir()
	key := filepath.Join(home, "dsb.key")
	data, _ := os.ReadFile(hall.approverKey)
	os.WriteFile(key, data, 0o600)
	dpo := append(slices.Clone(os.Environ()), "HOME="+home, "REGISTRY_SERVER="+hall.url, "REGISTRY_TOKEN_FILE="+dpoToken, "REGISTRY_TEST_NOW="+officeClock,
		"REGISTRY_DB="+filepath.Join(home, "no-database-here.db"))

	id := fileRequest(t, hall, "GA-2026-0960")
	list := w.run(dpo, "requests", "list", "--status", "pending")
	if !strings.Contains(list, id+"  pending: 0 of 1 approvals  GA-2026-0960") {
		t.Errorf("remote list:\n%s", list)
	}
	show := w.run(dpo, "requests", "show", id)
	for _, want := range []string{`contact: +Frau Beispiel`, `visits in scope: +2`, `window from: +2026-11-24 08:00 CET`} {
		if !regexp.MustCompile(want).MatchString(show) {
			t.Errorf("remote show lacks %q:\n%s", want, show)
		}
	}

	// A key that cannot be read signs nothing.
	other := fileRequest(t, hall, "GA-2026-0961")
	out, err := w.runErr(dpo, "requests", "approve", other, "--key", "/nonexistent")
	if err == nil || !strings.Contains(out, "/nonexistent") {
		t.Errorf("approve with a missing key file: %v\n%s", err, out)
	}

	out = w.run(dpo, "requests", "approve", id, "--key", key)
	if !strings.Contains(out, "request "+id+": approved, 1 of 1 approvals") {
		t.Fatalf("remote approve:\n%s", out)
	}
	if st := downloadExport(t, hall, id); st != 200 {
		t.Errorf("export after the remote approval: %d", st)
	}

	// Offline: the statement to a file, signed without network or
	// database, the signature checked by the registry; a changed statement
	// is refused.
	stmt := filepath.Join(home, "statement.json")
	w.run(dpo, "requests", "statement", other, "--decision", "approve", "-o", stmt)
	offline := append(slices.Clone(os.Environ()), "HOME="+home, "REGISTRY_DB="+filepath.Join(home, "nothing.db"), "REGISTRY_TEST_NOW="+officeClock)
	out = w.run(offline, "requests", "sign", stmt, "--key", key)
	if !strings.Contains(out, "wrote "+stmt+".sig") {
		t.Fatalf("offline sign:\n%s", out)
	}
	sig, _ := os.ReadFile(stmt + ".sig")
	if !bytes.HasPrefix(sig, []byte("registry-signature ")) {
		t.Errorf("signature file: %q", sig)
	}
	raw, _ := os.ReadFile(stmt)
	changed := bytes.Replace(raw, []byte(`"sites":["rathaus"]`), []byte(`"sites":["rathaus","bauamt"]`), 1)
	os.WriteFile(stmt+".changed", changed, 0o600)
	w.run(offline, "requests", "sign", stmt+".changed", "--key", key)
	if code := postSignature(t, hall, dpoToken, other, stmt+".changed", stmt+".changed.sig"); code != 403 {
		t.Errorf("a signature over a changed statement: %d, want 403", code)
	}
	if code := postSignature(t, hall, dpoToken, other, stmt, stmt+".sig"); code != 200 {
		t.Errorf("the offline signature: %d, want 200", code)
	}
	if st := downloadExport(t, hall, other); st != 200 {
		t.Errorf("export after the offline approval: %d", st)
	}
	audit := w.run(hall.env, "audit", "list", "--action", "request.approval_refused")
	if !strings.Contains(audit, "signature does not verify") {
		t.Errorf("the refused signature is not in the audit log:\n%s", audit)
	}

	// A key held by ssh-agent, registered as a second person's.
	agentSock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", agentSock)
	if err := agent.Start(); err != nil {
		t.Fatalf("ssh-agent: %v (scripts/test-deps installs openssh-client)", err)
	}
	t.Cleanup(func() { agent.Process.Signal(syscall.SIGTERM); agent.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(agentSock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not start")
		}
	}
	sshKey := filepath.Join(home, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bert@dsb", "-f", sshKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command("ssh-add", sshKey)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+agentSock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(sshKey + ".pub")
	w.run(hall.env, "approvers", "add", "Bert Meier (stv. DSB)", "--public-key", strings.TrimSpace(string(pub)), "--key", hall.approverKey)
	third := fileRequest(t, hall, "GA-2026-0962")
	out = w.run(append(slices.Clone(dpo), "SSH_AUTH_SOCK="+agentSock), "requests", "approve", third, "--key", "ssh-agent")
	if !strings.Contains(out, "approved, 1 of 1 approvals") {
		t.Fatalf("approve with ssh-agent:\n%s", out)
	}
	show = w.run(dpo, "requests", "show", third)
	if !regexp.MustCompile(`signed decision: +Bert Meier \(stv. DSB\) \(key [0-9a-f]{16}\)`).MatchString(show) {
		t.Errorf("the ssh-agent approval is not Bert's:\n%s", show)
	}
}

// postSignature posts an offline signature through the API.
func postSignature(t *testing.T, r *officeRegistry, tokenFile, id, stmtFile, sigFile string) int {
	t.Helper()
	raw, _ := os.ReadFile(stmtFile)
	sig, _ := os.ReadFile(sigFile)
	var st struct {
		Decision  string `json:"decision"`
		ExpiresAt string `json:"expires_at"`
	}
	json.Unmarshal(raw, &st)
	f := strings.Fields(string(sig)) // registry-signature KEYID BASE64
	exp, _ := time.Parse(time.RFC3339Nano, st.ExpiresAt)
	body, _ := json.Marshal(map[string]string{"decision": st.Decision, "expires_at": exp.Format(time.RFC3339), "key": f[1], "signature": f[2]})
	token, _ := os.ReadFile(tokenFile)
	req, _ := http.NewRequest("POST", r.url+"/v1/dpo/requests/"+id+"/decision", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := faultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDPOAlertMail: a request filed at a registry that knows the DPO's
// address reaches the DPO by e-mail over STARTTLS (a real SMTP server),
// naming the case reference and the link, never a visitor's data; the
// registry's alert list shows it delivered.
func TestDPOAlertMail(t *testing.T) {
	smtp := mailtest.Start(t)
	w := newOfficeWorldEnv(t, "REGISTRY_SMTP="+smtp.URL, "REGISTRY_SMTP_CA="+smtp.CAFile, "REGISTRY_SMTP_FROM=register@musterstadt.example",
		"REGISTRY_NOTIFY_DPO=datenschutz@musterstadt.example", "REGISTRY_PUBLIC_URL=https://register.musterstadt.example")
	id := fileRequest(t, w.hall, "GA-2026-0977")
	var subject, body string
	for _, raw := range smtp.Wait(t, 1) {
		if s, b := mailtest.Decode(t, raw); strings.Contains(s, "GA-2026-0977") {
			subject, body = s, b
			if !strings.Contains(raw, "datenschutz@musterstadt.example") {
				t.Errorf("the mail is not addressed to the DPO:\n%s", raw)
			}
		}
	}
	if subject == "" {
		t.Fatalf("no mail names the case GA-2026-0977")
	}
	if !strings.Contains(body, "https://register.musterstadt.example/dpo/requests/"+id) || !strings.Contains(body, "Gesundheitsamt Musterstadt") {
		t.Errorf("the mail lacks the link or the office:\n%s", body)
	}
	for _, secret := range []string{"Erika", "Max", "Mustermann", "Heidestraße", "51147", "Köln", "1234567", "7654321", "Frau Beispiel"} {
		if strings.Contains(subject+body, secret) {
			t.Errorf("the mail holds %q:\n%s\n%s", secret, subject, body)
		}
	}
}
