package crypto_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

func TestWriteIdentityFile(t *testing.T) {
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		t.Run(kind.String(), func(t *testing.T) { testWriteIdentityFile(t, kind) })
	}
}

func testWriteIdentityFile(t *testing.T, kind crypto.KeyKind) {
	dir := t.TempDir()
	path := filepath.Join(dir, "office.key")
	now := time.Date(2024, 3, 14, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	rec, err := crypto.WriteIdentityFile(path, kind, now)
	if err != nil {
		t.Fatalf("WriteIdentityFile: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("mode = %v, want %v", got, want)
	}
	content := readFile(t, path)
	lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("identity file has %d lines, want 3", len(lines))
	}
	if got, want := lines[0], "# created: 2024-03-14T10:00:00+01:00"; got != want {
		t.Errorf("line 1 = %q, want %q", got, want)
	}
	if got, want := lines[1], "# public key: "+rec; got != want {
		t.Errorf("line 2 = %q, want %q", got, want)
	}
	ids, err := age.ParseIdentities(strings.NewReader(lines[2]))
	if err != nil || len(ids) != 1 {
		t.Fatalf("line 3 is not an identity: %v", err)
	}
	var got string
	switch id := ids[0].(type) {
	case *age.HybridIdentity:
		got = id.Recipient().String()
		if kind != crypto.Hybrid || !strings.HasPrefix(rec, "age1pq1") || !strings.HasPrefix(lines[2], "AGE-SECRET-KEY-PQ-1") {
			t.Errorf("kind %s wrote a hybrid identity", kind)
		}
	case *age.X25519Identity:
		got = id.Recipient().String()
		if kind != crypto.X25519 || strings.HasPrefix(rec, "age1pq1") {
			t.Errorf("kind %s wrote an X25519 identity", kind)
		}
	}
	if got != rec {
		t.Errorf("identity's recipient = %q, want returned %q", got, rec)
	}

	t.Run("refuses to overwrite", func(t *testing.T) {
		_, err := crypto.WriteIdentityFile(path, kind, now)
		wantCode(t, err, registry.ECONFLICT)
		if got := readFile(t, path); got != content {
			t.Error("existing identity file was changed")
		}
	})
	t.Run("leaves no temporary files", func(t *testing.T) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the identity file", len(entries))
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := crypto.WriteIdentityFile(filepath.Join(dir, "nope", "k.key"), crypto.Hybrid, now)
		wantCode(t, err, registry.EINVALID)
		wantMessage(t, err, "nope")
	})
}

