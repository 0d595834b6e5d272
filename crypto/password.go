package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Password hashing for staff accounts: argon2id (RFC 9106) with the
// parameters OWASP recommends for argon2id with little memory (19 MiB, two
// passes, one lane), 16 bytes of salt and a 32-byte tag, stored as a PHC
// string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<tag>. Verifying costs
// about 30 ms of one core and 19 MiB; hashing is limited to
// maxConcurrentHashes at a time so that a flood of sign-ins cannot
// exhaust memory (the limits of the sign-in page come first).
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32

	maxConcurrentHashes = 4
)

var hashing = make(chan struct{}, maxConcurrentHashes)

// HashPassword returns the PHC string of pw's argon2id hash under a new
// salt.
func HashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	return encodePHC(argonMemory, argonTime, argonThreads, salt, argonTag(pw, salt, argonMemory, argonTime, argonThreads, argonKeyLen))
}

// VerifyPassword reports whether pw matches the PHC string hash, in
// constant time over the tag. A malformed hash matches nothing.
func VerifyPassword(hash, pw string) bool {
	m, t, p, salt, tag, err := decodePHC(hash)
	if err != nil {
		return false
	}
	got := argonTag(pw, salt, m, t, p, uint32(len(tag)))
	return subtle.ConstantTimeCompare(got, tag) == 1
}

// dummyHash is verified against when an account does not exist, so that
// a sign-in takes as long for an unknown login as for a wrong password.
var dummyHash = sync.OnceValue(func() string { return HashPassword("registry: no such account") })

// VerifyNothing spends the time of one VerifyPassword and returns false.
func VerifyNothing(pw string) bool {
	VerifyPassword(dummyHash(), pw)
	return false
}

func argonTag(pw string, salt []byte, m, t uint32, p uint8, n uint32) []byte {
	hashing <- struct{}{}
	defer func() { <-hashing }()
	return argon2.IDKey([]byte(pw), salt, t, m, p, n)
}

var b64 = base64.RawStdEncoding

func encodePHC(m, t uint32, p uint8, salt, tag []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(tag))
}

// decodePHC parses an argon2id PHC string with sane parameters (so that a
// tampered hash cannot make a sign-in cost gigabytes).
func decodePHC(s string) (m, t uint32, p uint8, salt, tag []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return 0, 0, 0, nil, nil, fmt.Errorf("not an argon2id hash")
	}
	var pp uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &pp); err != nil {
		return 0, 0, 0, nil, nil, fmt.Errorf("malformed argon2id parameters")
	}
	if m < 8*1024 || m > 256*1024 || t < 1 || t > 10 || pp < 1 || pp > 8 {
		return 0, 0, 0, nil, nil, fmt.Errorf("argon2id parameters out of range")
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return 0, 0, 0, nil, nil, fmt.Errorf("malformed argon2id salt")
	}
	if tag, err = b64.DecodeString(parts[5]); err != nil || len(tag) < 16 || len(tag) > 64 {
		return 0, 0, 0, nil, nil, fmt.Errorf("malformed argon2id tag")
	}
	return m, t, uint8(pp), salt, tag, nil
}
