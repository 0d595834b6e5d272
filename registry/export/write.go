package export

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

var _ Keys = (*crypto.KeyStore)(nil)

// batchSize is how many records are opened in parallel before they are
// written in order; it bounds the memory held between the two steps.
const batchSize = 256

// Sealing is what Write needs besides the request and its visits.
type Sealing struct {
	Keys       Keys               // the epoch keys (outer layers)
	Recipients *crypto.Recipients // the health office's recipients
	Instance   *crypto.SigningKey // signs the bundle
	MaxStay    time.Duration      // ends open visits for scope and contact minutes
	Now        time.Time          // the bundle's creation time
	// SiteNames maps site codes to display names, for the health
	// office's outputs (optional).
	SiteNames map[string]string
}

// Write streams the bundle of req's scope to w, sealed with age to the
// health-office recipients, and returns the hex SHA-256 of the bytes
// written (the sealed file, the request's ExportDigest). visits yields the
// count visits of the scope in order; Write holds one batch of them at a
// time, removing their outer layers in parallel.
//
// Each visit's outer layer is removed with its day's epoch key from keys;
// the inner ciphertext stays sealed to the health office. Write checks that
// every visit lies in the request's scope (a store bug must not leak
// records: EINTERNAL), that its day's key exists (EUNAVAILABLE naming the
// visit) and that the visits are count in number (EINTERNAL). A visit
// whose outer layer does not open fails the export with EINTERNAL. Error
// messages name visit ids and days, never contact data. On error the bytes
// already written to w are an unfinished age stream: discard them (Job
// writes into a scratch file that is removed). maxStay must be positive:
// it ends open visits for the scope and the contact minutes (see
// ContactMinutes).
//
// The header carries req's signed approvals (req.Approvals, as
// registry.CheckApprovals returned them) and the instance's public key;
// the last line is the instance's signature over every line before it.
func Write(w io.Writer, req *registry.TraceRequest, count int, visits iter.Seq2[*registry.Visit, error], s *Sealing) (digest string, err error) {
	keys, to, instance, maxStay, now := s.Keys, s.Recipients, s.Instance, s.MaxStay, s.Now
	if maxStay <= 0 {
		return "", registry.Errorf(registry.EINVALID, "The maximum stay must be positive.")
	}
	if instance == nil {
		return "", registry.Errorf(registry.EINVALID, "The export needs the instance's signing key.")
	}
	if to == nil || len(to.List()) == 0 {
		return "", registry.Errorf(registry.EINVALID, "The export needs the health office's recipients.")
	}
	h := sha256.New()
	aw, err := age.Encrypt(io.MultiWriter(w, h), to.List()...)
	if err != nil {
		return "", fmt.Errorf("seal export bundle: %w", err)
	}
	bw := bufio.NewWriterSize(aw, 64<<10)
	plain := sha256.New()
	hdr := NewHeader(req, count, now)
	hdr.Instance = registry.FormatPublicKey(instance.Public())
	hdr.MaxStayMinutes = int(maxStay / time.Minute)
	for _, code := range req.Sites {
		if name := s.SiteNames[code]; name != "" {
			hdr.SiteNames = append(hdr.SiteNames, SiteLabel{Code: code, Name: name})
		}
	}
	if err := writeLines(io.MultiWriter(bw, plain), &hdr, req, count, visits, &dayKeys{keys: keys}, maxStay); err != nil {
		return "", err
	}
	enc := json.NewEncoder(bw)
	if err := enc.Encode(trailer{Signature: instance.Sign(registry.PurposeBundle, plain.Sum(nil))}); err != nil {
		return "", fmt.Errorf("write export trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("write export bundle: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("write export bundle: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// NewHeader returns the header of a bundle for req with count records
// and req's approvals (Instance is Write's to fill in).
func NewHeader(req *registry.TraceRequest, count int, now time.Time) Header {
	h := Header{
		Format: Format, RequestID: req.ID, CaseRef: req.CaseRef, Office: req.Office,
		LegalBasis: req.LegalBasis, From: req.From.UTC(), To: req.To.UTC(),
		Sites: nonNil(req.Sites), Areas: nonNil(req.Areas), Hosts: req.Hosts,
		Appointments: req.Appointments, CreatedAt: now.UTC(), Count: count,
		Index: req.Index, IndexVisits: req.IndexVisits, Tolerance: req.Tolerance, MinContact: req.MinContact, WholeSite: req.WholeSite,
		Nonce: req.Nonce, Origin: req.Origin(), Approvals: []HeaderApproval{},
	}
	for _, a := range req.Approvals {
		if a.Decision == registry.DecisionApprove && a.WithdrawnAt == nil {
			h.Approvals = append(h.Approvals, HeaderApproval{Name: a.Name, PublicKey: a.PublicKey,
				ExpiresAt: a.ExpiresAt.UTC(), SignedAt: a.SignedAt.UTC(), Signature: a.Signature})
		}
	}
	return h
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dayKeys loads each day's private key once.
type dayKeys struct {
	keys Keys
	ids  map[registry.Day]age.Identity
}

// identity returns the key of day, which opens what of visit id.
func (d *dayKeys) identity(day registry.Day, what, id string) (age.Identity, error) {
	if k, ok := d.ids[day]; ok {
		return k, nil
	}
	k, err := d.keys.Identity(day)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, registry.Errorf(registry.EUNAVAILABLE, "The epoch key of day %s is missing (destroyed by a purge?), so %s %s cannot be exported; nothing was exported.", day, what, id)
	} else if err != nil {
		return nil, fmt.Errorf("epoch key of day %s for %s %s: %w", day, what, id, err)
	}
	if d.ids == nil {
		d.ids = map[registry.Day]age.Identity{}
	}
	d.ids[day] = k
	return k, nil
}

// visitKeys are the keys that open a visit's outer layers: its day's and
// its appointment note's (nil without a note).
type visitKeys struct{ visit, note age.Identity }

func (d *dayKeys) forVisit(v *registry.Visit) (visitKeys, error) {
	var k visitKeys
	var err error
	if k.visit, err = d.identity(v.Epoch, "visit", v.ID); err != nil {
		return k, err
	}
	if v.Note != nil {
		k.note, err = d.identity(v.Note.Epoch, "the appointment note of visit", v.ID)
	}
	return k, err
}

// writeLines writes the header and the records: the visits are read and
// checked in order, their outer layers opened and their lines encoded in
// parallel batches, and the lines written in order, the three overlapping
// (pipeline).
func writeLines(bw io.Writer, hdr *Header, req *registry.TraceRequest, count int, visits iter.Seq2[*registry.Visit, error], keys *dayKeys, maxStay time.Duration) error {
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(hdr); err != nil {
		return fmt.Errorf("write export header: %w", err)
	}
	type job struct {
		v    *registry.Visit
		keys visitKeys
	}
	produce := func(send func(job) bool) error {
		n := 0
		for v, err := range visits {
			if err != nil {
				return err
			}
			if n++; n > count {
				break
			}
			if !inScope(v, req.Sites, req.Areas, req.From, req.To, maxStay) {
				return registry.Errorf(registry.EINTERNAL, "Visit %s lies outside the scope of trace request %s; nothing was exported.", v.ID, req.ID)
			}
			id, err := keys.forVisit(v)
			if err != nil {
				return err
			}
			if !send(job{v, id}) {
				return nil
			}
		}
		if n != count {
			return registry.Errorf(registry.EINTERNAL, "The scope of trace request %s changed while it was exported (%d visits, not %d); nothing was exported.", req.ID, n, count)
		}
		return nil
	}
	work := func(batch []job) ([][]byte, error) {
		lines := make([][]byte, len(batch))
		errs := make([]error, len(batch))
		forEach(len(batch), func(i int) {
			rec, err := openRecord(batch[i].v, batch[i].keys, req, maxStay)
			if err == nil {
				lines[i], err = encodeLine(&rec)
			}
			errs[i] = err
		})
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		return lines, nil
	}
	consume := func(lines [][]byte) (bool, error) {
		for _, l := range lines {
			if _, err := bw.Write(l); err != nil {
				return false, fmt.Errorf("write export record: %w", err)
			}
		}
		return true, nil
	}
	return pipeline(produce, work, consume)
}

// encodeLine is the JSON line of a record, as the header's encoder writes
// one (no HTML escaping, a final newline).
func encodeLine(w *wireRecord) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("encode export record: %w", err)
	}
	return buf.Bytes(), nil
}

func openRecord(v *registry.Visit, keys visitKeys, req *registry.TraceRequest, maxStay time.Duration) (wireRecord, error) {
	inner, err := crypto.OpenOuter(v.Sealed, keys.visit)
	if err != nil {
		return wireRecord{}, registry.Errorf(registry.EINTERNAL, "The outer layer of visit %s does not open with the epoch key of day %s; nothing was exported.", v.ID, v.Epoch)
	}
	w := wireRecord{
		VisitID: v.ID, Site: v.Site, Area: v.Area, CheckIn: v.CheckIn.UTC(), CheckOut: utcPtr(v.CheckOut),
		CheckoutAuto:   v.CheckoutAuto,
		ContactMinutes: ContactMinutes(v.CheckIn, v.CheckOut, maxStay, req.From, req.To),
		Inner:          inner,
	}
	if len(req.Index) > 0 {
		w.Role, w.ContactMinutes = indexRole(v, req, maxStay)
	}
	if n := v.Note; n != nil {
		note, err := crypto.OpenOuter(n.Sealed, keys.note)
		if err != nil {
			return wireRecord{}, registry.Errorf(registry.EINTERNAL, "The outer layer of the appointment note of visit %s does not open with the epoch key of day %s; nothing was exported.", v.ID, n.Epoch)
		}
		w.Appointment = &wireNote{ID: n.AppointmentID, Code: n.Code, Inner: note}
	}
	return w, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