func TestReadIdentities(t *testing.T) {
	id1, id2 := newIdentity(t), newIdentity(t)
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	// A secret key with one character changed: its checksum fails, and the
	// error must not quote it.
	broken := id1.String()[:30] + strings.ToUpper(otherChar(strings.ToLower(id1.String())[30])) + id1.String()[31:]
	tests := []struct {
		name, content string
		want          int    // identities; 0 means EINVALID
		msg           string // part of the error message
	}{
		{"one", id1.String() + "\n", 1, ""},
		{"age-keygen layout", "# created: x\n# public key: " + id1.Recipient().String() + "\n" + id1.String() + "\n", 1, ""},
		{"two and blank lines", id1.String() + "\n\n" + id2.String() + "\n", 2, ""},
		{"hybrid", hybrid.String() + "\n", 1, ""},
		{"crlf", id1.String() + "\r\n", 1, ""},
		{"empty", "", 0, "holds no identity"},
		{"only comments", "# nothing\n\n", 0, "holds no identity"},
		{"broken key", "# a\n" + broken + "\n", 0, "line 2"},
		{"recipient", id1.Recipient().String() + "\n", 0, "line 1"},
		{"leading space", " " + id1.String() + "\n", 0, "line 1"},
		{"ssh key", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0, "line 1"},
		{"long line", strings.Repeat("A", 9<<10) + "\n", 0, "too long"},
		{"very long line", strings.Repeat("A", 70<<10) + "\n", 0, "too long"},
		{"not utf-8", "\xff\xfe\n", 0, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.key")
			writeFile(t, path, tt.content)
			ids, err := crypto.ReadIdentities(path)
			if tt.want > 0 {
				if err != nil {
					t.Fatalf("ReadIdentities: %v", err)
				}
				if len(ids) != tt.want {
					t.Errorf("got %d identities, want %d", len(ids), tt.want)
				}
				return
			}
			wantCode(t, err, registry.EINVALID)
			wantMessage(t, err, path, tt.msg)
			if strings.Contains(err.Error(), id1.String()[16:40]) || strings.Contains(err.Error(), broken[16:40]) {
				t.Errorf("error %q quotes key material", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "absent.key")
		_, err := crypto.ReadIdentities(path)
		wantCode(t, err, registry.EINVALID)
		wantMessage(t, err, path)
	})
}

func TestParseRecipients(t *testing.T) {
	r1, r2 := newIdentity(t).Recipient().String(), newIdentity(t).Recipient().String()
	var h [2]string
	for i := range h {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			t.Fatal(err)
		}
		h[i] = id.Recipient().String()
	}
	const ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDXRWcGTiRkOD8HSwbOHDPWHAuKcd9dsk4R03a+SJsGI amt@example.org"
	tests := []struct {
		name, content string
		want          []string // nil means EINVALID
		msg           string
	}{
		{"one", r1 + "\n", []string{r1}, ""},
		{"no final newline", r1, []string{r1}, ""},
		{"comments and blank lines", "# Gesundheitsamt Köln\n\n" + r1 + "\n# Vertretung\n" + r2 + "\n\n", sortedStrings(r1, r2), ""},
		{"crlf", r1 + "\r\n" + r2 + "\r\n", sortedStrings(r1, r2), ""},
		{"ssh key", r1 + "\n" + ssh + "\n", nil, "line 2 is not an age recipient"},
		{"hybrid", h[0] + "\n", []string{h[0]}, ""},
		{"two hybrid", "# Amt\n" + h[0] + "\n" + h[1] + "\n", sortedStrings(h[0], h[1]), ""},
		{"mixed, classic first", r1 + "\n# neu\n" + h[0] + "\n", nil, "line 1 is classic (X25519), line 3 is post-quantum hybrid"},
		{"mixed, hybrid first", h[0] + "\n" + r1 + "\n", nil, "registry keygen writes one"},
		{"broken hybrid", h[0][:30] + otherChar(h[0][30]) + h[0][31:] + "\n", nil, "line 1 is not a valid age recipient"},
		{"plugin", "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t\n", nil, "no plugin recipients"},
		{"private key", r1 + "\n" + newIdentity(t).String() + "\n", nil, "line 2 holds a private key"},
		{"broken checksum", r1[:20] + otherChar(r1[20]) + r1[21:] + "\n", nil, "line 1 is not a valid age recipient"},
		{"uppercase", strings.ToUpper(r1) + "\n", nil, "line 1"},
		{"trailing space", r1 + " \n", nil, "line 1"},
		{"duplicate", r1 + "\n" + r2 + "\n# again\n" + r1 + "\n", nil, "line 4 repeats recipient"},
		{"empty", "", nil, "holds no recipient"},
		{"only comments", "# none yet\n\n", nil, "holds no recipient"},
		{"long line", "age1" + strings.Repeat("q", 9<<10), nil, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := crypto.ParseRecipients(strings.NewReader(tt.content))
			if tt.want == nil {
				wantCode(t, err, registry.EINVALID)
				wantMessage(t, err, tt.msg)
				if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
					t.Errorf("error %q quotes a private key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecipients: %v", err)
			}
			if !slices.Equal(got.Strings(), tt.want) {
				t.Errorf("Strings() = %q, want %q", got.Strings(), tt.want)
			}
			if len(got.List()) != len(tt.want) {
				t.Errorf("List() has %d recipients, want %d", len(got.List()), len(tt.want))
			}
			if wantKind, _ := crypto.KindOf(tt.want[0]); got.Kind() != wantKind {
				t.Errorf("Kind() = %s, want %s", got.Kind(), wantKind)
			}
		})
	}
}

