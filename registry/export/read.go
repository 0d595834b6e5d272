package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"strings"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

// maxNamed is how many failing records an error message names.
const maxNamed = 10

// Source is a decrypted bundle as the writers read it: its header, its
// records one by one, and, once the records are read to the end, the
// digest of the sealed file. A *Stream reads them from a bundle file with
// memory bounded whatever its size; a *Bundle holds them all.
type Source interface {
	BundleHeader() *Header
	// All yields every record in order; it stops at the first error,
	// which it yields.
	All() iter.Seq2[*Record, error]
	// BundleDigest is the hex SHA-256 of the sealed file, once All
	// was read to its end without error.
	BundleDigest() string
}

// Stream reads a bundle record by record. Open reads the header; Records
// opens and verifies the records in parallel batches and yields them in
// order, holding at most five batches in memory. Whoever writes what it
// yields must discard the output when Records yields an error: only a
// stream read to its end without error is sound (a bundle file may be
// truncated or altered anywhere).
type Stream struct {
	header Header
	lr     *lineReader
	src    io.Reader // the sealed input, hashed
	h      hash.Hash
	office []age.Identity
	digest string
	used   bool
}

// Open opens a bundle with the health office's identities and reads and
// checks its header (format, record count, window) and its authenticity
// against trust: the pinned instance key and enough signed approvals by
// pinned approvers (the names in the header become the pinned ones). The
// instance's signature over the whole bundle is checked when All reaches
// the end. Errors are EINVALID *registry.Error values; messages never
// hold contact data.
func Open(r io.Reader, office []age.Identity, trust *Trust) (*Stream, error) {
	if trust == nil {
		return nil, registry.Errorf(registry.EINVALID, "Opening a bundle needs the trust file pinned at setup (--trust).")
	}
	if len(office) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "Opening a bundle needs at least one identity.")
	}
	h := sha256.New()
	src := io.TeeReader(r, h)
	ar, err := age.Decrypt(src, office...)
	if err != nil {
		return nil, openError(err)
	}
	lr := &lineReader{r: bufio.NewReaderSize(ar, MaxLine), h: sha256.New()}
	hdr, err := readHeader(lr)
	if err != nil {
		return nil, err
	}
	if err := verifyHeader(hdr, trust); err != nil {
		return nil, err
	}
	return &Stream{header: *hdr, lr: lr, src: src, h: h, office: office}, nil
}

// BundleHeader returns the bundle's header.
func (s *Stream) BundleHeader() *Header { return &s.header }

// BundleDigest returns the hex SHA-256 of the sealed file after All
// was read to its end, "" before.
func (s *Stream) BundleDigest() string { return s.digest }

// All verifies and yields the records: each record's metadata and
// scope (within the header's sites, areas and window), distinct visit ids,
// each inner layer (crypto.OpenInner) and each sealed contact's binding to
// its record (Contact.CheckBinding), so that a ciphertext moved to another
// record or an edited record is refused; at the end, that the count is the
// header's. It yields an EINVALID error, naming up to ten failing visits
// of the batch where verification failed, and stops. It may be ranged over
// once.
func (s *Stream) All() iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		if s.used {
			yield(nil, errors.New("export: Stream.All ranged over twice"))
			return
		}
		s.used = true
		if err := s.records(yield); err != nil {
			yield(nil, err)
		}
	}
}

func (s *Stream) records(yield func(*Record, error) bool) error {
	produce := func(send func(pending) bool) error {
		// Visit ids as their 16 bytes: a third of the memory of the
		// strings, which at a million records is what grows.
		seen := make(map[[16]byte]struct{}, min(s.header.Count, 1<<16))
		for total := 1; total <= s.header.Count; total++ {
			line, err := s.lr.next()
			if err == io.EOF {
				return registry.Errorf(registry.EINVALID, "The bundle is truncated: its header announces %d records, it holds %d.", s.header.Count, total-1)
			} else if err != nil {
				return err
			}
			var w wireRecord
			if err := strictjson.Decode(line, &w); err != nil {
				return registry.Errorf(registry.EINVALID, "Line %d of the bundle is malformed: %s", s.lr.n, registry.ErrorMessage(err))
			}
			var id [16]byte
			if registry.ValidID(w.VisitID) {
				hex.Decode(id[:], []byte(w.VisitID))
				if _, dup := seen[id]; dup {
					return failuresError([]failure{{recordName(s.lr.n, w.VisitID), "duplicate visit id"}}, total)
				}
				seen[id] = struct{}{}
			} // a malformed id fails its record's check (checkMetadata)
			if !send(pending{line: s.lr.n, index: total, wire: w}) {
				return nil
			}
		}
		if err := s.verifyTrailer(); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, s.src); err != nil {
			return fmt.Errorf("read export bundle: %w", err)
		}
		s.digest = hex.EncodeToString(s.h.Sum(nil))
		return nil
	}
	work := func(batch []pending) ([]Record, error) {
		recs, fails := verifyBatch(&s.header, batch, s.office)
		if len(fails) > 0 {
			return nil, failuresError(fails, batch[len(batch)-1].index)
		}
		return recs, nil
	}
	consume := func(recs []Record) (bool, error) {
		for i := range recs {
			if !yield(&recs[i], nil) {
				return false, nil
			}
		}
		return true, nil
	}
	return pipeline(produce, work, consume)
}

