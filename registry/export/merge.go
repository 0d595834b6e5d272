package export

import (
	"crypto/sha256"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/cityhall/registry/registry"
)

// A health office's case touches several registries (the city hall, the
// citizens' office, the library): each answers the case's request with a
// bundle of its own. Merge joins the opened bundles of one case into one
// Source, so that every output (workbook, PDF, CSV, SORMAS, IRIS) is one
// document per case: records name their registry, the header the case and,
// in Parts, every registry's request, approvals, count and digest.

// Part is one registry's opened bundle in a case.
type Part struct {
	// Registry is the registry's name in the office's directory
	// ("Rathaus Musterstadt").
	Registry string
	Bundle   *Bundle
}

// PartSummary is what the merged header says of one registry's bundle.
type PartSummary struct {
	Registry  string           `json:"registry"`
	RequestID string           `json:"request_id"`
	From      time.Time        `json:"from"`
	To        time.Time        `json:"to"`
	Sites     []string         `json:"sites"` // display names
	Areas     []string         `json:"areas"`
	Approvals []HeaderApproval `json:"approvals"`
	Count     int              `json:"count"`
	Digest    string           `json:"digest"`
	CreatedAt time.Time        `json:"created_at"`
}

// CaseInfo is the office's case a merged Source answers. Outstanding
// names the registries whose answer is not in it, in the clerk's words.
type CaseInfo struct {
	Ref, Office, LegalBasis string
	From, To                time.Time
	Outstanding             []string
}

// merged is the Source of a case.
type merged struct {
	header  Header
	records []Record
}

func (m *merged) BundleHeader() *Header { return &m.header }

// BundleDigest is empty: a case has one digest per bundle (Parts).
func (m *merged) BundleDigest() string { return "" }

func (m *merged) All() iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		for i := range m.records {
			if !yield(&m.records[i], nil) {
				return
			}
		}
	}
}

// Merge joins the parts into one Source for the case: records in order of
// arrival, each naming its registry and its site's display name; people
// found in more than one registry (the same name and phone number) are
// marked in AlsoIn with the other registries, not merged. The header is
// the case's (its window the case's), with Parts summing up each bundle;
// the timeline shades the case's window.
func Merge(c CaseInfo, parts []Part) Source {
	m := &merged{header: Header{Format: Format, CaseRef: c.Ref, Office: c.Office, LegalBasis: c.LegalBasis, From: c.From, To: c.To, Outstanding: c.Outstanding}}
	seen := map[[32]byte][]string{} // person → registries
	for _, p := range parts {
		h := &p.Bundle.Header
		ps := PartSummary{Registry: p.Registry, RequestID: h.RequestID, From: h.From, To: h.To, Areas: h.Areas,
			Approvals: h.Approvals, Count: len(p.Bundle.Records), Digest: p.Bundle.Digest, CreatedAt: h.CreatedAt}
		for _, s := range h.Sites {
			ps.Sites = append(ps.Sites, h.SiteName(s))
		}
		m.header.Parts = append(m.header.Parts, ps)
		m.header.Count += ps.Count
		if h.CreatedAt.After(m.header.CreatedAt) {
			m.header.CreatedAt = h.CreatedAt
		}
		if h.MaxStayMinutes > m.header.MaxStayMinutes {
			m.header.MaxStayMinutes = h.MaxStayMinutes
		}
		for _, r := range p.Bundle.Records {
			r.Registry, r.SiteLabel = p.Registry, h.SiteName(r.Site)
			m.records = append(m.records, r)
			if k, ok := personKey(r.Contact); ok && !slices.Contains(seen[k], p.Registry) {
				seen[k] = append(seen[k], p.Registry)
			}
		}
	}
	for i := range m.records {
		r := &m.records[i]
		if k, ok := personKey(r.Contact); ok {
			for _, reg := range seen[k] {
				if reg != r.Registry {
					r.AlsoIn = append(r.AlsoIn, reg)
				}
			}
			if len(r.AlsoIn) > 0 {
				m.header.Duplicates++
			}
		}
	}
	slices.SortStableFunc(m.records, func(a, b Record) int { return a.CheckIn.Compare(b.CheckIn) })
	return m
}

// personKey identifies a person across registries: the given and family
// name (case, accents and spacing folded) and the phone number's digits.
// Without a name or a phone number there is no key.
func personKey(c *registry.Contact) ([32]byte, bool) {
	if c == nil {
		return [32]byte{}, false
	}
	fold := func(s string) string {
		var b strings.Builder
		for _, r := range norm.NFD.String(strings.ToLower(s)) {
			if unicode.IsLetter(r) {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	var digits strings.Builder
	for _, r := range c.Phone {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	phone := strings.TrimPrefix(digits.String(), "0")
	phone = strings.TrimPrefix(phone, "49") // +49 221 … and 0221 … are one number
	given, family := fold(c.GivenName), fold(c.FamilyName)
	if given == "" || family == "" || len(phone) < 5 {
		return [32]byte{}, false
	}
	return sha256.Sum256([]byte(given + "\x00" + family + "\x00" + phone)), true
}

// siteName is the display name of r's site: the name Merge gave it, else
// the header's.
func siteName(h *Header, r *Record) string {
	if r.SiteLabel != "" {
		return r.SiteLabel
	}
	return h.SiteName(r.Site)
}

// placeName is where r was, for outputs with one column for it: its site,
// in a case of several registries prefixed by the registry.
func placeName(h *Header, r *Record) string {
	if site := siteName(h, r); r.Registry != "" && r.Registry != site {
		return r.Registry + " · " + site
	}
	return siteName(h, r)
}
