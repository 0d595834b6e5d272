package export

import (
	"fmt"
	"io"
	"strings"

	"github.com/cityhall/registry/registry"
)

// sormasColumns are the column paths of WriteSORMAS, those of SORMAS's
// event-participant import.
var sormasColumns = []string{
	"involvementDescription", "person.firstName", "person.lastName", "person.sex",
	"person.phone", "person.emailAddress", "person.address.postalCode",
	"person.address.city", "person.address.street", "person.address.houseNumber",
}

// sormasCaptions is the "##" caption line after the column paths.
var sormasCaptions = []string{
	"## Beschreibung der Teilnahme", "Vorname", "Nachname", "Geschlecht", "Telefon",
	"E-Mail", "PLZ", "Ort", "Straße", "Hausnummer",
}

// WriteSORMAS writes b's records in the layout of SORMAS's event-participant
// import: a line of entity names ("EventParticipant" per column), a line of
// column paths (involvementDescription, person.firstName, person.lastName,
// person.sex, person.phone, person.emailAddress, person.address.postalCode,
// person.address.city, person.address.street, person.address.houseNumber),
// one "##" caption line (SORMAS skips lines starting with "##"), then one
// line per record. The file is UTF-8 without byte order mark, cells
// separated by sep (',', ';' or a tab; EINVALID otherwise), RFC 4180
// quoting, CRLF line ends.
//
// involvementDescription carries the place and times of the stay (times in
// TimeZone) and the contact minutes; it always starts with "Besuch", so no
// record line can start with "##". person.sex is left empty: it is not
// collected. Cells are neutralised as in WriteCSV (leading apostrophe for
// anything a spreadsheet could read as a formula), except that nothing
// invisible is added: an international phone number in the phone column is
// written as it is, since SORMAS must receive the number itself and such a
// value cannot call a function even in a spreadsheet. In every other
// column, a value like "+1-1-1-1-1" is neutralised like any other.
func WriteSORMAS(w io.Writer, src Source, sep rune) error {
	if err := validSeparator(sep); err != nil {
		return err
	}
	rw := newRowWriter(w, sep)
	entities := make([]string, len(sormasColumns))
	for i := range entities {
		entities[i] = "EventParticipant"
	}
	rw.row(entities...)
	rw.row(sormasColumns...)
	rw.row(sormasCaptions...)
	for rec, err := range src.All() {
		if err != nil {
			return err
		}
		rw.row(sormasRow(src.BundleHeader(), rec)...)
	}
	if err := rw.flush(); err != nil {
		return fmt.Errorf("write sormas: %w", err)
	}
	return nil
}

func sormasRow(h *Header, r *Record) []string {
	c := r.Contact
	if c == nil {
		c = &registry.Contact{}
	}
	return []string{
		importCell(involvement(h, r)), importCell(c.GivenName), importCell(c.FamilyName), "",
		importPhone(c.Phone), importCell(c.Email), importCell(c.Postcode),
		importCell(c.City), importCell(c.Street), importCell(c.HouseNumber),
	}
}

// involvement describes the stay in German, for example "Besuch Standort
// rathaus, Bereich Bürgerbüro, von 2021-03-05T14:30:00+01:00 bis
// 2021-03-05T16:00:00+01:00, max. Kontaktdauer 45 Minuten, besucht: Frau
// Roth, Termin: A-12, Besuchs-ID 0f…".
func involvement(h *Header, r *Record) string {
	var b strings.Builder
	if r.Registry != "" { // a case of several registries
		fmt.Fprintf(&b, "Besuch %s", placeName(h, r))
	} else {
		fmt.Fprintf(&b, "Besuch Standort %s", r.Site)
	}
	if r.Area != "" {
		fmt.Fprintf(&b, ", Bereich %s", r.Area)
	}
	fmt.Fprintf(&b, ", von %s", localTime(&r.CheckIn))
	switch {
	case r.CheckOut == nil:
		b.WriteString(", Ende nicht erfasst")
	case r.CheckoutAuto:
		fmt.Fprintf(&b, " bis %s (Ende automatisch gesetzt)", localTime(r.CheckOut))
	default:
		fmt.Fprintf(&b, " bis %s", localTime(r.CheckOut))
	}
	fmt.Fprintf(&b, ", max. Kontaktdauer %d Minuten", r.ContactMinutes)
	if role := RoleText(r.Role); role != "" {
		fmt.Fprintf(&b, ", %s", role)
	}
	if c := r.Contact; c != nil && c.Host != "" {
		fmt.Fprintf(&b, ", besucht: %s", c.Host)
	}
	if c := r.Contact; c != nil && c.Appointment != "" {
		fmt.Fprintf(&b, ", Termin: %s", c.Appointment)
	}
	if c := r.Contact; c != nil && c.WalkIn != "" {
		fmt.Fprintf(&b, ", %s", walkInText(c.WalkIn))
	}
	if r.Note != "" {
		fmt.Fprintf(&b, ", Hinweis zum Termin: %s", r.Note)
	}
	if len(r.AlsoIn) > 0 {
		fmt.Fprintf(&b, ", auch erfasst in: %s", strings.Join(r.AlsoIn, ", "))
	}
	fmt.Fprintf(&b, ", Besuchs-ID %s", r.VisitID)
	return b.String()
}
