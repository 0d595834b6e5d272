package crypto_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cityhall/registry/crypto"
)

// The fingerprint identifies a recipient set whatever the order, comments
// and blank lines of the file; the store pins it.
func ExampleRecipients_Fingerprint() {
	file := `# Gesundheitsamt Köln, Infektionsschutz
age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p

# Vertretung
age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj
`
	r, err := crypto.ParseRecipients(strings.NewReader(file))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(r.Strings()), "recipients")
	fmt.Println(r.Fingerprint())
	// Output:
	// 2 recipients
	// sha256:0dfe01674ccd58de8f00454fcdc1099511c11b52db7cfcc548478b2f3e1aaaac
}

func ExampleCheckoutToken() {
	key := bytes.Repeat([]byte{0x42}, 32) // the store's checkout key
	token := crypto.CheckoutToken(key, "0123456789abcdef0123456789abcdef")
	fmt.Println(token)
	fmt.Println(crypto.VerifyCheckoutToken(key, "0123456789abcdef0123456789abcdef", token))
	fmt.Println(crypto.VerifyCheckoutToken(key, "fedcba9876543210fedcba9876543210", token))
	// Output:
	// rgc_8TxMTsEg5Cwp0zQrOq2fwt0vseJlMvwqs_f3PkWvqH4
	// true
	// false
}
