package export

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// Sheet names of the workbook.
const (
	sheetCase     = "Fall"
	sheetContacts = "Kontakte"
	sheetTimeline = "Zeitleiste"
)

// xlsxColumn is a column of the contact sheet with its width (in
// characters; the sheet prints in landscape with all columns on the page
// width, every text cell wrapping within its column).
type xlsxColumn struct {
	title string
	width float64
}

// xlsxColumns are the contact sheet's columns of one registry's bundle; a
// case of several (Merge) adds "Register" before "Standort" and "Auch
// erfasst in" before "Besuchs-ID" (see contactColumns).
var xlsxColumns = []xlsxColumn{
	{"Nachname", 16}, {"Vorname", 14}, {"Straße", 18}, {"Hausnummer", 7}, {"PLZ", 7}, {"Ort", 14},
	{"Telefon", 16}, {"E-Mail", 22}, {"Standort", 18}, {"Bereich", 14}, {"Ankunft", 15}, {"Verlassen", 15},
	{"Verlassen (Hinweis)", 24}, {"Kontaktdauer (Minuten)", 10}, {"Besuchte Person", 16}, {"Termin", 9},
	{"Ohne Termin (Grund)", 14}, {"Hinweis zum Termin", 26}, {"Besuchs-ID", 34}, {"Rolle (Indexfall)", 16},
}

// maxTimelineRows bounds the timeline sheet: beyond it a tracer filters the
// contact list instead.
const maxTimelineRows = 2000

// WriteXLSX writes the bundle as an Excel workbook:
//
//   - "Fall": the case reference, office, legal basis, window, sites (display
//     names) and areas, who approved and when, the number of records, when the
//     bundle was made and decrypted, and the bundle's digest;
//   - "Kontakte": one row per visit. Every personal field is a text cell
//     (number format "@", an inline string): never a formula, never converted
//     to a number or date, so "=1+1", "0815", "12.11." and "+4929312010" stay
//     exactly what the visitor gave, with no prefix. Arrival and departure are
//     date-time cells in German local time ("TT.MM.JJJJ hh:mm"); a visit open
//     at the export has no departure time and says so in "Verlassen
//     (Hinweis)"; contact minutes are numbers. Every text cell wraps in its
//     column and each row is as high as its longest cell, so that nothing is
//     cut or overprinted on paper. Header row frozen, filters on, printed in
//     landscape on A4, all columns on the page width, the header row
//     repeated on every page, the print area the list;
//   - "Zeitleiste": one row per visit (up to maxTimelineRows), grouped by
//     site and area, with the requested window's time slots as columns: a
//     visit's slots are filled, the requested window is shaded, a stay that
//     runs on beyond the window is marked with an arrow, so that who
//     overlapped whom, and for how long, shows at a glance.
//
// The workbook is streamed into w (see workbook): memory grows with the
// timeline's few fields per visit, not with the contacts, and no
// temporary file is written. tmpDir is not used any more; it is kept for
// the callers' signature.
func WriteXLSX(w io.Writer, src Source, decrypted time.Time, tmpDir string) error {
	wb := newWorkbook(w)
	st := newXLSXStyles(wb)
	h := src.BundleHeader()
	bars, n, err := writeContacts(wb, st, src)
	if err != nil {
		return err
	}
	if err := writeTimeline(wb, st, h, bars); err != nil {
		return err
	}
	if err := writeCover(wb, st, coverRows(h, src.BundleDigest(), decrypted), n, len(bars)); err != nil {
		return err
	}
	if err := wb.close(); err != nil {
		return fmt.Errorf("write xlsx: %w", err)
	}
	return nil
}

type xlsxStyles struct {
	bold, text, date, number, slot, window, both, group, slotHead styleID
}

func newXLSXStyles(wb *workbook) *xlsxStyles {
	return &xlsxStyles{
		bold:     wb.style(cellStyle{bold: true, numFmt: "@", vertical: "top", wrap: true, fill: "DDE6F0"}),
		text:     wb.style(cellStyle{numFmt: "@", vertical: "top", wrap: true}),
		date:     wb.style(cellStyle{numFmt: "dd.mm.yyyy hh:mm", vertical: "top"}),
		number:   wb.style(cellStyle{numFmt: "0", vertical: "top"}),
		slot:     wb.style(cellStyle{fill: "7A9CC6"}),
		window:   wb.style(cellStyle{fill: "FFF2CC"}),
		both:     wb.style(cellStyle{fill: "1F4E79"}),
		group:    wb.style(cellStyle{bold: true, numFmt: "@"}),
		slotHead: wb.style(cellStyle{bold: true, size: 8, numFmt: "@"}),
	}
}

// excelTime is t in German time, which the workbook writes as the
// wall-clock serial date it shows.
func excelTime(t time.Time) time.Time { return t.In(localZone()) }

