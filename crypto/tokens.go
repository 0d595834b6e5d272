package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// checkoutTokenPrefix starts every checkout token.
const checkoutTokenPrefix = "rgc_"

// minCheckoutKey is the shortest checkout key accepted: the store's key is
// 32 random bytes (registry.VisitStore.CheckoutKey).
const minCheckoutKey = 32

// CheckoutToken derives the checkout token of a visit from the store's
// checkout key: "rgc_" and the unpadded base64url encoding of
// HMAC-SHA256(key, "checkout\x00" + visitID), 47 characters in all. Nothing
// needs to be stored to verify it. It panics when key is shorter than 32
// bytes, which is a programming error.
func CheckoutToken(key []byte, visitID string) string {
	if len(key) < minCheckoutKey {
		panic("crypto: checkout key shorter than 32 bytes")
	}
	return checkoutTokenPrefix + base64.RawURLEncoding.EncodeToString(checkoutMAC(key, visitID))
}

func checkoutMAC(key []byte, visitID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("checkout\x00"))
	m.Write([]byte(visitID))
	return m.Sum(nil)
}

// VerifyCheckoutToken reports whether token is the checkout token of the
// visit, comparing in constant time. It is false for a key shorter than 32
// bytes and for anything that is not shaped like a token.
func VerifyCheckoutToken(key []byte, visitID, token string) bool {
	if len(key) < minCheckoutKey || len(token) != len(checkoutTokenPrefix)+43 {
		return false
	}
	if token[:len(checkoutTokenPrefix)] != checkoutTokenPrefix {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(token[len(checkoutTokenPrefix):])
	if err != nil {
		return false
	}
	return hmac.Equal(got, checkoutMAC(key, visitID))
}

// IdempotencyHash returns SHA-256("idempotency\x00" + tokenID + "\x00" +
// idempotencyKey), the stored form of a client's Idempotency-Key, scoped to
// the token that sent it (registry.Visit.IdempotencyHash).
func IdempotencyHash(tokenID, idempotencyKey string) []byte {
	h := sha256.New()
	h.Write([]byte("idempotency\x00"))
	h.Write([]byte(tokenID))
	h.Write([]byte{0})
	h.Write([]byte(idempotencyKey))
	return h.Sum(nil)
}

// RequestMAC returns HMAC-SHA256 with the idempotency key as key over the
// request body (registry.Visit.RequestMAC). It binds the key to its body so
// that a key reused for another body is detected, without storing a plain
// hash of the body, which a database reader could test guesses of contact
// data against without knowing the key. Compare MACs with hmac.Equal.
func RequestMAC(idempotencyKey string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(idempotencyKey))
	m.Write(body)
	return m.Sum(nil)
}
