package crypto

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
)

func fixedPass(p string) Passphrase {
	return func(string) ([]byte, error) { return []byte(p), nil }
}

func TestSigningKeyFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	plain := filepath.Join(dir, "plain.key")
	k, err := WriteSigningKeyFile(plain, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteSigningKeyFile(plain, nil, now); registry.ErrorCode(err) != registry.ECONFLICT {
		t.Errorf("second write = %v, want ECONFLICT", err)
	}
	got, err := ReadSigningKeyFile(plain, nil)
	if err != nil || !got.Public().Equal(k.Public()) {
		t.Fatalf("ReadSigningKeyFile = %v, %v", got, err)
	}
	sig := got.Sign(registry.PurposeDecision, []byte("statement"))
	if !registry.VerifySignature(k.Public(), registry.PurposeDecision, []byte("statement"), sig) {
		t.Errorf("signature does not verify")
	}
	if registry.VerifySignature(k.Public(), registry.PurposeApprover, []byte("statement"), sig) {
		t.Errorf("signature verifies for another purpose")
	}

	prot := filepath.Join(dir, "protected.key")
	k2, err := WriteSigningKeyFile(prot, []byte("ein langes Kennwort"), now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(prot)
	if bytes.Contains(raw, []byte(signingKeyPrefix)) || !bytes.HasPrefix(raw, []byte(ageHeader)) {
		t.Errorf("protected key file is not an age passphrase file")
	}
	if _, err := ReadSigningKeyFile(prot, nil); registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("without a prompt = %v, want EINVALID about the passphrase", err)
	}
	if _, err := ReadSigningKeyFile(prot, fixedPass("falsch")); err == nil || !strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong passphrase = %v, want 'wrong'", err)
	}
	if got, err := ReadSigningKeyFile(prot, fixedPass("ein langes Kennwort")); err != nil || !got.Public().Equal(k2.Public()) {
		t.Errorf("right passphrase = %v, %v", got, err)
	}
	os.Chmod(plain, 0o644)
	if _, err := ReadSigningKeyFile(plain, nil); err == nil || !strings.Contains(err.Error(), "read by others") {
		t.Errorf("world-readable key = %v, want refused", err)
	}
	os.Chmod(prot, 0o644) // a USB stick shows every file so
	if _, err := ReadSigningKeyFile(prot, fixedPass("ein langes Kennwort")); err != nil {
		t.Errorf("readable but passphrase-protected key = %v, want read", err)
	}
}

// TestProtectedIdentityFile: an identity file sealed with a passphrase
// the way `age -p` seals one (scrypt recipient over the plain file) opens
// with the passphrase, and the identity decrypts what was sealed to it.
func TestProtectedIdentityFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, "office.key")
	rcpt, err := WriteProtectedIdentityFile(path, []byte("Kennwort des Amts"), Hybrid, now)
	if err != nil {
		t.Fatal(err)
	}
	// The stock library opens the file with the passphrase alone: it is
	// age's own format.
	sid, _ := age.NewScryptIdentity("Kennwort des Amts")
	f, _ := os.Open(path)
	defer f.Close()
	r, err := age.Decrypt(f, sid)
	if err != nil {
		t.Fatalf("age.Decrypt with the passphrase: %v", err)
	}
	var inner bytes.Buffer
	inner.ReadFrom(r)
	if !strings.Contains(inner.String(), "AGE-SECRET-KEY-PQ-1") {
		t.Errorf("the protected file does not hold an age identity")
	}
	ids, err := ReadIdentityFile(path, fixedPass("Kennwort des Amts"), nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ReadIdentityFile = %v, %v", ids, err)
	}
	to, err := age.ParseHybridRecipient(rcpt)
	if err != nil {
		t.Fatalf("the recipient is not a hybrid one: %v", err)
	}
	var sealed bytes.Buffer
	w, _ := age.Encrypt(&sealed, to)
	w.Write([]byte("Kontaktdaten"))
	w.Close()
	if r, err := age.Decrypt(&sealed, ids...); err != nil {
		t.Errorf("the identity does not open what was sealed to it: %v", err)
	} else {
		var out bytes.Buffer
		out.ReadFrom(r)
		if out.String() != "Kontaktdaten" {
			t.Errorf("decrypted %q", out.String())
		}
	}
	if _, err := ReadIdentityFile(path, fixedPass("falsch"), nil); err == nil || !strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong passphrase = %v", err)
	}
	// A plugin identity needs a terminal for its plugin; without one it is
	// refused by line, never quoted.
	plug := filepath.Join(dir, "yubikey.txt")
	os.WriteFile(plug, []byte("# age-plugin-yubikey\nAGE-PLUGIN-YUBIKEY-1QQQQQQ\n"), 0o600)
	if _, err := ReadIdentityFile(plug, nil, nil); err == nil || !strings.Contains(err.Error(), "plugin identity (line 2)") {
		t.Errorf("plugin identity without a UI = %v", err)
	}
}
