package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

func (a *app) approversCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvers",
		Short: "Manage the persons who approve trace requests, and their signing keys",
		Long: `approvers manages who may approve trace requests. An approver is a person
(usually a data-protection officer or a deputy) with one or more signing
keys of their own: a key file made with 'registry approvers keygen' on
their own computer or a USB stick, or an OpenSSH Ed25519 key held by
ssh-agent, a FIDO2 security key (ssh-keygen -t ed25519-sk) among them. The
server stores only public keys. Approving, rejecting and withdrawing are
signatures over the request, so a name typed on the command line decides
nothing, and two keys of one person count as one person.

Changes need other persons' endorsements (signatures, --key): the first
person is added without one (at installation); while there is one person,
that person endorses; from two persons on, every change needs two
different persons, not counting the person it is about unless there is no
second other person (with A and B, a change of A needs both). A change that
lacks endorsements waits as pending ('approvers pending') until the others
run 'approvers endorse'. Names that look like an approver's name ("Anna"
with a Cyrillic "А") are refused. Every change is in the audit log; after
one, give the health office a new trust file ('registry trust export').

--key takes a key file, "ssh-agent" (the agent's one Ed25519 key),
"ssh-agent:KEY-ID", or the .pub file of a key the agent holds.`,
	}
	var as string
	cmd.PersistentFlags().StringVar(&as, "as", "", "your name, recorded in the audit log as who ran the change (default: your login name)")
	settings(cmd.PersistentFlags(), "as")
	cmd.AddCommand(a.approversKeygenCmd(), a.approversAddCmd(&as, registry.ChangeAddPerson), a.approversAddCmd(&as, registry.ChangeAddKey),
		a.approversRemoveCmd(&as), a.approversEndorseCmd(&as), a.approversPendingCmd(), a.approversListCmd())
	return cmd
}

