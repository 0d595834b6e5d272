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
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

func (a *app) approversCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvers",
		Short: "Manage the signing keys of the people who approve trace requests",
		Long: `approvers manages who may approve trace requests. Every approver (usually a
data-protection officer) holds an Ed25519 signing key of their own, made with
'registry approvers keygen' on their own computer or a USB stick; the
server stores only the public key. Approving, rejecting and withdrawing are
signatures over the request, so a name typed on the command line decides
nothing.

The first approver is added without a signature (at installation); every
later addition and every removal needs the key of an active approver
(--key). Each change is in the audit log. After a change, give the health
office a new trust file ('registry trust export').`,
	}
	cmd.AddCommand(a.approversKeygenCmd(), a.approversAddCmd(), a.approversListCmd(), a.approversRemoveCmd())
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

// readKey reads an approver's signing key file, asking for its
// passphrase on the terminal when it is protected.
func readKey(path string) (*crypto.SigningKey, error) {
	if path == "" {
		return nil, withHint(registry.Errorf(registry.EINVALID, "no signing key given"), "pass --key FILE: your approver key ('registry approvers keygen')")
	}
	return crypto.ReadSigningKeyFile(path, crypto.TerminalPassphrase())
}

func (a *app) approversAddCmd() *cobra.Command {
	var pub, key string
	cmd := &cobra.Command{
		Use:   "add NAME --public-key KEY [--key YOUR-KEY-FILE]",
		Short: "Register an approver's public key (signed by an existing approver after the first)",
		Example: `  registry approvers add "Anna Schmidt (DSB)" --public-key registry-ed25519:…
  registry approvers add "Bert Meier (DSB)" --public-key registry-ed25519:… --key ~/anna.registry-key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ap, err := registry.NewApprover(args[0], pub, a.now())
			if err != nil {
				return err
			}
			if key != "" {
				k, err := readKey(key)
				if err != nil {
					return err
				}
				ap.AddedBy = k.ID()
				ap.Signature = k.Sign(registry.PurposeApprover, registry.ApproverStatement("add", ap))
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				err := s.AddApprover(cmd.Context(), ap)
				if registry.ErrorCode(err) == registry.EFORBIDDEN && key == "" {
					return withHint(err, "pass --key FILE with the signing key of an active approver")
				} else if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "added approver %s (key id %s)\ngive the health office a new trust file: registry trust export -o trust.txt\n", ap.Name, ap.ID)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&pub, "public-key", "", "the approver's public key (registry-ed25519:…, printed by 'approvers keygen')")
	cmd.Flags().StringVar(&key, "key", "", "your own approver key `FILE`, to sign the addition (not for the first approver)")
	return cmd
}

func (a *app) approversListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the approvers, removed ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				list, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, list)
				}
				verified := map[string]bool{}
				for _, v := range registry.VerifiedApprovers(list) {
					verified[v.ID] = true
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KEY ID\tNAME\tADDED\tBY\tSTATE")
				for _, ap := range list {
					state := "active"
					switch {
					case !verified[ap.ID]:
						state = "UNPROVEN (no valid signature: the table was edited)"
					case ap.RemovedAt != nil:
						state = "removed " + local(*ap.RemovedAt)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ap.ID, escaped(ap.Name), local(ap.AddedAt), dash(ap.AddedBy), state)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) approversRemoveCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "remove KEY-ID --key YOUR-KEY-FILE",
		Short: "Remove an approver (signed by an active approver; never the last one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := readKey(key)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				list, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				var target *registry.Approver
				for _, ap := range list {
					if ap.ID == args[0] && ap.RemovedAt == nil {
						target = ap
					}
				}
				if target == nil {
					return registry.Errorf(registry.ENOTFOUND, "no active approver has this key id; see 'registry approvers list'")
				}
				sig := k.Sign(registry.PurposeApprover, registry.ApproverStatement("remove", target))
				if err := s.RemoveApprover(cmd.Context(), target.ID, k.ID(), sig, a.now()); err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "removed approver %s (key id %s)\ngive the health office a new trust file: registry trust export -o trust.txt\n", escaped(target.Name), target.ID)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "your own approver key `FILE`")
	return cmd
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
				list, err := s.Approvers(cmd.Context())
				if err != nil {
					return err
				}
				t := &export.Trust{Instance: inst.Public(), Approvers: map[string]export.TrustedApprover{}}
				for _, ap := range registry.VerifiedApprovers(list) {
					if ap.RemovedAt == nil {
						t.Approvers[ap.ID] = export.TrustedApprover{Name: ap.Name, Key: ap.Key()}
					}
				}
				if len(t.Approvers) == 0 {
					return withHint(registry.Errorf(registry.ECONFLICT, "there is no approver yet"), "add one first: registry approvers add NAME --public-key KEY")
				}
				if err := checkNewFile(out); err != nil {
					return err
				}
				if err := writeFileAtomic(out, func(w io.Writer) error { _, err := w.Write(t.Marshal()); return err }); err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "wrote %s: instance %s, %d approvers\ndigest %s (read it to the health office on the phone)\n",
					out, registry.KeyID(inst.Public()), len(t.Approvers), t.Digest())
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
		Long: `serve pins the fingerprint of the health office's recipients file at the first
start and refuses to start when the file changes, unless the change is
signed by an approver: a swapped file would send every new registration to
someone else's key. When the health office really changes its keys, check the
new file with the office (compare the fingerprint on the phone) and sign it.`,
	}
	var key string
	sign := &cobra.Command{
		Use:   "sign FILE --key YOUR-KEY-FILE",
		Short: "Sign a recipients file: writes FILE.sig, which serve checks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rcpts, err := crypto.ReadRecipients(args[0])
			if err != nil {
				return err
			}
			k, err := readKey(key)
			if err != nil {
				return err
			}
			sig := k.Sign(registry.PurposeRecipients, []byte(rcpts.Fingerprint()))
			body := fmt.Sprintf("# signature of %s, fingerprint %s\nsigner %s\nsignature %s\n",
				args[0], rcpts.Fingerprint(), k.ID(), base64.StdEncoding.EncodeToString(sig))
			if err := os.WriteFile(args[0]+".sig", []byte(body), 0o644); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s.sig (fingerprint %s, signed by %s)\n", args[0], rcpts.Fingerprint(), k.ID())
			return err
		},
	}
	sign.Flags().StringVar(&key, "key", "", "your own approver key `FILE`")
	cmd.AddCommand(sign)
	return cmd
}

// readRecipientsSignature reads path.sig when it exists: the signer's key
// id and the signature; "" and nil without one.
func readRecipientsSignature(path string) (string, []byte, error) {
	f, err := os.Open(path + ".sig")
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	} else if err != nil {
		return "", nil, registry.Errorf(registry.EINVALID, "cannot read %s.sig: %v", path, err)
	}
	defer f.Close()
	var signer string
	var sig []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch k {
		case "signer":
			signer = v
		case "signature":
			if sig, err = base64.StdEncoding.DecodeString(v); err != nil {
				return "", nil, registry.Errorf(registry.EINVALID, "%s.sig is malformed", path)
			}
		}
	}
	return signer, sig, sc.Err()
}
