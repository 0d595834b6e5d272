package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tool returns a program the deployment tests drive, failing when it is
// missing (scripts/test-deps installs it) unless REGISTRY_TEST_DEPLOY=skip.
func tool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/bin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	if os.Getenv("REGISTRY_TEST_DEPLOY") == "skip" {
		t.Skipf("%s not found and REGISTRY_TEST_DEPLOY=skip", name)
	}
	t.Fatalf("%s not found: run scripts/test-deps (Debian: apt-get install systemd nginx) or set REGISTRY_TEST_DEPLOY=skip", name)
	return ""
}

// TestSystemdUnit checks deploy/registry.service with systemd-analyze
// verify, its ExecStart pointed at the real binary.
func TestSystemdUnit(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	unit, err := os.ReadFile("../../deploy/registry.service")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(buildBinary(t), "registry")
	text := strings.Replace(string(unit), "ExecStart=/usr/bin/registry serve", "ExecStart="+bin+" serve", 1)
	for _, want := range []string{"User=registry", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
		"StateDirectory=registry registry-keys", "Restart=on-failure", "UMask=0077"} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", path).CombinedOutput()
	// verify warns about what only a booted system has (the user, the
	// EnvironmentFile); it fails on anything wrong with the unit itself.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "registry.service") && !strings.Contains(line, "EnvironmentFile") &&
			!strings.Contains(line, "Failed to connect") && !strings.Contains(line, "User") && line != "" {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
	if err != nil && strings.Contains(string(out), "Unknown") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestShippedLayout runs doctor with the settings of deploy/registry.env
// (its paths moved into a temporary root): the key store lies outside the
// database's directory and the backup paths, and nothing there looks
// like a demo.
func TestShippedLayout(t *testing.T) {
	env, err := os.ReadFile("../../deploy/registry.env")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	vars := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	for _, line := range strings.Split(string(env), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "REGISTRY_") {
			continue
		}
		if strings.HasPrefix(line, "REGISTRY_DB=") && strings.Contains(line, "postgres") {
			t.Fatalf("the shipped environment file uses PostgreSQL by default: %s", line)
		}
		vars = append(vars, strings.ReplaceAll(strings.ReplaceAll(line, "/var/", root+"/var/"), "/etc/", root+"/etc/"))
	}
	cmd := exec.Command(filepath.Join(buildBinary(t), "registry"), "doctor")
	cmd.Env = vars
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "ok    layout       the key store lies outside the database's directory, the backup path") {
		t.Errorf("doctor with the shipped settings:\n%s", out)
	}
	if strings.Contains(string(out), "FAIL  demo") {
		t.Errorf("doctor calls the shipped layout a demo:\n%s", out)
	}
}

// TestNginxConfig checks deploy/nginx/registry.conf with nginx -t, inside
// a minimal nginx.conf with a self-signed certificate.
func TestNginxConfig(t *testing.T) {
	nginx := tool(t, "nginx")
	dir := t.TempDir()
	site, err := os.ReadFile("../../deploy/nginx/registry.conf")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := selfSigned(t, dir)
	text := strings.NewReplacer("/etc/ssl/registry/fullchain.pem", cert, "/etc/ssl/registry/privkey.pem", key,
		"/var/log/nginx/registry.log", filepath.Join(dir, "access.log"), "listen 80;", "listen 127.0.0.1:18080;",
		"listen [::]:80;", "", "listen 443 ssl;", "listen 127.0.0.1:18443 ssl;", "listen [::]:443 ssl;", "").Replace(string(site))
	for _, want := range []string{"client_max_body_size", "X-Forwarded-For $remote_addr", "proxy_pass http://registry", "server 127.0.0.1:8080;", "ssl_protocols"} {
		if !strings.Contains(text, want) {
			t.Errorf("the nginx example lacks %s", want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "registry.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	main := "pid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + ";\nevents {}\nhttp {\n" +
		"  client_body_temp_path " + dir + "/body;\n  proxy_temp_path " + dir + "/proxy;\n  fastcgi_temp_path " + dir + "/fcgi;\n" +
		"  uwsgi_temp_path " + dir + "/uwsgi;\n  scgi_temp_path " + dir + "/scgi;\n  include " + filepath.Join(dir, "registry.conf") + ";\n}\n"
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-c", conf).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "besuch.musterstadt.de"},
		DNSNames: []string{"besuch.musterstadt.de"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certPath, keyPath
}

// TestAlertRules checks deploy/prometheus-alerts.yml with promtool, and
// that every metric it names is one serve exports.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", "../../deploy/prometheus-alerts.yml").CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	rules, _ := os.ReadFile("../../deploy/prometheus-alerts.yml")
	for _, name := range []string{"registry_purge_last_success_timestamp_seconds", "registry_purge_refused", "registry_purge_failed",
		"registry_epoch_keys_ahead_days", "registry_http_requests_total"} {
		if !strings.Contains(string(rules), name) {
			t.Errorf("the rules do not use %s", name)
		}
	}
}
