package crypto_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

func FuzzParseRecipients(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	r := id.Recipient().String()
	for _, seed := range []string{
		r, "# c\n\n" + r + "\r\n", r + "\n" + r, "ssh-ed25519 AAAA x", id.String(), "", "\n#\n", "age1", "\xff",
		"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\nage1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := crypto.ParseRecipients(strings.NewReader(in))
		if err != nil {
			if registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("error code = %q, want EINVALID", registry.ErrorCode(err))
			}
			if rs != nil {
				t.Fatal("ParseRecipients returned recipients with an error")
			}
			return
		}
		strs := rs.Strings()
		if len(strs) == 0 || len(rs.List()) != len(strs) || !slices.IsSorted(strs) || len(slices.Compact(slices.Clone(strs))) != len(strs) {
			t.Fatalf("invalid recipient set %q", strs)
		}
		// The canonical form parses to the same set.
		again, err := crypto.ParseRecipients(strings.NewReader(strings.Join(strs, "\n")))
		if err != nil || again.Fingerprint() != rs.Fingerprint() {
			t.Fatalf("canonical form reparsed: %v", err)
		}
	})
}

func FuzzOpenInner(f *testing.F) {
	o := newOffice(f)
	c := testContact()
	plain, err := json.Marshal(c)
	if err != nil {
		f.Fatal(err)
	}
	valid := sealInner(f, o, string(plain))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(sealInner(f, o, `{"v":1,"x":1}`))
	f.Add(sealInner(f, o, `null`))
	f.Add([]byte("age-encryption.org/v1\n-> X25519 \n--- \n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, inner []byte) {
		got, err := crypto.OpenInner(inner, o.identities)
		if err != nil {
			if registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("error code = %q, want EINVALID", registry.ErrorCode(err))
			}
			return
		}
		if got.Version != registry.ContactVersion {
			t.Fatalf("opened a contact of version %d", got.Version)
		}
	})
}
