// Package agetest builds the stock age command-line tool for tests that
// prove interoperability: what the registry seals, plain age opens, and
// the other way round.
package agetest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build builds filippo.io/age/cmd/age from the module cache (the version
// go.mod pins) into a temporary directory and returns a function that runs
// it, failing the test on a non-zero exit.
func Build(t testing.TB) func(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH: this test builds the stock age CLI (filippo.io/age/cmd/age) from the module cache")
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "filippo.io/age").Output()
	ageDir := strings.TrimSpace(string(out))
	if err != nil || ageDir == "" {
		t.Fatalf("locate filippo.io/age in the module cache (go list -m): %v %q; run go mod download", err, ageDir)
	}
	ageBin := filepath.Join(t.TempDir(), "age")
	build := exec.Command(goBin, "build", "-o", ageBin, "./cmd/age")
	build.Dir = ageDir // its own go.mod pins the CLI's dependencies
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build filippo.io/age/cmd/age: %v\n%s", err, out)
	}
	return func(t testing.TB, stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(ageBin, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("age %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}
}
