package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

// maxNamed is how many failing records an error message names.
const maxNamed = 10

// Read opens a bundle with the health office's identities and verifies it
// completely before returning anything: the header's format and record
// count, each record's metadata and scope (within the header's sites, areas
// and window), distinct visit ids, each inner layer (crypto.OpenInner) and
// each sealed contact's binding to its record (Contact.CheckBinding with the
// record's visit id, site and check-in), so that a ciphertext moved to
// another record or an edited record is refused.
//
// Errors are EINVALID *registry.Error values: the bundle does not open with
// the identities, is truncated or corrupt, has a line longer than MaxLine,
// more than MaxRecords records, or a line that is not strict JSON (unknown
// or duplicate fields, trailing data); or records fail verification, in
// which case the message names up to ten failing visit ids and the reason.
// Messages never hold contact data. There is no partial output.
func Read(r io.Reader, office []age.Identity) (*Bundle, error) {
	if len(office) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "Opening a bundle needs at least one identity.")
	}
	h := sha256.New()
	src := io.TeeReader(r, h)
	ar, err := age.Decrypt(src, office...)
	if err != nil {
		return nil, openError(err)
	}
	lr := &lineReader{r: bufio.NewReaderSize(ar, MaxLine)}
	hdr, err := readHeader(lr)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Header: *hdr, Records: make([]Record, 0, min(hdr.Count, 4096))}
	if err := readRecords(lr, b, office); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, fmt.Errorf("read export bundle: %w", err)
	}
	b.Digest = hex.EncodeToString(h.Sum(nil))
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
	n int // number of the line returned last
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

// failuresError names the first maxNamed failures.
func failuresError(fails []failure, total int) error {
	var parts []string
	for _, f := range fails[:min(len(fails), maxNamed)] {
		parts = append(parts, f.name+" ("+f.reason+")")
	}
	more := ""
	if len(fails) > maxNamed {
		more = fmt.Sprintf("; and %d more", len(fails)-maxNamed)
	}
	return registry.Errorf(registry.EINVALID, "%d of %d records of the bundle failed verification, nothing was decrypted: %s%s.",
		len(fails), total, strings.Join(parts, "; "), more)
}