// barLabel is a timeline row's label: the name, marked when the row is
// the index case's own stay.
func barLabel(r *Record, name string) string {
	if r.Role == RoleIndex {
		return "INDEXFALL: " + name
	}
	return name
}

// bar is what the timeline needs of a visit.
type bar struct {
	site, area, label string
	from, to          time.Time
	open              bool
}

// contactColumns are the contact sheet's columns for the header h.
func contactColumns(h *Header) []xlsxColumn {
	if len(h.Parts) == 0 {
		return xlsxColumns
	}
	var cols []xlsxColumn
	for _, c := range xlsxColumns {
		switch c.title {
		case "Standort":
			cols = append(cols, xlsxColumn{"Register", 16})
		case "Besuchs-ID":
			cols = append(cols, xlsxColumn{"Auch erfasst in", 18})
		}
		cols = append(cols, c)
	}
	return cols
}

// writeContacts streams the contact sheet and returns the timeline's bars
// (at most maxTimelineRows) and the number of records.
func writeContacts(wb *workbook, st *xlsxStyles, src Source) ([]bar, int, error) {
	h := src.BundleHeader()
	cols := contactColumns(h)
	widths := make([]float64, len(cols))
	for i, c := range cols {
		widths[i] = c.width
	}
	sh, err := wb.newSheet(sheetOptions{name: sheetContacts, widths: widths, freezeRows: 1, filter: true, printTitles: 1, landscape: true})
	if err != nil {
		return nil, 0, err
	}
	head := make([]cell, len(cols))
	for i, c := range cols {
		head[i] = textCell(c.title, st.bold)
	}
	if err := sh.addRow(wrappedHeight(head, widths), head...); err != nil {
		return nil, 0, err
	}
	var bars []bar
	n := 0
	row := make([]cell, 0, len(cols))
	for r, err := range src.All() {
		if err != nil {
			return nil, 0, err
		}
		n++
		row = contactRow(row[:0], h, r, st)
		if err := sh.addRow(wrappedHeight(row, widths), row...); err != nil {
			return nil, 0, err
		}
		if len(bars) < maxTimelineRows {
			c := contactOf(r)
			bars = append(bars, bar{site: placeName(h, r), area: r.Area, label: barLabel(r, clean(c.FamilyName+", "+c.GivenName)),
				from: r.CheckIn, to: presumedEnd(h, r), open: r.CheckOut == nil})
		}
	}
	return bars, n, sh.close()
}

// contactOf is r's contact, or an empty one.
func contactOf(r *Record) *registry.Contact {
	if r.Contact == nil {
		return &registry.Contact{}
	}
	return r.Contact
}

// contactRow appends r's cells to row.
func contactRow(row []cell, h *Header, r *Record, st *xlsxStyles) []cell {
	c := contactOf(r)
	out, note := styledCell(st.text), ""
	if r.CheckOut != nil {
		out = timeCell(excelTime(*r.CheckOut), st.date)
		if r.CheckoutAuto {
			note = "automatisch abgemeldet"
		}
	} else {
		note = openText(h, r)
	}
	merged := len(h.Parts) > 0
	row = append(row,
		textCell(c.FamilyName, st.text), textCell(c.GivenName, st.text), textCell(c.Street, st.text), textCell(c.HouseNumber, st.text),
		textCell(c.Postcode, st.text), textCell(c.City, st.text), textCell(c.Phone, st.text), textCell(c.Email, st.text))
	if merged {
		row = append(row, textCell(r.Registry, st.text))
	}
	row = append(row, textCell(siteName(h, r), st.text), textCell(r.Area, st.text),
		timeCell(excelTime(r.CheckIn), st.date), out, textCell(note, st.text),
		numberCell(float64(r.ContactMinutes), st.number),
		textCell(c.Host, st.text), textCell(c.Appointment, st.text), textCell(walkInText(c.WalkIn), st.text),
		textCell(r.Note, st.text))
	if merged {
		row = append(row, textCell(strings.Join(r.AlsoIn, ", "), st.text))
	}
	return append(row, textCell(r.VisitID, st.text), textCell(RoleText(r.Role), st.text))
}

// timelineSlot returns the slot length for a span: the shortest of 5, 10,
// 15, 30, 60 and 120 minutes that needs at most 96 columns.
func timelineSlot(span time.Duration) time.Duration {
	for _, m := range []int{5, 10, 15, 30, 60, 120} {
		if d := time.Duration(m) * time.Minute; span/d <= 96 {
			return d
		}
	}
	return 4 * time.Hour
}

// timelineSpan is the span the timeline shows: the requested window, on
// slot boundaries. A stay that reaches beyond it (a visit still open at
// the export runs until its automatic check-out, often the next day) is
// cut at the window's edge and marked with an arrow, so that closed
// visits keep their width instead of shrinking to ticks.
func timelineSpan(h *Header) (from, to time.Time, slot time.Duration) {
	from, to = h.From, h.To
	slot = timelineSlot(to.Sub(from))
	from = from.Truncate(slot)
	if t := to.Truncate(slot); t.Before(to) {
		to = t.Add(slot)
	}
	return from, to, slot
}

