package export

import (
	"iter"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// pending is a record line read but not yet decrypted.
type pending struct {
	line  int // in the bundle, the header being line 1
	index int // the record's number, from 1
	wire  wireRecord
}

// verifyBatch opens and checks a batch in parallel and returns its records
// in order, or the failures.
func verifyBatch(h *Header, batch []pending, office []age.Identity) ([]Record, []failure) {
	recs := make([]Record, len(batch))
	reasons := make([]string, len(batch))
	forEach(len(batch), func(i int) {
		recs[i], reasons[i] = verifyRecord(h, &batch[i].wire, office)
	})
	var fails []failure
	for i, p := range batch {
		if reasons[i] != "" {
			fails = append(fails, failure{recordName(p.line, p.wire.VisitID), reasons[i]})
		}
	}
	if len(fails) > 0 {
		return nil, fails
	}
	return recs, nil
}

// verifyRecord returns the decrypted record, or the reason it fails (fixed
// text, never content).
func verifyRecord(h *Header, w *wireRecord, office []age.Identity) (Record, string) {
	if reason := checkMetadata(h, w); reason != "" {
		return Record{}, reason
	}
	c, err := crypto.OpenInner(w.Inner, office)
	if err != nil {
		return Record{}, "inner layer does not open with the given identities"
	}
	if err := c.CheckBinding(w.VisitID, w.Site, w.CheckIn); err != nil {
		return Record{}, "sealed contact does not belong to this record"
	}
	rec := Record{
		VisitID: w.VisitID, Site: w.Site, Area: w.Area, CheckIn: w.CheckIn, CheckOut: w.CheckOut,
		CheckoutAuto: w.CheckoutAuto, ContactMinutes: w.ContactMinutes, Role: w.Role, Contact: c,
	}
	if a := w.Appointment; a != nil {
		n, err := crypto.OpenNote(a.Inner, office)
		if err != nil {
			return Record{}, "appointment note does not open with the given identities"
		}
		// The note is bound to its appointment, and the appointment to
		// the visit by the code sealed in the visitor's own contact.
		code := registry.NormalizeCode(c.Appointment)
		if code == "" || code != a.Code || n.CheckBinding(a.ID, w.Site, registry.LocalDay(w.CheckIn), code) != nil {
			return Record{}, "appointment note does not belong to this record"
		}
		rec.Note = n.Text
	}
	return rec, ""
}

// checkMetadata checks a record's plaintext fields and that it lies in the
// header's scope. Open visits are checked against the window's end only:
// the maximum stay that ends them is not part of the bundle.
func checkMetadata(h *Header, w *wireRecord) string {
	switch {
	case !registry.ValidID(w.VisitID):
		return "malformed visit id"
	case !registry.ValidSite(w.Site) || w.CheckIn.IsZero() || len(w.Inner) == 0 || w.ContactMinutes < 0:
		return "malformed record"
	case w.CheckOut != nil && w.CheckOut.Before(w.CheckIn):
		return "check-out before check-in"
	case !contains(h.Sites, w.Site) || len(h.Areas) > 0 && !contains(h.Areas, w.Area):
		return "site or area outside the request"
	case !w.CheckIn.Before(h.To) || w.CheckOut != nil && !w.CheckOut.After(h.From):
		return "stay outside the request's window"
	case w.ContactMinutes > windowMinutes(h):
		return "contact minutes exceed the request's window"
	case len(h.Index) == 0 && w.Role != "",
		len(h.Index) > 0 && w.Role != RoleIndex && w.Role != RoleCompanion && w.Role != RoleContact:
		return "role outside the request's scope"
	}
	return ""
}

func windowMinutes(h *Header) int {
	return ContactMinutes(h.From, nil, h.To.Sub(h.From), h.From, h.To)
}

// BundleHeader returns the header: a *Bundle is a Source.
func (b *Bundle) BundleHeader() *Header { return &b.Header }

// BundleDigest returns the digest the bundle was read with.
func (b *Bundle) BundleDigest() string { return b.Digest }

// All yields the bundle's records.
func (b *Bundle) All() iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		for i := range b.Records {
			if !yield(&b.Records[i], nil) {
				return
			}
		}
	}
}
