package crypto_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

const testPurpose = registry.PurposeDecision

// sshTool returns an OpenSSH program, failing when it is missing
// (scripts/test-deps installs openssh-client).
func sshTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run scripts/test-deps (Debian: apt-get install openssh-client)", name)
	}
	return p
}

// sshKey makes an Ed25519 key with ssh-keygen and returns its file and
// public line.
func sshKey(t *testing.T, dir string) (file, pub string) {
	t.Helper()
	file = filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(sshTool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "anna@rathaus", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.TrimSpace(string(b))
}

// TestSSHSIGInterop: a statement signed offline with the stock
// `ssh-keygen -Y sign` verifies as an approval of that key, and only for
// the purpose it names, only over the statement it signed.
func TestSSHSIGInterop(t *testing.T) {
	dir := t.TempDir()
	file, line := sshKey(t, dir)
	pub, err := registry.ParsePublicKey(line)
	if err != nil || pub.Kind != registry.KeySSH {
		t.Fatalf("ParsePublicKey(%q) = %v, %v", line, pub, err)
	}
	if again, err := registry.ParsePublicKey(pub.String()); err != nil || !again.Equal(pub) || again.ID() != pub.ID() {
		t.Fatalf("the text form %q does not parse back: %v", pub.String(), err)
	}
	msg := []byte(`{"decision":"approve","request":"r1"}`)
	stmt := filepath.Join(dir, "statement.json")
	os.WriteFile(stmt, msg, 0o600)
	if out, err := exec.Command(sshTool(t, "ssh-keygen"), "-q", "-Y", "sign", "-n", testPurpose, "-f", file, stmt).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(stmt + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Verify(testPurpose, msg, sig) {
		t.Fatal("an ssh-keygen -Y sign signature does not verify")
	}
	if pub.Verify(registry.PurposeRecipients, msg, sig) {
		t.Error("a signature for one purpose verifies for another")
	}
	if pub.Verify(testPurpose, []byte(`{"decision":"approve","request":"r2"}`), sig) {
		t.Error("a signature verifies over another statement")
	}
	other, _ := sshKeyPub(t)
	if other.Verify(testPurpose, msg, sig) {
		t.Error("a signature verifies with another key")
	}
}

func sshKeyPub(t *testing.T) (*registry.PublicKey, string) {
	_, line := sshKey(t, t.TempDir())
	k, err := registry.ParsePublicKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return k, line
}

// TestAgentSigner: a key held by a real ssh-agent signs approvals; the
// stock ssh-keygen -Y verify accepts the signature, and so does the
// registry.
func TestAgentSigner(t *testing.T) {
	dir := t.TempDir()
	file, line := sshKey(t, dir)
	sock := filepath.Join(dir, "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ag := exec.CommandContext(ctx, sshTool(t, "ssh-agent"), "-D", "-a", sock)
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); ag.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not start")
		}
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	if out, err := exec.Command(sshTool(t, "ssh-add"), "-q", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	pub, _ := registry.ParsePublicKey(line)
	for _, want := range []string{"", pub.ID(), line, pub.String()} {
		s, err := crypto.OpenAgentSigner(want)
		if err != nil {
			t.Fatalf("OpenAgentSigner(%q) = %v", want, err)
		}
		if !s.PublicKey().Equal(pub) {
			t.Errorf("OpenAgentSigner(%q) picked %s", want, s.PublicKey())
		}
		s.Close()
	}
	if _, err := crypto.OpenAgentSigner("0123456789abcdef"); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("OpenAgentSigner(unknown key) = %v, want EINVALID", err)
	}
	s, err := crypto.OpenAgentSigner("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := []byte(`{"decision":"approve","request":"r1"}`)
	sig, err := s.SignStatement(testPurpose, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Verify(testPurpose, msg, sig) {
		t.Fatal("the agent's signature does not verify")
	}
	// The stock tool agrees.
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("anna "+pub.AuthorizedKey()+"\n"), 0o600)
	sigFile := filepath.Join(dir, "s.sig")
	os.WriteFile(sigFile, registry.ArmorSSHSIG(sig), 0o600)
	verify := exec.Command(sshTool(t, "ssh-keygen"), "-Y", "verify", "-f", allowed, "-I", "anna", "-n", testPurpose, "-s", sigFile)
	verify.Stdin = bytes.NewReader(msg)
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -Y verify refuses the agent's signature: %v\n%s", err, out)
	}
}

// TestSecurityKeySignature: a FIDO2 key's (sk-ssh-ed25519) SSHSIG
// signature verifies when the token saw a touch (user presence), and not
// without, nor with another application. The token is simulated by its
// signing rule (no hardware in CI): Ed25519 over SHA-256(application) ||
// flags || counter || SHA-256(data).
func TestSecurityKeySignature(t *testing.T) {
	edPub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var wire bytes.Buffer
	str := func(b *bytes.Buffer, s []byte) {
		binary.Write(b, binary.BigEndian, uint32(len(s)))
		b.Write(s)
	}
	str(&wire, []byte(registry.KeySSHSK))
	str(&wire, edPub)
	str(&wire, []byte("ssh:"))
	pub, err := registry.ParsePublicKey(registry.KeySSHSK + " " + b64(wire.Bytes()) + " anna@token")
	if err != nil || pub.Kind != registry.KeySSHSK {
		t.Fatalf("ParsePublicKey(sk) = %v, %v", pub, err)
	}
	msg := []byte("statement")
	sign := func(flags byte, app string) []byte {
		data := registry.SSHSigned(testPurpose, "sha512", msg)
		ah, dh := sha256.Sum256([]byte(app)), sha256.Sum256(data)
		var signed bytes.Buffer
		signed.Write(ah[:])
		signed.WriteByte(flags)
		binary.Write(&signed, binary.BigEndian, uint32(7))
		signed.Write(dh[:])
		var inner bytes.Buffer
		str(&inner, []byte(registry.KeySSHSK))
		str(&inner, ed25519.Sign(priv, signed.Bytes()))
		inner.WriteByte(flags)
		binary.Write(&inner, binary.BigEndian, uint32(7))
		return registry.SSHSIGBlob(pub, testPurpose, "sha512", inner.Bytes())
	}
	if !pub.Verify(testPurpose, msg, sign(0x01, "ssh:")) {
		t.Error("a touched security key's signature does not verify")
	}
	if pub.Verify(testPurpose, msg, sign(0x00, "ssh:")) {
		t.Error("a signature without user presence verifies")
	}
	if pub.Verify(testPurpose, msg, sign(0x01, "ssh:other")) {
		t.Error("a signature for another application verifies")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
