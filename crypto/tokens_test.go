package crypto_test

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cityhall/registry/crypto"
)

// Fixed vectors, computed independently (Python hmac/hashlib). Issued
// checkout tokens must stay valid across releases.
const (
	vecVisit    = "0123456789abcdef0123456789abcdef"
	vecToken    = "rgc_8TxMTsEg5Cwp0zQrOq2fwt0vseJlMvwqs_f3PkWvqH4"
	vecIdemHash = "8e8ec2dcb9147737d3c4ce0e0dd5b34b24da253ee11e08fc48e8e39dd997fb83"
	vecReqMAC   = "46574a11637c5746bd56eeed587fdfe1f15f00f32ee3bff078bd7cfe74191961"
)

var vecKey = bytes.Repeat([]byte{0x42}, 32)

func TestCheckoutToken(t *testing.T) {
	if got := crypto.CheckoutToken(vecKey, vecVisit); got != vecToken {
		t.Errorf("CheckoutToken = %q, want %q", got, vecToken)
	}
	if got, want := len(vecToken), 47; got != want {
		t.Errorf("token length = %d, want %d", got, want)
	}
	if got := crypto.CheckoutToken(vecKey, "fedcba9876543210fedcba9876543210"); got == vecToken {
		t.Error("two visits share a checkout token")
	}
	otherKey := bytes.Repeat([]byte{0x43}, 32)
	if got := crypto.CheckoutToken(otherKey, vecVisit); got == vecToken {
		t.Error("two keys give the same checkout token")
	}
	t.Run("short key panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("CheckoutToken with a 16-byte key did not panic")
			}
		}()
		crypto.CheckoutToken(vecKey[:16], vecVisit)
	})
}

func TestVerifyCheckoutToken(t *testing.T) {
	tests := []struct {
		name         string
		key          []byte
		visit, token string
		want         bool
	}{
		{"valid", vecKey, vecVisit, vecToken, true},
		{"other visit", vecKey, "fedcba9876543210fedcba9876543210", vecToken, false},
		{"other key", bytes.Repeat([]byte{0x43}, 32), vecVisit, vecToken, false},
		{"short key", vecKey[:31], vecVisit, vecToken, false},
		{"empty key", nil, vecVisit, vecToken, false},
		{"empty token", vecKey, vecVisit, "", false},
		{"truncated", vecKey, vecVisit, vecToken[:46], false},
		{"extended", vecKey, vecVisit, vecToken + "A", false},
		{"changed character", vecKey, vecVisit, vecToken[:10] + "A" + vecToken[11:], false},
		{"non-canonical last character", vecKey, vecVisit, vecToken[:46] + "5", false},
		{"other prefix", vecKey, vecVisit, "rgt_" + vecToken[4:], false},
		{"padded", vecKey, vecVisit, vecToken[:46] + "=", false},
		{"standard base64 alphabet", vecKey, vecVisit, strings.ReplaceAll(vecToken, "_", "/"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := crypto.VerifyCheckoutToken(tt.key, tt.visit, tt.token); got != tt.want {
				t.Errorf("VerifyCheckoutToken = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdempotencyHash(t *testing.T) {
	if got := hex.EncodeToString(crypto.IdempotencyHash("0123456789abcdef", "order-1")); got != vecIdemHash {
		t.Errorf("IdempotencyHash = %s, want %s", got, vecIdemHash)
	}
	pairs := [][2]string{{"0123456789abcdef", "order-2"}, {"fedcba9876543210", "order-1"}, {"0123456789abcde", "forder-1"}}
	for _, p := range pairs {
		if got := hex.EncodeToString(crypto.IdempotencyHash(p[0], p[1])); got == vecIdemHash {
			t.Errorf("IdempotencyHash(%q, %q) collides", p[0], p[1])
		}
	}
}

func TestRequestMAC(t *testing.T) {
	body := []byte(`{"site":"rathaus"}`)
	mac := crypto.RequestMAC("order-1", body)
	if got := hex.EncodeToString(mac); got != vecReqMAC {
		t.Errorf("RequestMAC = %s, want %s", got, vecReqMAC)
	}
	if hmac.Equal(mac, crypto.RequestMAC("order-1", []byte(`{"site":"rathaus "}`))) {
		t.Error("RequestMAC does not depend on the body")
	}
	if hmac.Equal(mac, crypto.RequestMAC("order-2", body)) {
		t.Error("RequestMAC does not depend on the key")
	}
}