// sortBars orders bars by site, area and arrival.
func sortBars(bars []bar) {
	slices.SortFunc(bars, func(a, b bar) int {
		switch {
		case a.site != b.site:
			return strings.Compare(a.site, b.site)
		case a.area != b.area:
			return strings.Compare(a.area, b.area)
		}
		return a.from.Compare(b.from)
	})
}

func writeTimeline(wb *workbook, st *xlsxStyles, h *Header, bars []bar) error {
	sortBars(bars)
	from, to, slot := timelineSpan(h)
	slots := int(to.Sub(from) / slot)
	const lead = 3 // name, arrival, departure
	widths := append([]float64{26, 7, 8}, slices.Repeat([]float64{2.2}, slots)...)
	sh, err := wb.newSheet(sheetOptions{name: sheetTimeline, widths: widths, freezeRows: 2, freezeCols: lead, printTitles: 2, landscape: true})
	if err != nil {
		return err
	}
	title := textCell(fmt.Sprintf("Zeitleiste %s bis %s, ein Kästchen = %d Minuten; gelb: angefragter Zeitraum, blau: anwesend, dunkelblau: anwesend im Zeitraum; ◀ ▶: Aufenthalt reicht über den Zeitraum hinaus",
		germanTime(h.From), germanTime(h.To), int(slot/time.Minute)), st.group)
	if err := sh.addRow(0, title); err != nil {
		return err
	}
	head := []cell{textCell("Person", st.bold), textCell("von", st.bold), textCell("bis", st.bold)}
	for i := range slots {
		t := from.Add(time.Duration(i) * slot)
		switch {
		case i%4 == 0: // labels overflow into the next, empty cells
			head = append(head, textCell(germanClock(t), st.slotHead))
		case inWindow(h, t, slot):
			head = append(head, styledCell(st.window))
		default:
			head = append(head, cell{})
		}
	}
	if err := sh.addRow(0, head...); err != nil {
		return err
	}
	group := ""
	cells := make([]cell, 0, lead+slots)
	for _, b := range bars {
		if g := b.site + " · " + orDash(b.area); g != group {
			group = g
			if err := sh.addRow(0, textCell(g, st.group)); err != nil {
				return err
			}
		}
		cells = timelineRow(cells[:0], h, b, from, slot, slots, st)
		if err := sh.addRow(0, cells...); err != nil {
			return err
		}
	}
	return sh.close()
}

// timelineRow appends the cells of a visit's row of the timeline.
func timelineRow(cells []cell, h *Header, b bar, from time.Time, slot time.Duration, slots int, st *xlsxStyles) []cell {
	since, until := germanClock(b.from), germanClock(b.to)
	if b.from.Before(from) {
		since = "◀ " + germanTime(b.from)
	}
	if b.open {
		until += " ▶ offen"
	} else if !b.to.Before(from.Add(time.Duration(slots) * slot)) {
		until += " ▶"
	}
	cells = append(cells, textCell(b.label, st.text), textCell(since, st.text), textCell(until, st.text))
	for i := range slots {
		t := from.Add(time.Duration(i) * slot)
		present := b.from.Before(t.Add(slot)) && b.to.After(t)
		win := inWindow(h, t, slot)
		switch {
		case present && win:
			cells = append(cells, styledCell(st.both))
		case present:
			cells = append(cells, styledCell(st.slot))
		case win:
			cells = append(cells, styledCell(st.window))
		default:
			cells = append(cells, cell{})
		}
	}
	return cells
}

// inWindow reports whether the slot starting at t overlaps the window.
func inWindow(h *Header, t time.Time, slot time.Duration) bool {
	return t.Before(h.To) && t.Add(slot).After(h.From)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func writeCover(wb *workbook, st *xlsxStyles, rows [][2]string, n, bars int) error {
	if bars < n {
		rows = append(rows, [2]string{"Zeitleiste", fmt.Sprintf("zeigt die ersten %d von %d Besuchen; filtern Sie die Kontaktliste", bars, n)})
	}
	widths := []float64{34, 90}
	sh, err := wb.newSheet(sheetOptions{name: sheetCase, widths: widths, active: true})
	if err != nil {
		return err
	}
	if err := sh.addRow(0, textCell("Kontaktnachverfolgung: Besucherliste", st.group)); err != nil {
		return err
	}
	if err := sh.addRow(0); err != nil {
		return err
	}
	for _, r := range rows {
		cells := []cell{textCell(r[0], st.bold), textCell(r[1], st.text)}
		if err := sh.addRow(wrappedHeight(cells, widths), cells...); err != nil {
			return err
		}
	}
	return sh.close()
}
