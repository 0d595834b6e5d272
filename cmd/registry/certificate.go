package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/retention"
)

func (a *app) certificateCmd() *cobra.Command {
	var keystore, out, as, name string
	policy := retention.DefaultPolicy()
	cmd := &cobra.Command{
		Use:   "certificate --month YYYY-MM -o FILE",
		Short: "Issue a month's deletion certificate (PDF and signed JSON) for the records of processing",
		Long: `certificate writes the deletion certificate of a month that the DPO files
with the records of processing: per day, the visits registered (from the
audit log), the visits deleted and by which purge, the day key destroyed
and when, the exports made from the day (case references only), and the
statement that nothing of that day remains readable.

It writes FILE.json, signed with the instance key (verifiable offline with
'registry certificate verify'), and FILE.pdf, the readable copy, which
prints the JSON file's SHA-256. It refuses a month with a day still within
the retention period, and one the purge has not finished. The audit log
records the issue.`,
		Example: `  registry certificate --month 2026-11 -o loeschbescheinigung-2026-11
  registry certificate verify loeschbescheinigung-2026-11.json --trust rathaus.trust`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			month, _ := cmd.Flags().GetString("month")
			return a.runCertificate(cmd.Context(), month, keystore, out, as, name, policy.Retention)
		},
	}
	f := cmd.Flags()
	f.String("month", "", "the month, YYYY-MM")
	f.StringVarP(&out, "output", "o", "", "the files' name without extension: writes NAME.json and NAME.pdf")
	f.StringVar(&keystore, "keystore", "", "epoch key store `DIR` (holds the instance key)")
	f.StringVar(&as, "as", "", "your name, recorded in the audit log (default: your login name)")
	f.StringVar(&name, "name", "", "the registry's name on the certificate (default: the sites' names)")
	settings(f, "keystore", "as")
	policyFlags(f, &policy)
	cmd.AddCommand(a.certificateVerifyCmd())
	return cmd
}

func (a *app) runCertificate(ctx context.Context, month, keystore, out, as, name string, period time.Duration) error {
	if month == "" || out == "" {
		return withHint(registry.Errorf(registry.EINVALID, "--month and -o are required"), "for example: registry certificate --month 2026-11 -o loeschbescheinigung-2026-11")
	}
	actor, err := dpoActor(as)
	if err != nil {
		return err
	}
	if keystore == "" {
		return withHint(registry.Errorf(registry.EINVALID, "no key store configured"), "pass --keystore DIR (or REGISTRY_KEYSTORE): the certificate is signed with the instance key there")
	}
	keys, err := crypto.OpenKeyStore(keystore)
	if err != nil {
		return err
	}
	key, err := keys.InstanceKey(a.now())
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(store registry.Store) error {
		c, err := retention.BuildCertificate(ctx, store, month, a.now(), period)
		if err != nil {
			return err
		}
		if name == "" {
			sites, err := store.Sites(ctx)
			if err != nil {
				return err
			}
			var names []string
			for _, s := range sites {
				names = append(names, s.Name)
			}
			name = strings.Join(names, ", ")
		}
		file, err := c.Sign(key)
		if err != nil {
			return err
		}
		digest := retention.Digest(file)
		var pdf bytes.Buffer
		if err := retention.WriteCertificatePDF(&pdf, c, digest, name); err != nil {
			return err
		}
		ev, err := registry.NewAuditEvent(a.now(), actor, "", registry.CertificateIssued{Month: month, Digest: digest, Registered: c.Registered, Deleted: c.Deleted})
		if err != nil {
			return err
		}
		write := func(data []byte) func(io.Writer) error {
			return func(w io.Writer) error { _, err := w.Write(data); return err }
		}
		if err := writeFileAtomic(out+".json", write(file)); err != nil {
			return withHint(err, "choose another -o, or move the old file away")
		}
		if err := writeFileAtomic(out+".pdf", write(pdf.Bytes())); err != nil {
			os.Remove(out + ".json")
			return err
		}
		if err := store.AppendAudit(ctx, ev); err != nil {
			os.Remove(out + ".json")
			os.Remove(out + ".pdf")
			return fmt.Errorf("record the certificate in the audit log (the files were removed): %w", err)
		}
		_, err = fmt.Fprintf(a.stdout, "wrote %s.json and %s.pdf: %s, %d visits registered, %d deleted, sha256 %s\n", out, out, month, c.Registered, c.Deleted, digest)
		return err
	})
}

func (a *app) certificateVerifyCmd() *cobra.Command {
	var trust string
	cmd := &cobra.Command{
		Use:   "verify FILE.json --trust FILE",
		Short: "Check a deletion certificate against the registry's trust file (offline)",
		Long: `verify checks the certificate's signature against the instance key in the
trust file ('registry trust export'), prints what it certifies and the
file's SHA-256, which its PDF copy prints too. A changed certificate is
refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if trust == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no trust file"), "pass --trust FILE: the registry's trust file ('registry trust export')")
			}
			t, err := export.ReadTrust(trust)
			if err != nil {
				return err
			}
			file, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			c, err := retention.VerifyCertificate(file, t.Instance)
			if err != nil {
				return err
			}
			nothing := 0
			for _, d := range c.Days {
				if d.Remaining == 0 && (d.KeyDestroyed != nil || d.NoKey) {
					nothing++
				}
			}
			_, err = fmt.Fprintf(a.stdout, "certificate for %s verifies (instance key %s, issued %s)\n%d visits registered, %d deleted; %d of %d days without readable data\nsha256 %s\n",
				c.Month, c.Instance, c.IssuedAt.In(registry.LocalZone).Format("02.01.2006 15:04"), c.Registered, c.Deleted, nothing, len(c.Days), retention.Digest(file))
			return err
		},
	}
	cmd.Flags().StringVar(&trust, "trust", "", "the registry's trust `FILE`")
	return cmd
}
