package export

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Berlin on machines without a zone database

	"github.com/cityhall/registry/registry"
)

// TimeZone is the zone of the times in CSV and SORMAS files: the health
// offices this product serves work in German local time.
const TimeZone = "Europe/Berlin"

var localZone = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation(TimeZone)
	if err != nil {
		return time.UTC // unreachable: time/tzdata is embedded
	}
	return loc
})

// localTime formats t in TimeZone as RFC 3339 with its offset, for example
// 2021-03-05T14:30:00+01:00: unambiguous also in the hour the clocks go
// back, and imported as text rather than guessed at.
func localTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(localZone()).Format(time.RFC3339)
}

// csvColumns are the column titles of WriteCSV, in German as health offices
// use them: case reference, visit id, site, area, arrival, departure,
// departure set automatically (ja/nein), contact minutes (see
// ContactMinutes), given name, family name, street, house number, postcode,
// city, phone, email, person visited, appointment.
var csvColumns = []string{
	"Aktenzeichen", "Besuchs-ID", "Standort", "Bereich", "Ankunft", "Verlassen",
	"Verlassen automatisch gesetzt", "max. Kontaktdauer (Minuten)", "Vorname", "Nachname",
	"Straße", "Hausnummer", "PLZ", "Ort", "Telefon", "E-Mail", "Besuchte Person", "Termin",
	"Ohne Termin (Grund)", "Hinweis zum Termin", "Rolle (Indexfall)",
}

// WriteCSV writes b's records as a CSV file for spreadsheets: UTF-8 with a
// byte order mark (so that Excel detects the encoding), one header row with
// the German titles health offices use (Aktenzeichen, Besuchs-ID, Standort,
// Bereich, Ankunft, Verlassen, Verlassen automatisch gesetzt (ja/nein),
// max. Kontaktdauer (Minuten), Vorname, Nachname, Straße, Hausnummer, PLZ,
// Ort, Telefon, E-Mail, Besuchte Person, Termin, Ohne Termin (Grund), Hinweis zum Termin), one row per record, cells
// separated by sep (',', ';' for German Excel, or a tab; EINVALID
// otherwise), RFC 4180 quoting, CRLF line ends. Times are RFC 3339 in
// TimeZone; a visit still open at the export says so in "Verlassen"
// (openText). Sites show their display names. A case of several
// registries (Merge) adds the columns "Register" and "Auch erfasst in".
//
// Every cell is neutralised so that no spreadsheet reads it as a formula: a
// cell starting with = + - @ (or their full-width forms), a control
// character, or any of these after leading spaces, gets a leading
// apostrophe ('=1+1). International phone numbers (+49 2931 1234) instead
// get an invisible word joiner (U+2060) in front, so that they stay text
// and show their '+'; so do phone numbers, postcodes and house numbers
// starting with a digit or '(', so that 01067 keeps its zero and 12-14 does
// not become a date. Control characters other than tab, CR and LF are
// replaced with U+FFFD.
func WriteCSV(w io.Writer, src Source, sep rune) error {
	if err := validSeparator(sep); err != nil {
		return err
	}
	rw := newRowWriter(w, sep)
	rw.w.WriteString("\uFEFF")
	h := src.BundleHeader()
	cols := csvColumns
	if len(h.Parts) > 0 { // a case of several registries
		cols = append(slices.Clone(cols), "Register", "Auch erfasst in")
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = csvCell(c, false)
	}
	rw.row(header...)
	for rec, err := range src.All() {
		if err != nil {
			return err
		}
		row := csvRow(h, rec)
		if len(h.Parts) > 0 {
			row = append(row, csvCell(rec.Registry, false), csvCell(strings.Join(rec.AlsoIn, ", "), false))
		}
		rw.row(row...)
	}
	if err := rw.flush(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func csvRow(h *Header, r *Record) []string {
	c := r.Contact
	if c == nil {
		c = &registry.Contact{}
	}
	return []string{
		csvCell(h.CaseRef, false), csvCell(r.VisitID, false), csvCell(siteName(h, r), false),
		csvCell(r.Area, false), localTime(&r.CheckIn), departureCell(h, r),
		yesNo(r.CheckoutAuto), strconv.Itoa(r.ContactMinutes),
		csvCell(c.GivenName, false), csvCell(c.FamilyName, false), csvCell(c.Street, false),
		csvCell(c.HouseNumber, true), csvCell(c.Postcode, true), csvCell(c.City, false),
		csvCell(c.Phone, true), csvCell(c.Email, false), csvCell(c.Host, false),
		csvCell(c.Appointment, false), csvCell(walkInText(c.WalkIn), false), csvCell(r.Note, false),
		csvCell(RoleText(r.Role), false),
	}
}

// departureCell is the departure time, or, for a visit open at the
// export, openText: never an empty cell that reads like missing data.
func departureCell(h *Header, r *Record) string {
	if r.CheckOut == nil {
		return openText(h, r)
	}
	return localTime(r.CheckOut)
}

func yesNo(b bool) string {
	if b {
		return "ja"
	}
	return "nein"
}

// WriteJSON writes the bundle as one JSON document indented by two
// spaces: {"header": {…}, "records": [{…, "contact": {…}}, …], "digest":
// "…"}, record by record. Field names are those of Header, Record and
// registry.Contact.
func WriteJSON(w io.Writer, src Source) error {
	bw := bufio.NewWriter(w)
	hdr, err := json.MarshalIndent(src.BundleHeader(), "  ", "  ")
	if err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	fmt.Fprintf(bw, "{\n  \"header\": %s,\n  \"records\": [", hdr)
	n := 0
	for rec, err := range src.All() {
		if err != nil {
			return err
		}
		line, err := json.MarshalIndent(rec, "    ", "  ")
		if err != nil {
			return fmt.Errorf("write json: %w", err)
		}
		if n > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		bw.Write(line)
		n++
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	digest, _ := json.Marshal(src.BundleDigest())
	fmt.Fprintf(bw, "],\n  \"digest\": %s\n}\n", digest)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
