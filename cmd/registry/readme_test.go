package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeClock is the fixed clock the README's examples are written for:
// their dates (a registration at 08:30 that morning, a trace window four
// days before, an appointment later that day) are valid at this time.
const readmeClock = "2026-11-24T10:00:00+01:00"

// readmeBlock is a ```sh block of the README: its commands (continuation
// lines joined) and the test directive in the HTML comment right before
// it, if any: "skip: REASON" or "exit N" (the exit status its commands
// may have, for example doctor's 1 for warnings).
type readmeBlock struct {
	file      string
	line      int
	directive string
	cmds      []string
}

// readmeDocs are the README and the guides, in the order their commands
// run: each guide may build on what an earlier one set up.
var readmeDocs = []string{"README.md", "docs/operations.md", "docs/api.md", "docs/desk.md", "docs/appointments.md",
	"docs/visitors.md", "docs/dpo.md", "docs/health-office.md"}

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	var out []readmeBlock
	for _, doc := range readmeDocs {
		out = append(out, docBlocks(t, doc)...)
	}
	return out
}

// docBlocks returns the ```sh blocks of one document.
func docBlocks(t *testing.T, doc string) []readmeBlock {
	data, err := os.ReadFile("../../" + doc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []readmeBlock
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		b := readmeBlock{file: doc, line: i + 1}
		for j := i - 1; j >= 0 && j >= i-2; j-- {
			if m := regexp.MustCompile(`<!-- test: (.*?) -->`).FindStringSubmatch(lines[j]); m != nil {
				b.directive = m[1]
			}
		}
		var cur string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			l := strings.TrimSpace(lines[i])
			if cur != "" {
				cur += " "
			}
			if strings.HasSuffix(l, "\\") {
				cur += strings.TrimSuffix(l, "\\")
				continue
			}
			cur += l
			if strings.Count(cur, "'")%2 == 1 { // a quoted JSON body over several lines
				continue
			}
			if c := strings.TrimSpace(cur); c != "" && !strings.HasPrefix(c, "#") {
				b.cmds = append(b.cmds, c)
			}
			cur = ""
		}
		out = append(out, b)
	}
	return out
}

// readmeEnv runs the README's commands as an administrator would type
// them, in a directory of its own: the real binary as "registry", the
// README's paths under the directory, its placeholders (3f2a…, rgc_TA1-…,
// registry-ed25519:…) replaced by what earlier commands printed, the
// example host replaced by the live serve.
type readmeEnv struct {
	t    *testing.T
	bin  string
	dir  string
	env  map[string]string
	vars map[string]string
	srv  *exec.Cmd
	url  string
}

