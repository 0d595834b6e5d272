package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/postgres/pgtest"
)

// TestTwoIntakeNodes runs two `serve --intake-only` nodes against one
// PostgreSQL database behind nginx, with the upstream of the shipped
// example (deploy/nginx/registry.conf) listing both, and kills one node
// with SIGKILL while 16 clients register with retries under their
// idempotency keys: every acknowledged registration is stored once, none
// is lost or doubled. It prints what the clients saw meanwhile.
func TestTwoIntakeNodes(t *testing.T) {
	nginx := tool(t, "nginx")
	dsn := pgtest.NewDatabase(t)
	e := newFaultEnv(t, buildBinary(t), dsn)
	e.env = append(e.env, "REGISTRY_TRUSTED_PROXIES=127.0.0.1")
	bin, dir, env := e.bin, e.dir, e.env

	// The primary creates the day keys and the server secret, and pins
	// the recipients; the intake nodes need all three.
	start := func(args ...string) (*exec.Cmd, string, *lockedBuffer) {
		t.Helper()
		addr := freeAddr(t)
		var stderr lockedBuffer
		cmd := exec.Command(bin, append([]string{"serve", "--listen", addr}, args...)...)
		cmd.Env, cmd.Stderr = env, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
		waitHTTP(t, "http://"+addr+"/readyz", &stderr)
		return cmd, addr, &stderr
	}
	primary, _, _ := start()
	primary.Process.Signal(syscall.SIGTERM)
	primary.Wait()
	secret := filepath.Join(dir, "keys", "server.secret")
	nodeA, addrA, _ := start("--intake-only", "--server-secret", secret)
	_, addrB, logB := start("--intake-only", "--server-secret", secret)

	proxy := startNginx(t, nginx, dir, addrA, addrB)
	l := &failoverLoad{url: "https://" + proxy + "/v1/visits", token: e.token, stop: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	l.start(16)
	l.waitAcks(t, 300, 60*time.Second, logB)
	killed := time.Now()
	nodeA.Process.Signal(syscall.SIGKILL)
	acksAtKill := l.acks.Load()
	l.waitAcks(t, acksAtKill+300, 60*time.Second, logB)
	l.finish(t, logB)
	gap, firstAfter := l.gapAfter(killed)
	t.Logf("two intake nodes: one killed with SIGKILL under load; longest time without an acknowledgement %v; %d acknowledged before, %d in all; "+
		"answers until then: %v; retries in all: %d, of them answered as stored before: %d", gap.Round(time.Millisecond), acksAtKill, l.acks.Load(), l.statuses(firstAfter), l.retries.Load(), l.replayed.Load())
	if l.acks.Load() < acksAtKill+300 {
		t.Fatalf("only %d registrations acknowledged after a node was killed", l.acks.Load()-acksAtKill)
	}

	l.checkStored(t, dsn, "two intake nodes")
}

// startNginx runs nginx with the shipped example, its upstream listing
// the nodes, TLS on a free port with a self-signed certificate, and
// returns that address.
func startNginx(t *testing.T, nginx, dir string, nodes ...string) string {
	t.Helper()
	site, err := os.ReadFile("../../deploy/nginx/registry.conf")
	if err != nil {
		t.Fatal(err)
	}
	ndir := filepath.Join(dir, "nginx")
	os.MkdirAll(ndir, 0o755)
	cert, key := selfSigned(t, ndir)
	addr := freeAddr(t)
	var servers strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&servers, "server %s;\n    ", n)
	}
	text := strings.NewReplacer("/etc/ssl/registry/fullchain.pem", cert, "/etc/ssl/registry/privkey.pem", key,
		"/var/log/nginx/registry.log", filepath.Join(ndir, "access.log"), "listen 80;", "listen 127.0.0.1:"+freePort(t)+";",
		"listen [::]:80;", "", "listen 443 ssl;", "listen "+addr+" ssl;", "listen [::]:443 ssl;", "",
		"server 127.0.0.1:8080;\n    ", servers.String()).Replace(string(site))
	if !strings.Contains(text, "server "+nodes[1]+";") {
		t.Fatalf("the nginx example has no upstream line to replace:\n%s", text)
	}
	os.WriteFile(filepath.Join(ndir, "registry.conf"), []byte(text), 0o644)
	main := "pid " + filepath.Join(ndir, "nginx.pid") + ";\nerror_log " + filepath.Join(ndir, "error.log") + ";\ndaemon off;\nevents {}\nhttp {\n" +
		"  client_body_temp_path " + ndir + "/body;\n  proxy_temp_path " + ndir + "/proxy;\n  fastcgi_temp_path " + ndir + "/fcgi;\n" +
		"  uwsgi_temp_path " + ndir + "/uwsgi;\n  scgi_temp_path " + ndir + "/scgi;\n  include " + filepath.Join(ndir, "registry.conf") + ";\n}\n"
	conf := filepath.Join(ndir, "nginx.conf")
	os.WriteFile(conf, []byte(main), 0o644)
	cmd := exec.Command(nginx, "-p", ndir, "-c", conf)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGQUIT); cmd.Wait() })
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := c.Get("https://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(ndir, "error.log"))
			t.Fatalf("nginx did not answer on %s: %s\n%s", addr, stderr.String(), log)
		}
	}
}

func freePort(t *testing.T) string {
	a := freeAddr(t)
	return a[strings.LastIndex(a, ":")+1:]
}