func sortedStrings(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestReadRecipients(t *testing.T) {
	dir := t.TempDir()
	r := newIdentity(t).Recipient().String()
	good := filepath.Join(dir, "good.txt")
	writeFile(t, good, "# amt\n"+r+"\n")
	rs, err := crypto.ReadRecipients(good)
	if err != nil {
		t.Fatalf("ReadRecipients: %v", err)
	}
	if got := rs.Strings(); !slices.Equal(got, []string{r}) {
		t.Errorf("Strings() = %q, want [%q]", got, r)
	}
	bad := filepath.Join(dir, "bad.txt")
	writeFile(t, bad, "# nothing\n")
	_, err = crypto.ReadRecipients(bad)
	wantCode(t, err, registry.EINVALID)
	wantMessage(t, err, bad)
	_, err = crypto.ReadRecipients(filepath.Join(dir, "absent.txt"))
	wantCode(t, err, registry.EINVALID)
	wantMessage(t, err, "absent.txt")
}

func TestRecipientsFingerprint(t *testing.T) {
	r1, r2, r3 := newIdentity(t).Recipient().String(), newIdentity(t).Recipient().String(), newIdentity(t).Recipient().String()
	fp := func(content string) string {
		t.Helper()
		rs, err := crypto.ParseRecipients(strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return rs.Fingerprint()
	}
	base := fp(r1 + "\n" + r2 + "\n")
	sorted := sortedStrings(r1, r2)
	sum := sha256.Sum256([]byte(sorted[0] + "\n" + sorted[1]))
	if want := "sha256:" + hex.EncodeToString(sum[:]); base != want {
		t.Errorf("Fingerprint() = %q, want %q", base, want)
	}
	if got := fp("# reordered\n" + r2 + "\n\n" + r1); got != base {
		t.Errorf("reordered Fingerprint() = %q, want %q", got, base)
	}
	for name, content := range map[string]string{"subset": r1, "superset": r1 + "\n" + r2 + "\n" + r3, "other": r1 + "\n" + r3} {
		if got := fp(content); got == base {
			t.Errorf("%s: Fingerprint() equals that of another set", name)
		}
	}
}

// TestRecipientsImmutable checks that callers cannot change a parsed set
// through the slices it hands out.
func TestRecipientsImmutable(t *testing.T) {
	r1 := newIdentity(t).Recipient().String()
	rs, err := crypto.ParseRecipients(strings.NewReader(r1))
	if err != nil {
		t.Fatal(err)
	}
	rs.Strings()[0] = "changed"
	rs.List()[0] = nil
	if got := rs.Strings()[0]; got != r1 {
		t.Errorf("Strings()[0] = %q after caller's change, want %q", got, r1)
	}
	if rs.List()[0] == nil {
		t.Error("List()[0] is nil after caller's change")
	}
}

// errReader fails after its content, like a file on a failing disk.
type errReader struct{ r io.Reader }

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, errors.New("disk on fire")
	}
	return n, err
}

func TestParseRecipientsReadError(t *testing.T) {
	r1 := newIdentity(t).Recipient().String()
	_, err := crypto.ParseRecipients(errReader{strings.NewReader(r1 + "\n")})
	if err == nil {
		t.Fatal("ParseRecipients succeeded on a failing reader")
	}
	if got, want := registry.ErrorCode(err), registry.EINTERNAL; got != want {
		t.Errorf("error code = %q, want %q", got, want)
	}
}

// otherChar returns a bech32 character other than c.
func otherChar(c byte) string {
	if c == 'q' {
		return "p"
	}
	return "q"
}