func (e *readmeEnv) environ() []string {
	out := []string{"HOME=" + e.dir, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for k, v := range e.env {
		out = append(out, k+"="+v)
	}
	return out
}

// rewrite maps the README's paths and placeholders to the test's.
func (e *readmeEnv) rewrite(cmd string) string {
	pairs := []string{
		"/var/lib/registry", e.dir + "/var/lib/registry", "/etc/registry", e.dir + "/etc/registry",
		"/media/dsb", e.dir + "/media/dsb", "/media/dpo", e.dir + "/media/dpo", "/var/backups/registry", e.dir + "/backups",
		"https://registry.example.org", e.url,
	}
	for k, v := range e.vars {
		pairs = append(pairs, k, v)
	}
	return strings.NewReplacer(pairs...).Replace(cmd)
}

var (
	captureVisit       = regexp.MustCompile(`"id":"([0-9a-f]{32})","checkout_token":"(rgc_[A-Za-z0-9_-]+)"`)
	captureRequest     = regexp.MustCompile(`(?m)^id: +([0-9a-f]{32})`)
	captureAPIReq      = regexp.MustCompile(`"id":"([0-9a-f]{32})","status":"pending"`)
	capturePub         = regexp.MustCompile(`public key: (registry-ed25519:\S+)\nkey id: ([0-9a-f]{16})`)
	captureToken       = regexp.MustCompile(`created (\S+) token ([0-9a-f]{16})`)
	captureApptCode    = regexp.MustCompile(`(T-[0-9]{4}) +[0-9-]+ +[0-9:]+`)
	captureChange      = regexp.MustCompile(`proposed as change ([0-9a-f]{32})`)
	captureTrustDigest = regexp.MustCompile(`trust file digest: ([0-9a-f-]{29})`)
	captureCase        = regexp.MustCompile(`case ([0-9a-f]{32}): `)
	captureRemote      = regexp.MustCompile(`(?m)^[0-9a-f]{32} +rathaus-musterstadt +([0-9a-f]{32}) `)
)

// personIn names the approver a command is about: carla, bert or anna.
func personIn(cmd string) string {
	for _, who := range []string{"carla", "bert"} {
		if strings.Contains(strings.ToLower(cmd), who) && !strings.Contains(cmd, "--key /media/dsb/"+who) {
			return who
		}
	}
	return "anna"
}

// capture keeps what later commands refer to by a placeholder.
func (e *readmeEnv) capture(cmd, out string) {
	set := func(k, v string) {
		if _, ok := e.vars[k]; !ok {
			e.vars[k] = v
		}
	}
	if m := captureVisit.FindStringSubmatch(out); m != nil {
		set("2b5b…", m[1])
		set("rgc_TA1-…", m[2])
	}
	if m := captureRequest.FindStringSubmatch(out); m != nil && strings.Contains(cmd, "requests create") {
		if strings.Contains(cmd, "GA-2026-0820") {
			set("9b7e…", m[1])
		}
		set("3f2a…", m[1])
	}
	if m := captureAPIReq.FindStringSubmatch(out); m != nil {
		set("8c4d…", m[1])
	}
	if m := capturePub.FindStringSubmatch(out); m != nil {
		who := personIn(cmd)
		e.vars["registry-ed25519:…"+who] = m[1]
		e.vars["key:"+who] = m[2]
	}
	if m := captureChange.FindStringSubmatch(out); m != nil {
		e.vars["5e0c…"] = m[1]
	}
	if m := captureToken.FindAllStringSubmatch(out, -1); m != nil {
		e.vars["4f1c2a9e0b7d3c11"] = m[len(m)-1][2] // revoke the newest
	}
	if m := captureApptCode.FindStringSubmatch(out); m != nil && strings.Contains(cmd, "appointments add") {
		e.vars["T-4711"] = m[1]
	}
	if m := captureTrustDigest.FindStringSubmatch(out); m != nil && strings.Contains(cmd, "office registries add") {
		e.vars["e931-…"] = m[1]
	}
	if m := captureCase.FindStringSubmatch(out); m != nil {
		e.vars["7d1e…"] = m[1]
	}
	if m := captureRemote.FindStringSubmatch(out); m != nil && strings.Contains(cmd, "office cases show") {
		e.vars["6a0b…"] = m[1]
	}
}

// keyPlaceholders gives each "registry-ed25519:…" of a command the key of
// the person it names, and the removal example Bert's key id.
func (e *readmeEnv) keyPlaceholders(cmd string) string {
	cmd = strings.ReplaceAll(cmd, "registry-ed25519:…", e.vars["registry-ed25519:…"+personIn(cmd)])
	return strings.ReplaceAll(cmd, "9405f585d300d005", e.vars["key:bert"])
}

func (e *readmeEnv) run(b readmeBlock, cmd string) {
	t := e.t
	t.Helper()
	switch {
	case strings.HasPrefix(cmd, "export "):
		name, value, _ := strings.Cut(strings.Fields(cmd)[1], "=")
		e.env[name] = strings.Trim(e.rewrite(value), `'"`)
		return
	case strings.HasPrefix(cmd, "registry serve"):
		e.serve(b, cmd)
		return
	case strings.HasPrefix(cmd, "registry office serve"):
		e.officeServe(b, cmd)
		return
	}
	full := e.rewrite(e.keyPlaceholders(cmd))
	if strings.HasPrefix(cmd, "curl ") {
		full += ` -w '\n[http %{http_code}]'` // the status, also of a download into a file
	}
	if strings.Contains(full, "…") {
		t.Errorf("%s line %d: %q has a placeholder the test cannot fill", b.file, b.line, cmd)
		return
	}
	c := exec.Command("bash", "-c", full)
	c.Dir, c.Env = e.dir, e.environ()
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	e.capture(cmd, out.String())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s line %d: %v", b.file, b.line, err)
	}
	allowed := "exit " + fmt.Sprint(code)
	if code != 0 && b.directive != allowed {
		t.Errorf("%s line %d: %s\nexit status %d:\n%s", b.file, b.line, cmd, code, out.String())
	}
	if strings.HasPrefix(cmd, "curl") && regexp.MustCompile(`\[http [45][0-9][0-9]\]|\[http 000\]`).MatchString(out.String()) {
		t.Errorf("%s line %d: %s\nanswered an error:\n%s", b.file, b.line, cmd, out.String())
	}
}