func (a *app) approversKeygenCmd() *cobra.Command {
	var out string
	var protect bool
	cmd := &cobra.Command{
		Use:   "keygen -o FILE [--protect]",
		Short: "Create your own signing key (run it on your computer, not on the server)",
		Long: `keygen writes a new signing key to FILE (mode 0600, never overwriting) and
prints its public key and key id. Keep FILE on your own computer or a USB
stick; with --protect it is encrypted with a passphrase you type (age's
passphrase format, as 'age -p'). Give the public key to IT for
'registry approvers add'.`,
		Example: `  registry approvers keygen -o ~/anna.registry-key --protect`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE")
			}
			var pass []byte
			if protect {
				p, err := newPassphrase()
				if err != nil {
					return err
				}
				pass = p
			}
			k, err := crypto.WriteSigningKeyFile(out, pass, a.now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s\npublic key: %s\nkey id: %s\n", out, registry.FormatPublicKey(k.Public()), k.ID())
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the key to this `FILE`")
	cmd.Flags().BoolVar(&protect, "protect", false, "encrypt the key file with a passphrase (asked on the terminal)")
	return cmd
}

// newPassphrase asks for a new passphrase twice.
func newPassphrase() ([]byte, error) {
	ask := crypto.TerminalPassphrase()
	p1, err := ask("new key file")
	if err != nil {
		return nil, err
	}
	if os.Getenv("REGISTRY_PASSPHRASE_FILE") == "" {
		p2, err := ask("new key file (again)")
		if err != nil {
			return nil, err
		}
		if string(p1) != string(p2) {
			return nil, registry.Errorf(registry.EINVALID, "the passphrases differ")
		}
	}
	if len(p1) < 10 {
		return nil, registry.Errorf(registry.EINVALID, "the passphrase is shorter than 10 characters")
	}
	return p1, nil
}

// escaped returns s quoted when it holds anything but printable text, so
// that a name can never rewrite the terminal or a list.
func escaped(s string) string {
	if _, _, bad := registry.BadRune(s); bad || strings.ContainsAny(s, "\t\n\r") {
		return fmt.Sprintf("%+q", s)
	}
	return s
}

func (a *app) trustCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Write the trust file the health office pins: the instance key and the approvers' keys",
	}
	var out, keystore string
	exp := &cobra.Command{
		Use:   "export -o FILE --keystore DIR",
		Short: "Write the trust file for the health office",
		Long: `export writes the trust file: the public key of this registry instance, which
signs every export bundle, and the public keys and names of the active
approvers. Hand it to the health office at setup (and after every change of
approvers) and compare the printed digest on the phone: 'registry decrypt
--trust FILE' refuses every bundle that this instance did not sign or that
lacks the approvals of pinned approvers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE")
			}
			keys, err := crypto.OpenKeyStore(keystore)
			if err != nil {
				return err
			}
			inst, err := keys.InstanceKey(a.now())
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				set, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				t := export.TrustFromSet(inst.Public(), set)
				if len(t.Approvers) == 0 {
					return withHint(registry.Errorf(registry.ECONFLICT, "there is no approver yet"), "add one first: registry approvers add NAME --public-key KEY")
				}
				if err := checkNewFile(out); err != nil {
					return err
				}
				if err := writeFileAtomic(out, func(w io.Writer) error { _, err := w.Write(t.Marshal()); return err }); err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "wrote %s: instance %s, %d approvers with %d keys\ndigest %s (read it to the health office on the phone)\n",
					out, registry.KeyID(inst.Public()), t.Persons(), len(t.Approvers), t.Digest())
				return err
			})
		},
	}
	exp.Flags().StringVarP(&out, "output", "o", "", "write the trust file to this `FILE`")
	exp.Flags().StringVar(&keystore, "keystore", "", "epoch key store `DIR` (holds the instance key)")
	settings(exp.Flags(), "keystore")
	cmd.AddCommand(exp)
	return cmd
}

func (a *app) recipientsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recipients",
		Short: "Sign a changed health-office recipients file",
		Long: `serve pins the fingerprint of the health office's recipients file in the
audit log at the first start and refuses to start when the file changes,
unless approvers signed the change: a swapped file would send every new
registration to someone else's key. The change needs the signatures of two
persons once there are two approvers (one while there is one). When the
health office really changes its keys, check the new file with the office
(compare the fingerprint on the phone) and sign it; each further approver
signs the same file, adding to FILE.sig.`,
	}
	var keys []string
	sign := &cobra.Command{
		Use:   "sign FILE --key YOUR-KEY",
		Short: "Sign a recipients file: adds your signature to FILE.sig, which serve checks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rcpts, err := crypto.ReadRecipients(args[0])
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				return withHint(registry.Errorf(registry.EINVALID, "no signing key given"), "pass --key FILE, or --key ssh-agent")
			}
			sigs, err := readRecipientsSignature(args[0])
			if err != nil {
				return err
			}
			body := fmt.Sprintf("# signatures of %s, fingerprint %s\n", args[0], rcpts.Fingerprint())
			for _, sg := range sigs {
				body += fmt.Sprintf("signer %s\nsignature %s\n", sg.Key, base64.StdEncoding.EncodeToString(sg.Signature))
			}
			var ids []string
			for _, spec := range keys {
				sg, err := readSigner(spec)
				if err != nil {
					return err
				}
				sig, err := sg.SignStatement(registry.PurposeRecipients, []byte(rcpts.Fingerprint()))
				if err != nil {
					return err
				}
				body += fmt.Sprintf("signer %s\nsignature %s\n", sg.PublicKey().ID(), base64.StdEncoding.EncodeToString(sig))
				ids = append(ids, sg.PublicKey().ID())
			}
			if err := os.WriteFile(args[0]+".sig", []byte(body), 0o644); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s.sig (fingerprint %s, signed by %s; %d signatures)\n", args[0], rcpts.Fingerprint(), strings.Join(ids, ", "), len(sigs)+len(ids))
			return err
		},
	}
	sign.Flags().StringArrayVar(&keys, "key", nil, "your approver key: a key file, ssh-agent, ssh-agent:KEY-ID or a .pub file of an agent's key")
	cmd.AddCommand(sign)
	return cmd
}

// readRecipientsSignature reads path.sig when it exists: pairs of
// "signer KEY-ID" and "signature BASE64" lines, one pair per approver;
// none without the file. A signature of a fingerprint other than the
// file's simply does not verify.
func readRecipientsSignature(path string) ([]registry.RecipientsSignature, error) {
	f, err := os.Open(path + ".sig")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "cannot read %s.sig: %v", path, err)
	}
	defer f.Close()
	var sigs []registry.RecipientsSignature
	signer := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch k {
		case "signer":
			signer = v
		case "signature":
			sig, err := base64.StdEncoding.DecodeString(v)
			if err != nil || signer == "" {
				return nil, registry.Errorf(registry.EINVALID, "%s.sig is malformed", path)
			}
			sigs = append(sigs, registry.RecipientsSignature{Key: signer, Signature: sig})
			signer = ""
		}
	}
	return sigs, sc.Err()
}
