package export

import (
	"io"
	"time"

	"github.com/cityhall/registry/registry"
)

// Formats are the outputs a Source is written as, by name.
var Formats = []string{"xlsx", "pdf", "csv", "json", "sormas", "iris"}

// FormatExt is the file extension of each format.
var FormatExt = map[string]string{"xlsx": ".xlsx", "pdf": ".pdf", "csv": ".csv", "json": ".json", "sormas": ".csv", "iris": ".json"}

// WriterFor returns the writer of a format: sep is the CSV and SORMAS
// separator, decrypted the time the outputs say they were decrypted.
func WriterFor(format string, sep rune, decrypted time.Time) (func(io.Writer, Source) error, error) {
	switch format {
	case "xlsx":
		return func(w io.Writer, src Source) error { return WriteXLSX(w, src, decrypted, "") }, nil
	case "pdf":
		return func(w io.Writer, src Source) error { return WritePDF(w, src, decrypted) }, nil
	case "iris":
		return WriteIRIS, nil
	case "csv":
		return func(w io.Writer, src Source) error { return WriteCSV(w, src, sep) }, nil
	case "json":
		return WriteJSON, nil
	case "sormas":
		return func(w io.Writer, src Source) error { return WriteSORMAS(w, src, sep) }, nil
	}
	return nil, registry.Errorf(registry.EINVALID, "Unknown format %q: use xlsx, pdf, csv, json, sormas or iris.", format)
}
