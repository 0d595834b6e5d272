package crypto_test

import (
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/cityhall/registry/crypto"
)

func TestPasswordHash(t *testing.T) {
	h := crypto.HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string with the OWASP parameters", h)
	}
	if h == crypto.HashPassword("correct horse battery") {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !crypto.VerifyPassword(h, "correct horse battery") {
		t.Error("the password does not verify")
	}
	for _, wrong := range []string{"", "correct horse batter", "Correct horse battery", "correct horse battery "} {
		if crypto.VerifyPassword(h, wrong) {
			t.Errorf("%q verifies", wrong)
		}
	}
	if crypto.VerifyNothing("x") {
		t.Error("VerifyNothing returned true")
	}
}

// TestPasswordHashInterop checks the tag against x/crypto's argon2id
// directly: the PHC string means what it says.
func TestPasswordHashInterop(t *testing.T) {
	h := crypto.HashPassword("pforte-2026")
	parts := strings.Split(h, "$")
	salt, tag := mustB64(t, parts[4]), mustB64(t, parts[5])
	if got := argon2.IDKey([]byte("pforte-2026"), salt, 2, 19456, 1, 32); string(got) != string(tag) {
		t.Error("the stored tag is not argon2id(password, salt, t=2, m=19456, p=1)")
	}
}

func TestPasswordHashTampered(t *testing.T) {
	h := crypto.HashPassword("pforte-2026")
	for _, bad := range []string{
		"", "plain", strings.Replace(h, "argon2id", "argon2i", 1),
		strings.Replace(h, "m=19456", "m=4194304", 1), // 4 GiB: refused, not computed
		strings.Replace(h, "t=2", "t=1000", 1),
		h[:len(h)-10],
	} {
		if crypto.VerifyPassword(bad, "pforte-2026") {
			t.Errorf("tampered hash %q verifies", bad)
		}
	}
}
