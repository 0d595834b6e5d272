package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/sqlite"
)

// diskFullScript runs serve on a database in a small tmpfs of its own
// (a user and mount namespace: no root needed), fills the tmpfs to 256 KiB
// free, removes the filler when $FREE appears and copies the database out
// to $OUT after serve ends (on SIGTERM, which also ends a sleep of the
// loop: "|| :" keeps set -e from ending the script before the copy).
const diskFullScript = `set -eu
mount -t tmpfs -o size=16m none "$DATA"
cp "$SEED"/registry.db "$DATA"/
avail=$(df --output=avail -k "$DATA" | tail -n 1)
dd if=/dev/zero of="$DATA"/filler bs=1k count=$((avail - 256)) status=none
"$BIN" serve & pid=$!
trap 'kill -TERM $pid' TERM
while [ ! -e "$FREE" ] && kill -0 $pid 2>/dev/null; do sleep 0.05 || :; done
rm -f "$DATA"/filler
wait $pid || wait $pid || true
cp "$DATA"/registry.db* "$OUT"/
`

// TestDiskFull: with the database's disk full, registrations are
// answered 503 with Retry-After (never 500) and /readyz reports not ready;
// once space is free again /readyz is ready, the refused registrations
// succeed when retried with their keys, and every acknowledged one is
// stored exactly once.
func TestDiskFull(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is needed to give serve a full disk of its own: apt-get install util-linux")
	}
	seed := t.TempDir()
	e := newFaultEnv(t, buildBinary(t), filepath.Join(seed, "registry.db"))
	data, out := t.TempDir(), t.TempDir()
	free := filepath.Join(out, "free")
	cmd := exec.Command(unshare, "--user", "--map-root-user", "--mount", "bash", "-c", diskFullScript)
	cmd.Env = append(e.env, "DATA="+data, "SEED="+seed, "BIN="+e.bin, "FREE="+free, "OUT="+out,
		"REGISTRY_DB="+filepath.Join(data, "registry.db"))
	cmd.Stderr = e.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v (user namespaces must be allowed: sysctl kernel.unprivileged_userns_clone=1)", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + e.addr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, ok func() bool) {
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: gave up after 30 s\n%s", what, e.stderr.String())
			}
		}
	}
	waitFor("serve ready", func() bool { st, _ := readyz(); return st == 200 })

	// Fill the disk with registrations until one is refused.
	acked, refused := 0, ""
	for i := 0; refused == "" && i < 5000; i++ {
		key := fmt.Sprintf("full-%d", i)
		status, _, h := e.register(key)
		switch status {
		case 201:
			acked++
		case 503:
			refused = key
			if h.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		default:
			t.Fatalf("registration %s on a full disk: status %d, want 201 or 503\n%s", key, status, e.stderr.String())
		}
	}
	if refused == "" {
		t.Fatalf("5000 registrations fitted into 256 KiB: the disk never filled")
	}
	if st, body := readyz(); st != 503 || !strings.Contains(body, "storage") || !strings.Contains(body, "disk is full") {
		t.Errorf("/readyz with the disk full = %d %s, want 503 naming the storage check\n%s", st, body, e.stderr.String())
	}
	if status, _, _ := e.register("full-later"); status != 503 {
		t.Errorf("another registration on the full disk: %d, want 503", status)
	}
	t.Logf("%d registrations acknowledged before the disk was full", acked)

	// Space again: ready, and the refused registrations go through.
	if err := os.WriteFile(free, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("ready after space was freed", func() bool { st, _ := readyz(); return st == 200 })
	for _, key := range []string{refused, "full-later"} {
		if status, _, _ := e.register(key); status != 201 && status != 200 {
			t.Errorf("retry of %s with space free: %d", key, status)
		} else if status == 201 {
			acked++
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
		done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop\n%s", e.stderr.String())
	}
	if strings.Contains(e.stderr.String(), "level=ERROR") {
		t.Errorf("the log holds errors:\n%s", e.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "registry.db")); err != nil {
		t.Fatalf("the database was not copied out after serve ended: %v\n%s", err, e.stderr.String())
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(out, "registry.db"))
	if err != nil {
		t.Fatalf("open the copied database: %v\n%s", err, e.stderr.String())
	}
	defer s.Close()
	if got := intaketest.CountVisits(t, s); got != int64(2*acked) {
		t.Errorf("stored visits = %d, want %d (every acknowledged household exactly once)\n%s", got, 2*acked, e.stderr.String())
	}
	if bytes.Contains([]byte(e.stderr.String()), []byte("Internal error")) {
		t.Errorf("an internal error was answered")
	}
}