// verifyTrailer reads the last line, the instance's signature over every
// line before it, and checks that nothing follows.
func (s *Stream) verifyTrailer() error {
	sum := s.lr.h.Sum(nil)
	line, err := s.lr.next()
	if err == io.EOF {
		return registry.Errorf(registry.EINVALID, "The bundle is truncated: its signature is missing.")
	} else if err != nil {
		return err
	}
	var tr trailer
	if err := strictjson.Decode(line, &tr); err != nil {
		return registry.Errorf(registry.EINVALID, "The bundle holds more records than its header announces (%d), or its last line is malformed.", s.header.Count)
	}
	inst, _ := registry.ParseInstanceKey(s.header.Instance) // checked by Open
	if !registry.VerifySignature(inst, registry.PurposeBundle, sum, tr.Signature) {
		return registry.Errorf(registry.EINVALID, "The signature of the registry instance does not match the bundle: it was altered or made by someone else. Nothing was decrypted.")
	}
	if _, err := s.lr.next(); err != io.EOF {
		return registry.Errorf(registry.EINVALID, "The bundle continues after its signature.")
	}
	return nil
}

// Read opens a bundle and verifies it completely (see Stream.All)
// before returning it, all records in memory. For bundles of any size,
// use Open and write while reading.
func Read(r io.Reader, office []age.Identity, trust *Trust) (*Bundle, error) {
	s, err := Open(r, office, trust)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Header: s.header, Records: make([]Record, 0, min(s.header.Count, 4096))}
	for rec, err := range s.All() {
		if err != nil {
			return nil, err
		}
		b.Records = append(b.Records, *rec)
	}
	b.Digest = s.digest
	return b, nil
}

func openError(err error) error {
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return registry.Errorf(registry.EINVALID, "The bundle is not sealed to the given identities: use the health office's identity file.")
	}
	return registry.Errorf(registry.EINVALID, "The file is not an export bundle (no readable age header).")
}

// lineReader returns the lines of the decrypted bundle, enforcing MaxLine
// and a final newline.
type lineReader struct {
	r *bufio.Reader
	n int       // number of the line returned last
	h hash.Hash // of every line returned
}

func (l *lineReader) next() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	l.n++
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, registry.Errorf(registry.EINVALID, "Line %d of the bundle is longer than %d bytes.", l.n, MaxLine)
	case err == io.EOF && len(line) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, registry.Errorf(registry.EINVALID, "The bundle is truncated: line %d is incomplete.", l.n)
	case err != nil:
		return nil, registry.Errorf(registry.EINVALID, "The bundle is truncated or corrupt (after line %d).", l.n-1)
	}
	l.h.Write(line)
	return line, nil
}

func readHeader(lr *lineReader) (*Header, error) {
	line, err := lr.next()
	if err == io.EOF {
		return nil, registry.Errorf(registry.EINVALID, "The bundle is empty.")
	} else if err != nil {
		return nil, err
	}
	var hdr Header
	if err := strictjson.Decode(line, &hdr); err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The bundle header is malformed: %s", registry.ErrorMessage(err))
	}
	switch {
	case hdr.Format != Format:
		return nil, registry.Errorf(registry.EINVALID, "The bundle has an unknown format; this program reads %q.", Format)
	case hdr.Count < 0 || hdr.Count > MaxRecords:
		return nil, registry.Errorf(registry.EINVALID, "The bundle announces %d records; at most %d are allowed.", hdr.Count, MaxRecords)
	case !hdr.From.Before(hdr.To):
		return nil, registry.Errorf(registry.EINVALID, "The bundle header's window is empty.")
	case len(hdr.Parts) > 0 || hdr.Duplicates != 0 || len(hdr.Outstanding) > 0:
		return nil, registry.Errorf(registry.EINVALID, "The bundle header lists the parts of a case; a registry's bundle has none.")
	}
	return &hdr, nil
}

// failure is a record that did not verify. name is "visit <id>" when the id
// is well-formed, else "record on line <n>", so that no message echoes
// arbitrary input.
type failure struct{ name, reason string }

func recordName(line int, id string) string {
	if registry.ValidID(id) {
		return "visit " + id
	}
	return fmt.Sprintf("record on line %d", line)
}

// failuresError names the first maxNamed failures among the records read
// up to where verification stopped.
func failuresError(fails []failure, upTo int) error {
	var parts []string
	for _, f := range fails[:min(len(fails), maxNamed)] {
		parts = append(parts, f.name+" ("+f.reason+")")
	}
	more := ""
	if len(fails) > maxNamed {
		more = fmt.Sprintf("; and %d more", len(fails)-maxNamed)
	}
	return registry.Errorf(registry.EINVALID, "%d of %d records of the bundle failed verification, nothing was decrypted: %s%s.",
		len(fails), upTo, strings.Join(parts, "; "), more)
}
