package export

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/cityhall/registry/registry"
)

// Sheet names of the workbook.
const (
	sheetCase     = "Fall"
	sheetContacts = "Kontakte"
	sheetTimeline = "Zeitleiste"
)

// xlsxColumns are the contact sheet's columns with their widths.
var xlsxColumns = []struct {
	title string
	width float64
}{
	{"Nachname", 18}, {"Vorname", 16}, {"Straße", 20}, {"Hausnummer", 8}, {"PLZ", 7}, {"Ort", 16},
	{"Telefon", 17}, {"E-Mail", 24}, {"Standort", 20}, {"Bereich", 14}, {"Ankunft", 16}, {"Verlassen", 16},
	{"Verlassen (Hinweis)", 30}, {"Kontaktdauer (Minuten)", 11}, {"Besuchte Person", 16}, {"Termin", 10},
	{"Hinweis zum Termin", 30}, {"Besuchs-ID", 34},
}

// maxTimelineRows bounds the timeline sheet: beyond it a tracer filters the
// contact list instead.
const maxTimelineRows = 2000

// WriteXLSX writes the bundle as an Excel workbook (github.com/xuri/excelize):
//
//   - "Fall": the case reference, office, legal basis, window, sites (display
//     names) and areas, who approved and when, the number of records, when the
//     bundle was made and decrypted, and the bundle's digest;
//   - "Kontakte": one row per visit. Every personal field is a text cell
//     (type string, number format "@"): never a formula, never converted to a
//     number or date, so "=1+1", "0815", "12.11." and "+4929312010" stay
//     exactly what the visitor gave, with no prefix. Arrival and departure are
//     date-time cells in German local time ("TT.MM.JJJJ hh:mm"); a visit open
//     at the export has no departure time and says so in "Verlassen
//     (Hinweis)"; contact minutes are numbers. Header row frozen, filters on,
//     printed in landscape on A4, all columns on the page width, the header
//     row repeated on every page;
//   - "Zeitleiste": one row per visit (up to maxTimelineRows), grouped by
//     site and area, with the window's time slots as columns: a visit's slots
//     are filled, the requested window is shaded, so that who overlapped
//     whom, and for how long, shows at a glance.
//
// The contact sheet is streamed: memory grows with the timeline's few
// fields per visit, not with the contacts. Beyond a few MiB excelize spills
// the sheets into temporary files in tmpDir ("" for the system's): pass a
// private directory (crypto.ScratchDir.Dir), since they hold contact data.
func WriteXLSX(w io.Writer, src Source, decrypted time.Time, tmpDir string) error {
	f := excelize.NewFile(excelize.Options{TmpDir: tmpDir})
	defer f.Close()
	st, err := newXLSXStyles(f)
	if err != nil {
		return err
	}
	if err := f.SetSheetName("Sheet1", sheetCase); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if _, err := f.NewSheet(sheetContacts); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	h := src.BundleHeader()
	bars, n, err := writeContacts(f, st, src)
	if err != nil {
		return err
	}
	if err := writeTimeline(f, st, h, bars); err != nil {
		return err
	}
	if err := writeCover(f, st, coverRows(h, src.BundleDigest(), decrypted), n, len(bars)); err != nil {
		return err
	}
	f.SetActiveSheet(0)
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("write xlsx: %w", err)
	}
	return nil
}

type xlsxStyles struct {
	bold, text, date, number, wrap, slot, window, both, group, slotHead int
}

func newXLSXStyles(f *excelize.File) (*xlsxStyles, error) {
	dateFmt := "dd.mm.yyyy hh:mm"
	var st xlsxStyles
	for _, s := range []struct {
		id    *int
		style *excelize.Style
	}{
		{&st.bold, &excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: 49, Alignment: &excelize.Alignment{Vertical: "top", WrapText: true},
			Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"#DDE6F0"}}}},
		{&st.text, &excelize.Style{NumFmt: 49, Alignment: &excelize.Alignment{Vertical: "top"}}},
		{&st.wrap, &excelize.Style{NumFmt: 49, Alignment: &excelize.Alignment{Vertical: "top", WrapText: true}}},
		{&st.date, &excelize.Style{CustomNumFmt: &dateFmt, Alignment: &excelize.Alignment{Vertical: "top"}}},
		{&st.number, &excelize.Style{NumFmt: 1, Alignment: &excelize.Alignment{Vertical: "top"}}},
		{&st.slot, &excelize.Style{Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"#7A9CC6"}}}},
		{&st.window, &excelize.Style{Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"#FFF2CC"}}}},
		{&st.both, &excelize.Style{Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"#1F4E79"}}}},
		{&st.group, &excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: 49}},
		{&st.slotHead, &excelize.Style{Font: &excelize.Font{Bold: true, Size: 8}, NumFmt: 49}},
	} {
		id, err := f.NewStyle(s.style)
		if err != nil {
			return nil, fmt.Errorf("xlsx style: %w", err)
		}
		*s.id = id
	}
	return &st, nil
}

