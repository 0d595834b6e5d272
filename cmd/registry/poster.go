package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/poster"
	"github.com/cityhall/registry/retention"
)

func (a *app) posterCmd() *cobra.Command {
	var area, out, publicURL string
	retentionPeriod := retention.DefaultPolicy().Retention
	cmd := &cobra.Command{
		Use:   "poster SITE [--area AREA] -o FILE",
		Short: "Write the A4 entrance poster of a site (or one of its areas) as PDF",
		Long: `poster writes the poster that hangs at the entrance: the site's display
name, a QR code of its check-in page, short instructions in German and
English, the privacy summary (controller and data-protection officer from
the site's configuration) and the note that a paper form is available at
the reception desk. With --area the QR code registers visitors for that
area. The desk's pages offer the same poster for download.

The QR code holds --public-url (the address visitors reach the server at,
as for 'serve'), followed by /checkin/SITE.`,
		Example: `  registry poster rathaus --public-url https://besuch.musterstadt.de -o aushang-rathaus.pdf
  registry poster rathaus --area Standesamt --public-url https://besuch.musterstadt.de -o aushang-standesamt.pdf`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if publicURL == "" {
				return withHint(registry.Errorf(registry.EINVALID, "no --public-url"), "give the address visitors reach the server at, for example --public-url https://besuch.musterstadt.de (or REGISTRY_PUBLIC_URL)")
			}
			if err := checkNewFile(out); err != nil && out != "-" {
				return err
			}
			return a.withStore(cmd.Context(), func(s registry.Store) error {
				site, err := s.Site(cmd.Context(), args[0])
				if err != nil {
					return withHint(err, "'registry sites list' shows the configured sites")
				}
				if !site.SelfCheckin {
					return withHint(registry.Errorf(registry.ECONFLICT, "site %s does not let visitors check in on their phones", site.Code),
						"turn it on with 'registry sites set %s --self-checkin' first", site.Code)
				}
				if area != "" && !site.HasArea(area) {
					return withHint(registry.Errorf(registry.EINVALID, "site %s has no area %q", site.Code, area), "'registry sites show %s' lists its areas", site.Code)
				}
				p := &poster.Poster{Site: site, Area: area, URL: httpapi.CheckinURL(publicURL, site.Code, area),
					RetentionDays: int(retentionPeriod / (24 * time.Hour)), Created: a.now()}
				if out == "-" {
					return p.Write(a.stdout)
				}
				if err := writeFileAtomic(out, func(w io.Writer) error { return p.Write(w) }); err != nil {
					return err
				}
				if err := os.Chmod(out, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "registry: wrote the poster of %s to %s (QR code: %s)\n", site.Code, out, p.URL)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&area, "area", "", "the area the poster hangs at (one of the site's areas)")
	f.StringVarP(&out, "output", "o", "", "the new PDF `FILE` (- for standard output)")
	f.StringVar(&publicURL, "public-url", "", "the `URL` visitors reach the server at, for example https://besuch.musterstadt.de")
	f.Var(days{&retentionPeriod}, "retention", "statutory retention period, for the privacy summary")
	settings(f, "public-url", "retention")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}
