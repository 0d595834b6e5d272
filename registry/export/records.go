package export

import (
	"io"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

// pending is a record line read but not yet decrypted.
type pending struct {
	line int
	wire wireRecord
}

// readRecords reads every record line, decrypts and verifies the records in
// parallel batches and appends them to b. All failures are collected so
// that the error names them; nothing is returned when one fails.
func readRecords(lr *lineReader, b *Bundle, office []age.Identity) error {
	var fails []failure
	seen := make(map[string]bool, min(b.Header.Count, 4096))
	batch := make([]pending, 0, batchSize)
	total := 0
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if total++; total > b.Header.Count {
			return registry.Errorf(registry.EINVALID, "The bundle holds more records than its header announces (%d).", b.Header.Count)
		}
		var w wireRecord
		if err := strictjson.Decode(line, &w); err != nil {
			return registry.Errorf(registry.EINVALID, "Line %d of the bundle is malformed: %s", lr.n, registry.ErrorMessage(err))
		}
		if seen[w.VisitID] {
			fails = append(fails, failure{recordName(lr.n, w.VisitID), "duplicate visit id"})
		}
		seen[w.VisitID] = true
		if batch = append(batch, pending{lr.n, w}); len(batch) == batchSize {
			fails = verifyBatch(b, batch, office, fails)
			batch = batch[:0]
		}
	}
	fails = verifyBatch(b, batch, office, fails)
	if total != b.Header.Count {
		return registry.Errorf(registry.EINVALID, "The bundle is truncated: its header announces %d records, it holds %d.", b.Header.Count, total)
	}
	if len(fails) > 0 {
		return failuresError(fails, total)
	}
	return nil
}

// verifyBatch opens and checks a batch in parallel and appends the records
// (or, once anything failed, only the failures: the records are dropped).
func verifyBatch(b *Bundle, batch []pending, office []age.Identity, fails []failure) []failure {
	recs := make([]Record, len(batch))
	reasons := make([]string, len(batch))
	forEach(len(batch), func(i int) {
		recs[i], reasons[i] = verifyRecord(&b.Header, &batch[i].wire, office)
	})
	for i, p := range batch {
		if reasons[i] != "" {
			fails = append(fails, failure{recordName(p.line, p.wire.VisitID), reasons[i]})
		}
	}
	if len(fails) == 0 {
		b.Records = append(b.Records, recs...)
	} else {
		b.Records = b.Records[:0]
	}
	return fails
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
	return Record{
		VisitID: w.VisitID, Site: w.Site, Area: w.Area, CheckIn: w.CheckIn, CheckOut: w.CheckOut,
		CheckoutAuto: w.CheckoutAuto, ContactMinutes: w.ContactMinutes, Contact: c,
	}, ""
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
	}
	return ""
}

func windowMinutes(h *Header) int {
	return ContactMinutes(h.From, nil, h.To.Sub(h.From), h.From, h.To)
}
