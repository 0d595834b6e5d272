package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
)

func (a *app) keygenCmd() *cobra.Command {
	var out string
	var protect bool
	var kind crypto.KeyKind // the zero value: hybrid
	cmd := &cobra.Command{
		Use:   "keygen -o FILE",
		Short: "Create an age identity (key pair) for the health office",
		Long: `keygen writes a new age identity to FILE (mode 0600) and prints its
public half, the recipient, on standard output. By default the key is a
post-quantum hybrid (ML-KEM-768 + X25519, "age1pq1…", as age-keygen -pq
writes it): what is sealed to it stays sealed against a future quantum
computer. --kind x25519 writes a classic key ("age1…") for tools older
than age 1.3. All keys in one recipients file must be of one kind.

Run it on the health office's own machine, never on the registry server:
the identity is the only key that opens visitors' contact data. Put the
printed recipient into the recipients file that 'registry serve
--recipients' reads. The file works with the stock age tool
(age 1.3 or later: age -d -i FILE). With --protect the file is encrypted with a passphrase
you type, as 'age -p' would (age -d -i FILE asks for it, and so does
'registry decrypt'). For a key on a hardware token, use an age plugin
(for example age-plugin-yubikey) instead and pass its identity file to
decrypt.`,
		Example: `  registry keygen -o gesundheitsamt.key > recipients.txt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if out == "" {
				return withHint(fmt.Errorf("no output file"), "pass -o FILE; the identity is never printed")
			}
			var pass []byte
			if protect {
				if pass, err = newPassphrase(); err != nil {
					return err
				}
			}
			rcpt, err := crypto.WriteProtectedIdentityFile(out, pass, kind, a.now())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "registry: wrote the identity to %s; keep it on the health office's machine only\n", out)
			_, err = fmt.Fprintln(a.stdout, rcpt)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the identity to this `FILE` (must not exist)")
	cmd.Flags().Var(&kind, "kind", "key kind: hybrid (post-quantum, the default) or x25519 (classic)")
	cmd.Flags().BoolVar(&protect, "protect", false, "encrypt the identity file with a passphrase (asked on the terminal)")
	return cmd
}