// excelTime is t's German wall-clock time, which excelize writes as an
// Excel serial date: the cell shows the local time whatever zone the
// spreadsheet program runs in.
func excelTime(t time.Time) time.Time {
	l := t.In(localZone())
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// bar is what the timeline needs of a visit.
type bar struct {
	site, area, label string
	from, to          time.Time
	open              bool
}

func text(v string, style int) excelize.Cell {
	return excelize.Cell{Value: clean(v), StyleID: style}
}

// writeContacts streams the contact sheet and returns the timeline's bars
// (at most maxTimelineRows) and the number of records.
func writeContacts(f *excelize.File, st *xlsxStyles, src Source) ([]bar, int, error) {
	// The stream writer writes the sheet's properties when it starts and
	// the page setup when it flushes: set them first.
	if err := printLayout(f, sheetContacts); err != nil {
		return nil, 0, err
	}
	sw, err := f.NewStreamWriter(sheetContacts)
	if err != nil {
		return nil, 0, fmt.Errorf("xlsx: %w", err)
	}
	for i, c := range xlsxColumns {
		if err := sw.SetColWidth(i+1, i+1, c.width); err != nil {
			return nil, 0, fmt.Errorf("xlsx: %w", err)
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, 0, fmt.Errorf("xlsx: %w", err)
	}
	head := make([]any, len(xlsxColumns))
	for i, c := range xlsxColumns {
		head[i] = text(c.title, st.bold)
	}
	if err := sw.SetRow("A1", head, excelize.RowOpts{Height: 30}); err != nil {
		return nil, 0, fmt.Errorf("xlsx: %w", err)
	}
	h := src.BundleHeader()
	var bars []bar
	n := 0
	for r, err := range src.All() {
		if err != nil {
			return nil, 0, err
		}
		n++
		c := r.Contact
		if c == nil {
			c = &registry.Contact{}
		}
		out := excelize.Cell{StyleID: st.text}
		note := ""
		if r.CheckOut != nil {
			out = excelize.Cell{Value: excelTime(*r.CheckOut), StyleID: st.date}
			if r.CheckoutAuto {
				note = "automatisch abgemeldet"
			}
		} else {
			note = openText(h, r)
		}
		row := []any{
			text(c.FamilyName, st.text), text(c.GivenName, st.text), text(c.Street, st.text), text(c.HouseNumber, st.text),
			text(c.Postcode, st.text), text(c.City, st.text), text(c.Phone, st.text), text(c.Email, st.text),
			text(h.SiteName(r.Site), st.text), text(r.Area, st.text),
			excelize.Cell{Value: excelTime(r.CheckIn), StyleID: st.date}, out, text(note, st.wrap),
			excelize.Cell{Value: r.ContactMinutes, StyleID: st.number},
			text(c.Host, st.text), text(c.Appointment, st.text), text(r.Note, st.wrap), text(r.VisitID, st.text),
		}
		cell, _ := excelize.CoordinatesToCellName(1, n+1)
		if err := sw.SetRow(cell, row); err != nil {
			return nil, 0, fmt.Errorf("xlsx: %w", err)
		}
		if len(bars) < maxTimelineRows {
			bars = append(bars, bar{site: h.SiteName(r.Site), area: r.Area, label: clean(c.FamilyName + ", " + c.GivenName),
				from: r.CheckIn, to: presumedEnd(h, r), open: r.CheckOut == nil})
		}
	}
	// The filter goes into the sheet's settings, which the stream writer
	// writes at Flush.
	last, _ := excelize.CoordinatesToCellName(len(xlsxColumns), n+1)
	if err := f.AutoFilter(sheetContacts, "A1:"+last, nil); err != nil {
		return nil, 0, fmt.Errorf("xlsx: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return nil, 0, fmt.Errorf("xlsx: %w", err)
	}
	return bars, n, nil
}

// printLayout prints a sheet on A4 landscape, all columns on the page
// width, the first row on every page.
func printLayout(f *excelize.File, sheet string) error {
	a4, landscape, one, tall := 9, "landscape", 1, 0
	fit := true
	if err := f.SetPageLayout(sheet, &excelize.PageLayoutOptions{Size: &a4, Orientation: &landscape, FitToWidth: &one, FitToHeight: &tall}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := f.SetSheetProps(sheet, &excelize.SheetPropsOptions{FitToPage: &fit}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	err := f.SetDefinedName(&excelize.DefinedName{Name: "_xlnm.Print_Titles", RefersTo: "'" + sheet + "'!$1:$1", Scope: sheet})
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
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

// timelineSpan is the span the timeline shows: the window, widened to the
// stays that overlap it, by at most six hours on either side (an open
// visit's bar runs off the edge), on slot boundaries.
func timelineSpan(h *Header, bars []bar) (from, to time.Time, slot time.Duration) {
	from, to = h.From, h.To
	for _, b := range bars {
		if b.from.Before(from) {
			from = b.from
		}
		if b.to.After(to) {
			to = b.to
		}
	}
	from, to = maxTime(from, h.From.Add(-6*time.Hour)), minTime(to, h.To.Add(6*time.Hour))
	slot = timelineSlot(to.Sub(from))
	from = from.Truncate(slot)
	if t := to.Truncate(slot); t.Before(to) {
		to = t.Add(slot)
	}
	return from, to, slot
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
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

func writeTimeline(f *excelize.File, st *xlsxStyles, h *Header, bars []bar) error {
	if _, err := f.NewSheet(sheetTimeline); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	sortBars(bars)
	from, to, slot := timelineSpan(h, bars)
	slots := int(to.Sub(from) / slot)
	if err := printLayout(f, sheetTimeline); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(sheetTimeline)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	const lead = 3 // name, arrival, departure
	sw.SetColWidth(1, 1, 26)
	sw.SetColWidth(2, 3, 7)
	if slots > 0 {
		sw.SetColWidth(lead+1, lead+slots, 2.2)
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, XSplit: lead, YSplit: 2, TopLeftCell: "D3", ActivePane: "bottomRight"}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	title := []any{text(fmt.Sprintf("Zeitleiste %s bis %s, ein Kästchen = %d Minuten; gelb: angefragter Zeitraum, blau: anwesend, dunkelblau: anwesend im Zeitraum",
		germanTime(h.From), germanTime(h.To), int(slot/time.Minute)), st.group)}
	if err := sw.SetRow("A1", title); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	head := []any{text("Person", st.bold), text("von", st.bold), text("bis", st.bold)}
	for i := range slots {
		t := from.Add(time.Duration(i) * slot)
		style := st.slotHead
		if inWindow(h, t, slot) {
			style = st.window
		}
		if i%4 == 0 {
			// Labels overflow into the next, empty cells.
			head = append(head, excelize.Cell{Value: germanClock(t), StyleID: st.slotHead})
		} else {
			head = append(head, excelize.Cell{StyleID: style})
		}
	}
	if err := sw.SetRow("A2", head); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	row := 3
	group := ""
	for _, b := range bars {
		if g := b.site + " · " + orDash(b.area); g != group {
			group = g
			cell, _ := excelize.CoordinatesToCellName(1, row)
			if err := sw.SetRow(cell, []any{text(g, st.group)}); err != nil {
				return fmt.Errorf("xlsx: %w", err)
			}
			row++
		}
		until := germanClock(b.to)
		if b.open {
			until += "?"
		}
		cells := []any{text(b.label, st.text), text(germanClock(b.from), st.text), text(until, st.text)}
		for i := range slots {
			t := from.Add(time.Duration(i) * slot)
			present := b.from.Before(t.Add(slot)) && b.to.After(t)
			win := inWindow(h, t, slot)
			switch {
			case present && win:
				cells = append(cells, excelize.Cell{StyleID: st.both})
			case present:
				cells = append(cells, excelize.Cell{StyleID: st.slot})
			case win:
				cells = append(cells, excelize.Cell{StyleID: st.window})
			default:
				cells = append(cells, nil)
			}
		}
		cell, _ := excelize.CoordinatesToCellName(1, row)
		if err := sw.SetRow(cell, cells); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
		row++
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
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

func writeCover(f *excelize.File, st *xlsxStyles, rows [][2]string, n, bars int) error {
	if bars < n {
		rows = append(rows, [2]string{"Zeitleiste", fmt.Sprintf("zeigt die ersten %d von %d Besuchen; filtern Sie die Kontaktliste", bars, n)})
	}
	f.SetColWidth(sheetCase, "A", "A", 34)
	f.SetColWidth(sheetCase, "B", "B", 90)
	f.SetCellValue(sheetCase, "A1", "Kontaktnachverfolgung: Besucherliste")
	f.SetCellStyle(sheetCase, "A1", "A1", st.group)
	for i, r := range rows {
		a, _ := excelize.CoordinatesToCellName(1, i+3)
		b, _ := excelize.CoordinatesToCellName(2, i+3)
		if err := f.SetCellStr(sheetCase, a, r[0]); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
		if err := f.SetCellStr(sheetCase, b, clean(r[1])); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
		f.SetCellStyle(sheetCase, a, a, st.bold)
		f.SetCellStyle(sheetCase, b, b, st.wrap)
	}
	a4, portrait, one, tall, fit := 9, "portrait", 1, 0, true
	if err := f.SetSheetProps(sheetCase, &excelize.SheetPropsOptions{FitToPage: &fit}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return f.SetPageLayout(sheetCase, &excelize.PageLayoutOptions{Size: &a4, Orientation: &portrait, FitToWidth: &one, FitToHeight: &tall})
}