// serve starts the README's serve command in the background, on a free
// port instead of the README's.
func (e *readmeEnv) serve(b readmeBlock, cmd string) {
	t := e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := strings.Fields(strings.Replace(e.rewrite(cmd), "127.0.0.1:8080", addr, 1))
	e.srv = exec.Command(filepath.Join(e.bin, "registry"), args[1:]...)
	e.srv.Dir, e.srv.Env = e.dir, e.environ()
	var log bytes.Buffer
	e.srv.Stdout, e.srv.Stderr = &log, &log
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.srv.Process.Signal(os.Interrupt)
		e.srv.Wait()
		if strings.Contains(log.String(), "Mustermann") {
			t.Errorf("serve's log holds contact data")
		}
	})
	e.url = "http://" + addr
	for range 100 {
		if resp, err := http.Get(e.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s line %d: serve did not become ready:\n%s", b.file, b.line, log.String())
}

// officeServe starts the README's workspace in the background on a free
// port, checks that it answers, and stops it at the end.
func (e *readmeEnv) officeServe(b readmeBlock, cmd string) {
	t := e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, _, _ = strings.Cut(cmd, " #")
	args := append(strings.Fields(e.rewrite(cmd))[1:], "--listen", addr)
	srv := exec.Command(filepath.Join(e.bin, "registry"), args...)
	srv.Dir, srv.Env = e.dir, e.environ()
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(os.Interrupt); srv.Wait() })
	for range 100 {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), "GA-2026-0950") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s line %d: the workspace did not show its case:\n%s", b.file, b.line, log.String())
}

// TestREADME runs every command and curl block of the README, in order,
// against the real binary and a live serve, with the fixed clock the
// examples are written for. A block that cannot run here (installing
// system packages and units) says so in a "test: skip" comment.
func TestREADME(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, d := range []string{"var/lib/registry", "etc/registry", "media/dsb", "media/dpo", "backups"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// What the health office sends and the staff's calendar export.
	office := exec.Command(filepath.Join(bin, "registry"), "keygen", "-o", filepath.Join(dir, "gesundheitsamt.key"))
	rcpt, err := office.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "etc/registry/recipients.txt"), rcpt, 0o644)
	ics, err := os.ReadFile("../../registry/ical/testdata/thunderbird.ics")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bauamt.ics"), bytes.ReplaceAll(ics, []byte("20261103"), []byte("20261124")), 0o644)
	os.WriteFile(filepath.Join(dir, "passphrase.txt"), []byte("Kennwort der Datenschutzbeauftragten\n"), 0o600)
	e := &readmeEnv{t: t, bin: bin, dir: dir, vars: map[string]string{}, env: map[string]string{
		"PATH": bin + ":" + os.Getenv("PATH"), "REGISTRY_TEST_NOW": readmeClock,
		"REGISTRY_PASSPHRASE_FILE": filepath.Join(dir, "passphrase.txt"),
	}}
	ran, skipped := 0, 0
	for _, b := range readmeBlocks(t) {
		if reason, ok := strings.CutPrefix(b.directive, "skip: "); ok {
			t.Logf("%s line %d skipped: %s", b.file, b.line, reason)
			skipped++
			continue
		}
		for _, c := range b.cmds {
			e.run(b, c)
			ran++
		}
	}
	t.Logf("ran %d README commands; %d blocks skipped with a reason", ran, skipped)
	// What the examples promise came out.
	for _, f := range []string{"aushang-rathaus.pdf", "GA-2026-0815.registry-export.age", "kontakte.xlsx", "kontakte.pdf",
		"kontakte.csv", "sormas.csv", "iris-gaeste.json", "GA-2026-0900.registry-export.age", "rathaus.trust", "etc/registry/recipients.txt.sig",
		"media/dsb/GA-2026-0820.statement.json.sig", "media/dsb/loeschbescheinigung-2026-09.pdf"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("the README's examples did not write %s (%v)", f, err)
		}
	}
	if csv, _ := os.ReadFile(filepath.Join(dir, "kontakte.csv")); !bytes.Contains(csv, []byte("Mustermann")) {
		t.Errorf("the decrypted list of the README's example lacks the registered visitor")
	}
}
