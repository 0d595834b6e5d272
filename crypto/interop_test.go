package crypto_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// TestAgeCLIInterop builds the stock age CLI from the module cache and
// checks that it reads our key files and ciphertexts and that we read its
// ciphertexts: the promise that a health office can use plain age.
func TestAgeCLIInterop(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH: this test builds the stock age CLI (filippo.io/age/cmd/age) from the module cache")
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "filippo.io/age").Output()
	ageDir := strings.TrimSpace(string(out))
	if err != nil || ageDir == "" {
		t.Fatalf("locate filippo.io/age in the module cache (go list -m): %v %q; run go mod download", err, ageDir)
	}
	tmp := t.TempDir()
	ageBin := filepath.Join(tmp, "age")
	build := exec.Command(goBin, "build", "-o", ageBin, "./cmd/age")
	build.Dir = ageDir // its own go.mod pins the CLI's dependencies
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build filippo.io/age/cmd/age: %v\n%s", err, out)
	}
	runAge := func(t *testing.T, stdin []byte, args ...string) []byte {
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

	o := newOffice(t)
	writeFile(t, o.recipientsPath, "# Gesundheitsamt, Infektionsschutz\n\n"+strings.Join(o.recipients.Strings(), "\n")+"\n")
	e := newEpoch(t, registry.DayOf(testNow))
	want := testContact()
	sealed, err := crypto.NewSealer(o.recipients).Seal(want, e.key.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := crypto.OpenOuter(sealed, e.id)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("age opens the outer layer with an epoch key file", func(t *testing.T) {
		sealedPath := filepath.Join(tmp, "sealed.age")
		writeFile(t, sealedPath, string(sealed))
		keyFile := filepath.Join(e.store.Dir, "epoch-"+string(e.key.Day)+".age")
		if got := runAge(t, nil, "-d", "-i", keyFile, sealedPath); !bytes.Equal(got, inner) {
			t.Errorf("age -d of the sealed record = %d bytes, want the %d-byte inner ciphertext", len(got), len(inner))
		}
	})
	t.Run("age decrypts the inner ciphertext with the office key file", func(t *testing.T) {
		innerPath := filepath.Join(tmp, "inner.age")
		writeFile(t, innerPath, string(inner))
		var got registry.Contact
		if err := json.Unmarshal(runAge(t, nil, "-d", "-i", o.keyPath, innerPath), &got); err != nil {
			t.Fatalf("age -d output is not the contact JSON: %v", err)
		}
		sameContact(t, &got, want)
	})
	t.Run("we decrypt what age encrypts to the recipients file", func(t *testing.T) {
		c := testContact()
		plain, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		ciphertext := runAge(t, plain, "-e", "-R", o.recipientsPath)
		ids, err := crypto.ReadIdentities(o.keyPath)
		if err != nil {
			t.Fatal(err)
		}
		got, err := crypto.OpenInner(ciphertext, ids)
		if err != nil {
			t.Fatalf("OpenInner of age -e output: %v", err)
		}
		sameContact(t, got, c)
	})
}
