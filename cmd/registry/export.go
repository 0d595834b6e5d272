package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/retention"
)

type exportOptions struct {
	out, keystore, recipients, as, dataDir string
	maxStay                                time.Duration
}

func (a *app) exportCmd() *cobra.Command {
	o := exportOptions{maxStay: retention.DefaultPolicy().MaxStay}
	cmd := &cobra.Command{
		Use:   "export ID -o FILE",
		Short: "Write the export bundle of an approved trace request to a file",
		Long: `export writes the bundle of an approved trace request to FILE, for handing it
to the health office by other means than the API (a USB stick, secure
mail). It is the same bundle the API serves: the request's records, still
sealed to the health office, in one file sealed to the health office.
Nobody on this server can open it. A request exports once; the export is
recorded in the audit log, and a refused export is too.`,
		Example: `  registry export 3f2a… -o GA-2026-0815.registry-export.age --keystore /var/lib/registry-keys \
    --recipients /etc/registry/recipients.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runExport(cmd.Context(), args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "write the bundle to this `FILE` (must not exist)")
	f.StringVar(&o.keystore, "keystore", "", "epoch key store `DIR`")
	f.StringVar(&o.recipients, "recipients", "", "the health office's age recipients `FILE`")
	f.StringVar(&o.as, "as", "", "your name, recorded in the audit log (default: your login name)")
	f.Var(days{&o.maxStay}, "max-stay", "open visits count as present for this long after check-in")
	f.StringVar(&o.dataDir, "data-dir", "", "`DIR` whose private tmp holds the bundle while it is written (default: the database's directory, for PostgreSQL the key store's)")
	settings(f, "keystore", "recipients", "as", "max-stay", "data-dir")
	return cmd
}

func (a *app) runExport(ctx context.Context, id string, o *exportOptions) error {
	if o.out == "" {
		return withHint(registry.Errorf(registry.EINVALID, "no output file"), "pass -o FILE")
	}
	if _, err := os.Stat(o.out); err == nil {
		return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", o.out)
	}
	actor, err := dpoActor(o.as)
	if err != nil {
		return err
	}
	rcpts, err := crypto.ReadRecipients(o.recipients)
	if err != nil {
		return err
	}
	keys, err := crypto.OpenKeyStore(o.keystore)
	if err != nil {
		return err
	}
	scratch, err := a.scratch(o.dataDir, o.keystore)
	if err != nil {
		return err
	}
	instance, err := keys.InstanceKey(a.now())
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s registry.Store) error {
		sites, err := s.Sites(ctx)
		if err != nil {
			return err
		}
		job := &export.Job{Store: s, Audit: s, Actor: actor, RequestID: id, Scratch: scratch, Anchors: keys.Anchors(instance),
			Sealing: export.Sealing{Keys: keys, Recipients: rcpts, Instance: instance, MaxStay: o.maxStay, Now: a.now(), SiteNames: registry.SiteNames(sites)}}
		f, req, err := job.Run(ctx)
		var anchorErr *export.AnchorError
		if errors.As(err, &anchorErr) {
			fmt.Fprintf(a.stderr, "registry: warning: %v (the export is recorded; the next one checks against the older anchor)\n", err)
			err = nil
		}
		if err != nil {
			return err
		}
		defer f.Remove()
		if err := a.deliver(f, o.out); err != nil {
			return fmt.Errorf("write %s (the export is recorded; run the export again after a new approval): %w", o.out, err)
		}
		_, err = fmt.Fprintf(a.stdout, "wrote %d records of request %s (case %s) to %s\nsha256 %s\n",
			req.ExportCount, req.ID, req.CaseRef, o.out, digestForms(req.ExportDigest))
		return err
	})
}

// scratch opens the private scratch directory of export bundles: tmp in
// the data directory (--data-dir; by default the directory of the SQLite
// database, or for PostgreSQL the one that holds the key store). Leftovers
// of an earlier crash are removed.
func (a *app) scratch(dataDir, keystore string) (*crypto.ScratchDir, error) {
	if dataDir == "" {
		dataDir = filepath.Dir(a.db)
		if isPostgres(a.db) {
			dataDir = filepath.Dir(filepath.Clean(keystore))
		}
	}
	return crypto.OpenScratchDir(filepath.Join(dataDir, "tmp"))
}
