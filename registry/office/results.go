package office

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

// Opened is a case's result, opened: the merged source and what it lacks.
type Opened struct {
	Case   *Case
	Source export.Source
	// Outstanding names the registries whose answer is not in the result
	// (pending, rejected, …), in the clerk's words.
	Outstanding []string
}

// OpenCase opens every downloaded bundle of the case with the office's
// identities, each verified against its registry's confirmed trust file
// (the registry instance's signature, the approvals of pinned approvers,
// every record) and its digest against the one recorded at the download,
// and merges them into one source. It records in the log who opened the
// case and for which format. A registry whose trust file is not
// confirmed (or changed since) is refused: its bundles are not opened.
func (s *Store) OpenCase(ctx context.Context, actor, caseID string, ids []age.Identity, format string) (*Opened, error) {
	c, err := s.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	o := &Opened{Case: c}
	var parts []export.Part
	for _, r := range c.Requests {
		reg, err := s.Registry(ctx, r.RegistryID)
		if err != nil {
			return nil, err
		}
		if r.Status != StatusDownloaded {
			o.Outstanding = append(o.Outstanding, reg.Name+": "+statusText(r.Status, ""))
			continue
		}
		if !reg.Confirmed() {
			return nil, registry.Errorf(registry.EFORBIDDEN, "The trust file of %s is not confirmed (or changed since it was): compare its digest %s with the registry's data-protection officer on the phone and confirm it first.",
				reg.Name, reg.TrustDigest)
		}
		trust, err := export.ParseTrust(bytes.NewReader(reg.Trust), "trust file of "+reg.Name)
		if err != nil {
			return nil, err
		}
		b, err := readBundle(s.BundlePath(r.ID), ids, trust)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reg.Name, err)
		}
		if b.Digest != r.ExportDigest {
			return nil, registry.Errorf(registry.EINVALID, "The bundle of %s is not the one downloaded (its digest changed): it was altered in the workspace.", reg.Name)
		}
		parts = append(parts, export.Part{Registry: reg.Name, Bundle: b})
	}
	if len(parts) == 0 {
		return nil, registry.Errorf(registry.ECONFLICT, "No registry has answered this case yet: %s.", strings.Join(o.Outstanding, "; "))
	}
	office := parts[0].Bundle.Header.Office
	o.Source = export.Merge(export.CaseInfo{Ref: c.Ref, Office: office, LegalBasis: c.LegalBasis, From: c.From, To: c.To, Outstanding: o.Outstanding}, parts)
	if err := s.Log(ctx, actor, "case.opened", c.ID, map[string]string{"ref": c.Ref, "format": format, "registries": fmt.Sprint(len(parts))}); err != nil {
		return nil, err
	}
	return o, nil
}

func readBundle(path string, ids []age.Identity, trust *export.Trust) (*export.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the bundle: %w", err)
	}
	defer f.Close()
	return export.Read(bufio.NewReaderSize(f, 1<<20), ids, trust)
}

// WriteResult opens a case and writes its result in the format.
func (s *Store) WriteResult(ctx context.Context, w io.Writer, actor, caseID string, ids []age.Identity, format string, sep rune) (*Opened, error) {
	write, err := export.WriterFor(format, sep, s.now())
	if err != nil {
		return nil, err
	}
	o, err := s.OpenCase(ctx, actor, caseID, ids, format)
	if err != nil {
		return nil, err
	}
	return o, write(w, o.Source)
}
