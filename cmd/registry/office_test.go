package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/cityhall/registry/crypto"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// officeClock is the clock of the workspace tests: the morning of the
// visits.
const officeClock = "2026-11-24T10:00:00Z"

// officeRegistry is one registry of a workspace test: a real serve
// process with its database, key store, office token, approver key and
// trust file.
type officeRegistry struct {
	visits             map[string]string // visit ids by the name of the test's visitor
	name, url, dir, db string
	officeToken, trust string
	digest             string
	approverKey        string
	env                []string
}

// officeWorld is the health office's identity (protected with a
// passphrase) and two registries holding the visits of one case.
type officeWorld struct {
	t           *testing.T
	bin, dir    string
	identity    string
	passphrase  string
	hall, lib   *officeRegistry
	commonEnv   []string
	serveProcs  []*exec.Cmd
	serveStderr []*lockedBuffer
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run runs the binary with env and returns its standard output.
func (w *officeWorld) run(env []string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command(w.bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("registry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func newOfficeWorld(t *testing.T) *officeWorld { return newOfficeWorldEnv(t) }

// newOfficeWorldEnv is newOfficeWorld with env added to every registry's
// environment.
func newOfficeWorldEnv(t *testing.T, env ...string) *officeWorld {
	t.Helper()
	w := &officeWorld{t: t, bin: filepath.Join(buildBinary(t), "registry"), dir: t.TempDir(), passphrase: "Amt-Kennwort-2026"}
	pass := filepath.Join(w.dir, "passphrase")
	os.WriteFile(pass, []byte(w.passphrase+"\n"), 0o600)
	w.identity = filepath.Join(w.dir, "gesundheitsamt.key")
	w.commonEnv = append(append(os.Environ(), "REGISTRY_TEST_NOW="+officeClock, "REGISTRY_AS=it"), env...)
	rcpt := w.run(append(slices.Clone(w.commonEnv), "REGISTRY_PASSPHRASE_FILE="+pass), "keygen", "--protect", "-o", w.identity)
	os.WriteFile(filepath.Join(w.dir, "recipients.txt"), []byte(rcpt), 0o644)
	w.hall = w.registry("Rathaus Musterstadt", "rathaus", []string{"Bürgerbüro", "Standesamt"}, map[string]string{
		"erika": `{"site":"rathaus","area":"Bürgerbüro","given_name":"Erika","family_name":"Mustermann","street":"Heidestraße","house_number":"17","postcode":"51147","city":"Köln","phone":"+49 221 1234567","check_in":"2026-11-24T08:30:00+01:00","check_out":"2026-11-24T09:15:00+01:00"}`,
		"max":   `{"site":"rathaus","area":"Standesamt","given_name":"Max","family_name":"Mustermann","street":"Heidestraße","house_number":"17","postcode":"51147","city":"Köln","phone":"+49 221 7654321","check_in":"2026-11-24T08:40:00+01:00"}`,
	})
	w.lib = w.registry("Stadtbibliothek", "bibliothek", []string{"Lesesaal und Zeitschriftenarchiv im Obergeschoss"}, map[string]string{
		"erika": `{"site":"bibliothek","area":"Lesesaal und Zeitschriftenarchiv im Obergeschoss","given_name":"Erika","family_name":"Mustermann","street":"Heidestraße","house_number":"17","postcode":"51147","city":"Köln","phone":"0221 1234567","check_in":"2026-11-24T09:30:00+01:00","check_out":"2026-11-24T10:00:00+01:00"}`,
		"lisa":  `{"site":"bibliothek","area":"Lesesaal und Zeitschriftenarchiv im Obergeschoss","given_name":"Lisa","family_name":"Schmidt","street":"Ringstraße","house_number":"3","postcode":"50667","city":"Köln","phone":"+49 221 5555555","check_in":"2026-11-24T09:40:00+01:00","check_out":"2026-11-24T09:50:00+01:00"}`,
	})
	return w
}

// registry sets up and starts one registry with the visits.
func (w *officeWorld) registry(name, site string, areas []string, visits map[string]string) *officeRegistry {
	t := w.t
	r := &officeRegistry{name: name, dir: filepath.Join(w.dir, site)}
	os.MkdirAll(r.dir, 0o700)
	r.db = filepath.Join(r.dir, "registry.db")
	addr := freeAddr(t)
	r.url = "http://" + addr
	r.env = append(slices.Clone(w.commonEnv), "REGISTRY_DB="+r.db, "REGISTRY_KEYSTORE="+filepath.Join(r.dir, "keys"),
		"REGISTRY_RECIPIENTS="+filepath.Join(w.dir, "recipients.txt"), "REGISTRY_LISTEN="+addr)
	w.run(r.env, "migrate")
	args := []string{"sites", "add", site, "--name", name}
	for _, a := range areas {
		args = append(args, "--area", a)
	}
	w.run(r.env, args...)
	intake := filepath.Join(r.dir, "intake.token")
	w.run(r.env, "tokens", "create", "--role", "intake", "-o", intake)
	r.officeToken = filepath.Join(r.dir, "office.token")
	w.run(r.env, "tokens", "create", "--role", "health-office", "--office", "ga-musterstadt", "-o", r.officeToken)
	r.approverKey = filepath.Join(r.dir, "dsb.key")
	out := w.run(r.env, "approvers", "keygen", "-o", r.approverKey)
	pub := regexp.MustCompile(`public key: (\S+)`).FindStringSubmatch(out)[1]
	w.run(r.env, "approvers", "add", "DSB "+name, "--public-key", pub)
	r.trust = filepath.Join(r.dir, site+".trust")
	out = w.run(r.env, "trust", "export", "-o", r.trust)
	r.digest = regexp.MustCompile(`digest ([0-9a-f-]+) `).FindStringSubmatch(out)[1]
	var stderr lockedBuffer
	srv := exec.Command(w.bin, "serve")
	srv.Env, srv.Stderr = r.env, &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	waitHTTP(t, r.url+"/readyz", &stderr)
	token, _ := os.ReadFile(intake)
	r.visits = map[string]string{}
	for who, body := range visits {
		req, _ := http.NewRequest("POST", r.url+"/v1/visits", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := faultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("register at %s: %v %v", name, resp, err)
		}
		var created struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		r.visits[who] = created.ID
	}
	return r
}

// approve approves the registry's pending request (there is one).
func (w *officeWorld) approve(r *officeRegistry) {
	w.t.Helper()
	out := w.run(r.env, "requests", "list", "--status", "pending")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{32}) `).FindStringSubmatch(out)
	if m == nil {
		w.t.Fatalf("no pending request at %s:\n%s", r.name, out)
	}
	w.run(r.env, "requests", "approve", m[1], "--key", r.approverKey)
}

// waitHTTP waits until url answers 200.
func waitHTTP(t testing.TB, url string, log *lockedBuffer) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer:\n%s", url, log.String())
		}
	}
}

// workspace starts 'registry office serve' with extra arguments and
// returns its URL.
func (w *officeWorld) workspace(dir string, extra ...string) (string, []string, *lockedBuffer) {
	w.t.Helper()
	addr := freeAddr(w.t)
	env := append(slices.Clone(w.commonEnv), "REGISTRY_WORKSPACE="+dir, "REGISTRY_IDENTITY="+w.identity, "REGISTRY_OFFICE_NAME=Gesundheitsamt Musterstadt",
		"REGISTRY_AS=Frau Beispiel")
	var stderr lockedBuffer
	cmd := exec.Command(w.bin, append([]string{"office", "serve", "--listen", addr}, extra...)...)
	cmd.Env, cmd.Stderr = env, &stderr
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	waitHTTP(w.t, "http://"+addr+"/healthz", &stderr)
	return "http://" + addr, env, &stderr
}

// faultProxy stands between the workspace and a registry and breaks what
// the test asks it to: the answer to a filed request (after the registry
// stored it), every request with 503, or an export's body half-way.
type faultProxy struct {
	target string
	mu     sync.Mutex
	mode   string // "", "lose-answer", "unavailable", "cut-download"
	seen   map[string]int
}

func (p *faultProxy) set(mode string) { p.mu.Lock(); p.mode = mode; p.mu.Unlock() }

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	mode := p.mode
	p.seen[r.Method+" "+r.URL.Path]++
	p.mu.Unlock()
	if mode == "unavailable" {
		http.Error(w, `{"detail":"restarting"}`, http.StatusServiceUnavailable)
		return
	}
	req, _ := http.NewRequest(r.Method, p.target+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	lose := mode == "lose-answer" && r.Method == "POST" && r.URL.Path == "/v1/trace-requests"
	cut := mode == "cut-download" && strings.HasSuffix(r.URL.Path, "/export") && resp.StatusCode == 200
	if lose || cut {
		// The registry did its part; the workspace hears nothing whole.
		hj, _ := w.(http.Hijacker)
		conn, buf, _ := hj.Hijack()
		if cut {
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\nRepr-Digest: %s\r\n\r\n", resp.Header.Get("Content-Length"), resp.Header.Get("Repr-Digest"))
			io.CopyN(buf, resp.Body, 100)
			buf.Flush()
		}
		conn.Close()
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// TestOfficeSyncFaults: the workspace over an unreliable network. A filed
// request whose answer is lost is found at the registry, not filed twice;
// a registry answering 503 is asked again later; an export download that
// breaks off after the registry recorded it is marked lost, filed again,
// approved again and downloaded.
func TestOfficeSyncFaults(t *testing.T) {
	w := newOfficeWorld(t)
	proxy := &faultProxy{target: w.hall.url, seen: map[string]int{}}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	env := append(slices.Clone(w.commonEnv), "REGISTRY_WORKSPACE="+filepath.Join(w.dir, "ws"), "REGISTRY_IDENTITY="+w.identity,
		"REGISTRY_OFFICE_NAME=Gesundheitsamt Musterstadt", "REGISTRY_PASSPHRASE_FILE="+filepath.Join(w.dir, "passphrase"))
	w.run(env, "office", "registries", "add", "Rathaus Musterstadt", "--url", ps.URL, "--token-file", w.hall.officeToken, "--trust", w.hall.trust)
	w.run(env, "office", "registries", "confirm", "rathaus-musterstadt", w.hall.digest)
	out := w.run(env, "office", "cases", "create", "--ref", "GA-2026-0901", "--legal-basis", "§ 25 IfSG", "--contact", "Frau Beispiel",
		"--from", "2026-11-24T08:00:00+01:00", "--to", "2026-11-24T10:30:00+01:00", "--ask", "rathaus-musterstadt")
	caseID := regexp.MustCompile(`case ([0-9a-f]{32})`).FindStringSubmatch(out)[1]

	// The answer to the filing is lost: the sync says it will try again,
	// the next one finds the request at the registry.
	proxy.set("lose-answer")
	out = w.run(env, "office", "sync")
	if !strings.Contains(out, "rathaus-musterstadt\tfiling\tDas Register war nicht erreichbar") {
		t.Fatalf("sync with the answer lost:\n%s", out)
	}
	proxy.set("")
	if out = w.run(env, "office", "sync"); !strings.Contains(out, "rathaus-musterstadt\tpending") {
		t.Fatalf("sync after the lost answer:\n%s", out)
	}
	if n := proxy.seen["POST /v1/trace-requests"]; n != 1 {
		t.Errorf("filed %d times, want once", n)
	}
	list := w.run(w.hall.env, "requests", "list")
	if n := strings.Count(list, "GA-2026-0901"); n != 1 {
		t.Errorf("the registry holds %d requests of the case, want 1:\n%s", n, list)
	}

	// The registry restarts: 503, asked again later.
	proxy.set("unavailable")
	if out = w.run(env, "office", "sync"); !strings.Contains(out, "pending\tDas Register war nicht erreichbar; neuer Versuch") {
		t.Errorf("sync while the registry is away:\n%s", out)
	}
	proxy.set("")

	// Approved, but the download breaks off: lost, filed again.
	w.approve(w.hall)
	proxy.set("cut-download")
	if out = w.run(env, "office", "sync"); !strings.Contains(out, "rathaus-musterstadt\tlost\tDer Download brach ab") {
		t.Fatalf("sync with the download cut:\n%s", out)
	}
	proxy.set("")
	entries, _ := os.ReadDir(filepath.Join(w.dir, "ws", "bundles"))
	if len(entries) != 0 {
		t.Errorf("a broken download left files: %v", entries)
	}
	show := w.run(env, "office", "cases", "show", caseID)
	lost := regexp.MustCompile(`(?m)^([0-9a-f]{32}) +rathaus-musterstadt +[0-9a-f]{32} .* lost`).FindStringSubmatch(show)
	if lost == nil {
		t.Fatalf("no lost request:\n%s", show)
	}
	w.run(env, "office", "cases", "refile", caseID, lost[1])
	w.run(env, "office", "sync")
	w.approve(w.hall)
	if out = w.run(env, "office", "sync"); !strings.Contains(out, "rathaus-musterstadt\tdownloaded") {
		t.Fatalf("sync after filing again:\n%s", out)
	}
	book := filepath.Join(w.dir, "fall.csv")
	w.run(env, "office", "export", caseID, "-o", book)
	csv, _ := os.ReadFile(book)
	if strings.Count(string(csv), "Mustermann") != 2 {
		t.Errorf("the result holds %d of the city hall's 2 visitors:\n%s", strings.Count(string(csv), "Mustermann"), csv)
	}
	logs := w.run(env, "office", "log")
	for _, want := range []string{"request.lost", "request.refiled", "request.downloaded", "log verified"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// TestOfficeIndexCase: the workspace files a case scoped to the index
// case by the code on its visitor slip; the registry's export holds the
// index case and nobody it did not meet, each row saying why.
func TestOfficeIndexCase(t *testing.T) {
	w := newOfficeWorld(t)
	secret, err := crypto.ReadSecretFile(filepath.Join(w.hall.dir, "keys", crypto.SecretFileName))
	if err != nil {
		t.Fatal(err)
	}
	code := secret.ShortCode(w.hall.visits["erika"])
	env := append(slices.Clone(w.commonEnv), "REGISTRY_WORKSPACE="+filepath.Join(w.dir, "ws"), "REGISTRY_IDENTITY="+w.identity,
		"REGISTRY_OFFICE_NAME=Gesundheitsamt Musterstadt", "REGISTRY_PASSPHRASE_FILE="+filepath.Join(w.dir, "passphrase"))
	w.run(env, "office", "registries", "add", "Rathaus Musterstadt", "--url", w.hall.url, "--token-file", w.hall.officeToken, "--trust", w.hall.trust)
	w.run(env, "office", "registries", "confirm", "rathaus-musterstadt", w.hall.digest)
	out := w.run(env, "office", "cases", "create", "--ref", "GA-2026-0902", "--legal-basis", "§ 25 IfSG", "--contact", "Frau Beispiel",
		"--from", "2026-11-24T08:00:00+01:00", "--to", "2026-11-24T10:30:00+01:00", "--ask", "rathaus-musterstadt",
		"--index", "rathaus-musterstadt:"+strings.ToLower(code[:3]+"-"+code[3:]))
	caseID := regexp.MustCompile(`case ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	if out = w.run(env, "office", "sync"); !strings.Contains(out, "rathaus-musterstadt\tpending") {
		t.Fatalf("sync:\n%s", out)
	}
	if show := w.run(w.hall.env, "requests", "show", regexp.MustCompile(`(?m)^([0-9a-f]{32}) `).FindStringSubmatch(w.run(w.hall.env, "requests", "list", "--status", "pending"))[1]); !strings.Contains(show, "index case:") || !strings.Contains(show, code) {
		t.Errorf("the registry's request lacks the index scope:\n%s", show)
	}
	w.approve(w.hall)
	if out = w.run(env, "office", "sync"); !strings.Contains(out, "rathaus-musterstadt\tdownloaded") {
		t.Fatalf("sync after the approval:\n%s", out)
	}
	book := filepath.Join(w.dir, "fall.csv")
	w.run(env, "office", "export", caseID, "-o", book)
	csv, _ := os.ReadFile(book)
	if !strings.Contains(string(csv), "Erika") || !strings.Contains(string(csv), "Indexfall") || strings.Contains(string(csv), "Max") {
		t.Errorf("the index case's result:\n%s", csv)
	}
}
