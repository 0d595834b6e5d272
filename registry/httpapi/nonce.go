package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// Form nonces. Every rendered check-in form carries a nonce the server
// issued: 8 bytes of issue time and 12 random bytes, and an HMAC under the
// server secret's form key over them and the site. The nonce is the
// registration's idempotency key, so that a reload or a double tap
// registers once; because the server signs it, a client cannot choose its
// own idempotency keys (or guess another form's), and because it is bound
// to the site and expires, a nonce of one poster cannot be replayed
// elsewhere or forever.

// nonceMaxAge is how long a form may stay open before it is sent: a
// visitor who filled it in slowly, or left the page open all day.
const nonceMaxAge = 12 * time.Hour

var nonceEncoding = base64.RawURLEncoding

// issueNonce returns a new nonce for a form of site.
func issueNonce(key []byte, site string, now time.Time) string {
	payload := make([]byte, 20)
	binary.BigEndian.PutUint64(payload, uint64(now.Unix()))
	if _, err := rand.Read(payload[8:]); err != nil {
		panic(err)
	}
	return nonceEncoding.EncodeToString(payload) + "." + nonceEncoding.EncodeToString(nonceMAC(key, site, payload))
}

// checkNonce reports whether nonce was issued by this server for a form
// of site and has not expired at now.
func checkNonce(key []byte, site, nonce string, now time.Time) bool {
	p, m, ok := strings.Cut(nonce, ".")
	if !ok || len(nonce) > 64 {
		return false
	}
	payload, err := nonceEncoding.Strict().DecodeString(p)
	if err != nil || len(payload) != 20 {
		return false
	}
	mac, err := nonceEncoding.Strict().DecodeString(m)
	if err != nil || !hmac.Equal(mac, nonceMAC(key, site, payload)) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)
	return !issued.After(now.Add(time.Minute)) && now.Sub(issued) <= nonceMaxAge
}

func nonceMAC(key []byte, site string, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("checkin form nonce\x00" + site + "\x00"))
	h.Write(payload)
	return h.Sum(nil)[:16]
}
