package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

// canary marks every decrypted name of the crash test's bundle.
const canary = "Kanarienvogel"

// crashBundle writes a real bundle of n records (sealed with age, signed
// by an instance, approved by a pinned approver) and returns the paths of
// the office's identity, the trust file and the bundle.
func crashBundle(t *testing.T, dir string, n int) (identity, trust, bundle string) {
	t.Helper()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	identity = filepath.Join(dir, "office.key")
	rcpt, err := crypto.WriteIdentityFile(identity, crypto.Hybrid, now)
	if err != nil {
		t.Fatal(err)
	}
	rcpts, err := crypto.ParseRecipients(bytes.NewReader([]byte(rcpt + "\n")))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.OpenKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	day := registry.DayOf(now)
	epoch, err := keys.Create(day, crypto.Hybrid, now)
	if err != nil {
		t.Fatal(err)
	}
	instance, approver := crypto.GenerateSigningKey(), crypto.GenerateSigningKey()
	tr := &export.Trust{Instance: instance.Public(), Approvers: map[string]export.TrustedApprover{
		approver.ID(): {Name: "Anna DSB", Person: approver.ID(), Key: approver.PublicKey()}}}
	trust = filepath.Join(dir, "rathaus.trust")
	if err := os.WriteFile(trust, tr.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	from := now.Add(-10 * time.Hour)
	req := &registry.TraceRequest{ID: registry.NewID(), CaseRef: "GA-Absturz", Office: "Gesundheitsamt", LegalBasis: "§ 25 IfSG",
		From: from, To: now.Add(-time.Minute), Sites: []string{"rathaus"}, Status: registry.TraceApproved, OwnerToken: "office", Nonce: registry.NewNonce()}
	exp := now.Add(time.Hour)
	req.Approvals = []*registry.Approval{{ApproverID: approver.ID(), PublicKey: registry.FormatPublicKey(approver.Public()), Name: "Anna DSB",
		Decision: registry.DecisionApprove, ExpiresAt: exp, SignedAt: now,
		Signature: approver.Sign(registry.PurposeDecision, registry.DecisionStatement(req, registry.DecisionApprove, exp))}}
	sealer := crypto.NewSealer(rcpts)
	visits := make([]*registry.Visit, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				in := from.Add(time.Duration(i) * time.Second)
				v := &registry.Visit{ID: registry.NewVisitID(in), Site: "rathaus", Area: "Bürgerbüro", CheckIn: in, Epoch: day}
				c := &registry.Contact{Version: registry.ContactVersion, GivenName: fmt.Sprintf("%s-%05d", canary, i), FamilyName: canary + "-Müller",
					Street: "Straße des " + canary, HouseNumber: "1", Postcode: "12345", City: canary + "stadt", Phone: "+49 30 1234567",
					VisitID: v.ID, Site: v.Site, CheckIn: in}
				if v.Sealed, err = sealer.Seal(c, epoch.Recipient); err != nil {
					panic(err)
				}
				visits[i] = v
			}
		})
	}
	wg.Wait()
	seq := iter.Seq2[*registry.Visit, error](func(yield func(*registry.Visit, error) bool) {
		for _, v := range visits {
			if !yield(v, nil) {
				return
			}
		}
	})
	var buf bytes.Buffer
	if _, err := export.Write(&buf, req, n, seq, &export.Sealing{Keys: keys, Recipients: rcpts, Instance: instance, MaxStay: 12 * time.Hour, Now: now}); err != nil {
		t.Fatal(err)
	}
	bundle = filepath.Join(dir, "bundle.age")
	if err := os.WriteFile(bundle, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return identity, trust, bundle
}

// plaintextFiles returns the files under dirs that hold the canary.
func plaintextFiles(t *testing.T, dirs ...string) []string {
	t.Helper()
	var found []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(canary)) {
				found = append(found, path)
			}
			return nil
		})
	}
	return found
}

// TestDecryptKilledLeavesNoPlaintext kills `registry decrypt` with SIGKILL
// at several points of a 20,000-record decrypt, for every output format,
// and checks that no file anywhere (the output's directory, the temporary
// directory, the decrypt's scratch directory) holds a decrypted name:
// work in progress is sealed to a key only the process held, the workbook
// is streamed into it without temporary files, and the output is an
// unnamed file until it is complete.
func TestDecryptKilledLeavesNoPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and decrypts 20,000 records per format")
	}
	bin := filepath.Join(buildBinary(t), "registry")
	dir := t.TempDir()
	identity, trust, bundle := crashBundle(t, dir, 20000)
	for _, f := range []struct{ format, out string }{
		{"xlsx", "kontakte.xlsx"}, {"pdf", "kontakte.pdf"}, {"csv", "kontakte.csv"},
		{"json", "kontakte.json"}, {"sormas", "sormas.csv"}, {"iris", "iris.json"},
	} {
		t.Run(f.format, func(t *testing.T) {
			work := t.TempDir()
			tmp, outDir := filepath.Join(work, "tmp"), filepath.Join(work, "out")
			os.MkdirAll(tmp, 0o700)
			os.MkdirAll(outDir, 0o700)
			run := func(out string, kill time.Duration) (finished bool, took time.Duration) {
				cmd := exec.Command(bin, "decrypt", "--identity", identity, "--trust", trust, "--format", f.format, "-o", filepath.Join(outDir, out), bundle)
				cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				var timer <-chan time.Time
				if kill > 0 {
					timer = time.After(kill)
				}
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("decrypt failed: %v\n%s", err, stderr.String())
					}
					return true, time.Since(start)
				case <-timer:
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					return false, time.Since(start)
				}
			}
			finished, full := run("vollstaendig-"+f.out, 0)
			if !finished || len(plaintextFiles(t, tmp)) != 0 {
				t.Fatalf("an uninterrupted decrypt left plaintext in the temporary directory: %v", plaintextFiles(t, tmp))
			}
			var fullSize int64
			if fi, err := os.Stat(filepath.Join(outDir, "vollstaendig-"+f.out)); err == nil {
				fullSize = fi.Size()
			}
			os.RemoveAll(outDir)
			os.MkdirAll(outDir, 0o700)
			killed := 0
			for i, share := range []float64{0.2, 0.5, 0.9} {
				out := fmt.Sprintf("abbruch-%d-%s", i, f.out)
				if done, _ := run(out, time.Duration(share*float64(full))); done {
					os.Remove(filepath.Join(outDir, out)) // finished first: nothing to check
					continue
				}
				// Killed after the output was linked into place but before
				// the process exited: the file is complete, as a finished
				// run's (the unnamed file appears only complete).
				if fi, err := os.Stat(filepath.Join(outDir, out)); err == nil && fi.Size() == fullSize {
					if entries, _ := os.ReadDir(outDir); len(entries) == 1 && len(plaintextFiles(t, tmp)) == 0 {
						os.Remove(filepath.Join(outDir, out))
						continue
					}
				}
				killed++
				if left := plaintextFiles(t, tmp, outDir); len(left) > 0 {
					t.Errorf("killed at %.0f%% of the run, decrypt left plaintext in %v", share*100, left)
				}
				if entries, _ := os.ReadDir(outDir); len(entries) > 0 {
					t.Errorf("killed at %.0f%% of the run, the output directory holds %d entries (a partial file?)", share*100, len(entries))
				}
			}
			if killed == 0 {
				t.Errorf("every run finished before its kill (a full run took %s): nothing was tested", full)
			}
			t.Logf("%s: a full decrypt of 20,000 records took %s; %d runs killed", f.format, full.Round(time.Millisecond), killed)
		})
	}
}
