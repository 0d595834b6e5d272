package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestDemoTour: on the demo installation that 'make run' serves, the tour
// registers visitors, files a request as the health office, has two
// approvers sign, downloads the export and decrypts it into a workbook,
// printing each step; a second tour works on the same installation.
func TestDemoTour(t *testing.T) {
	bin := filepath.Join(buildBinary(t), "registry")
	dir := t.TempDir()
	addr := freeAddr(t)
	env := append(os.Environ(), "REGISTRY_DB="+filepath.Join(dir, "registry.db"))
	var stderr lockedBuffer
	srv := exec.Command(bin, "serve", "--demo", "--demo-dir", dir, "--listen", addr)
	srv.Env, srv.Stderr = env, &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	waitHTTP(t, "http://"+addr+"/readyz", &stderr)
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(bin, "demo", "tour", "--server", "http://"+addr, "--demo-dir", dir)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tour %d: %v\n%s", round, err, out)
		}
		for _, want := range []string{"POST http://" + addr + "/v1/visits", "HTTP 201", "$ registry requests approve", "$ registry decrypt", "Done. Open the workbook"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("tour %d lacks %q:\n%s", round, want, out)
			}
		}
		if !regexp.MustCompile(`wrote ([3-9]|[1-9][0-9]) records of case DEMO-`).Match(out) {
			t.Errorf("tour %d decrypted fewer than its 3 visitors:\n%s", round, out)
		}
		books, _ := filepath.Glob(filepath.Join(dir, "kontakte-DEMO-*.xlsx"))
		if len(books) < 1 {
			t.Errorf("tour %d wrote no workbook", round)
		}
	}
	if strings.Contains(stderr.String(), "Yılmaz") || strings.Contains(stderr.String(), "Musterfrau") {
		t.Errorf("serve's log holds contact data")
	}
}
