package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestTwoServesStartTogether: two serve processes started at the same
// moment on a fresh SQLite installation with one key store both come up
// (database, server secret, day keys and recipients pin made once), ten
// times over, and doctor finds the installation sound.
func TestTwoServesStartTogether(t *testing.T) {
	bin := filepath.Join(buildBinary(t), "registry")
	office := t.TempDir()
	out, err := exec.Command(bin, "keygen", "-o", filepath.Join(office, "office.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "recipients.txt"), out, 0o644); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "REGISTRY_DB="+filepath.Join(dir, "data", "registry.db"), "REGISTRY_KEYSTORE="+filepath.Join(dir, "keys"),
			"REGISTRY_RECIPIENTS="+filepath.Join(dir, "recipients.txt"))
		os.MkdirAll(filepath.Join(dir, "data"), 0o700)
		var wg sync.WaitGroup
		for node := range 2 {
			wg.Go(func() {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Error(err)
					return
				}
				addr := l.Addr().String()
				l.Close()
				var stderr lockedBuffer
				cmd := exec.Command(bin, "serve", "--listen", addr)
				cmd.Env, cmd.Stderr = env, &stderr
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				defer func() {
					cmd.Process.Signal(syscall.SIGTERM)
					<-exited
				}()
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					select {
					case err := <-exited:
						exited <- err
						t.Errorf("round %d node %d: serve ended at start (%v):\n%s", round, node, err, stderr.String())
						return
					default:
					}
					if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							return
						}
					}
					if time.Now().After(deadline) {
						t.Errorf("round %d node %d: not ready after 30 s:\n%s", round, node, stderr.String())
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		doctor := exec.Command(bin, "doctor")
		doctor.Env = env
		text, _ := doctor.CombinedOutput()
		for _, want := range []string{"ok    epoch keys", "ok    recipients", "ok    audit", "ok    key store"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("round %d: doctor lacks %q:\n%s", round, want, text)
			}
		}
		if t.Failed() {
			return
		}
	}
}
