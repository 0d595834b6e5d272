package export

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"

	"github.com/cityhall/registry/registry"
)

// MaxPDFRecords bounds what WritePDF puts on paper (it holds every record
// in memory); beyond it the workbook is the format to use.
const MaxPDFRecords = 20000

// Landscape A4 in millimetres.
const (
	pdfW, pdfH   = 297.0, 210.0
	pdfMargin    = 12.0
	pdfRow       = 5.2
	pdfLabelW    = 72.0
	pdfFooterGap = 8.0
)

// WritePDF writes the bundle for paper (github.com/signintech/gopdf, the
// Go fonts), A4 landscape: a cover page with the same information as the
// workbook's "Fall" sheet, a timeline of the window (one bar per visit,
// grouped by site and area, the requested window shaded, the part of a
// stay inside it darker), and the contact list with a header on every
// page. Every page names the case and its number. Characters the font
// cannot show are printed as "?" (the cover says so; the workbook holds
// them exactly). It refuses more than MaxPDFRecords records.
func WritePDF(w io.Writer, src Source, decrypted time.Time) error {
	h := src.BundleHeader()
	if h.Count > MaxPDFRecords {
		return registry.Errorf(registry.EINVALID, "The bundle holds %d records; a PDF takes at most %d. Use --format xlsx.", h.Count, MaxPDFRecords)
	}
	var recs []Record
	for r, err := range src.All() {
		if err != nil {
			return err
		}
		recs = append(recs, *r)
	}
	p, err := newPDF(h)
	if err != nil {
		return err
	}
	p.cover(coverRows(h, src.BundleDigest(), decrypted))
	bars := make([]bar, len(recs))
	for i := range recs {
		r := &recs[i]
		c := r.Contact
		if c == nil {
			c = &registry.Contact{}
		}
		bars[i] = bar{site: placeName(h, r), area: r.Area, label: barLabel(r, c.FamilyName+", "+c.GivenName),
			from: r.CheckIn, to: presumedEnd(h, r), open: r.CheckOut == nil}
	}
	p.timeline(h, bars)
	p.contacts(h, recs)
	if err := p.pdf.Write(w); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	return nil
}

type pdfDoc struct {
	pdf     *gopdf.GoPdf
	font    *sfnt.Font
	buf     sfnt.Buffer
	caseRef string
	page    int
	y       float64
}

func newPDF(h *Header) (*pdfDoc, error) {
	font, err := sfnt.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: gopdf.Rect{W: pdfW, H: pdfH}, Unit: gopdf.UnitMM})
	pdf.SetInfo(gopdf.PdfInfo{Title: "Kontaktnachverfolgung " + h.CaseRef, Creator: "registry", Producer: "registry"})
	if err := pdf.AddTTFFontData("regular", goregular.TTF); err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	if err := pdf.AddTTFFontData("bold", gobold.TTF); err != nil {
		return nil, fmt.Errorf("pdf font: %w", err)
	}
	p := &pdfDoc{pdf: pdf, font: font}
	p.caseRef = p.printable(h.CaseRef)
	return p, nil
}

// printable replaces what the font cannot show, and control characters,
// with "?".
func (p *pdfDoc) printable(s string) string {
	s = clean(s)
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if i, err := p.font.GlyphIndex(&p.buf, r); err != nil || i == 0 {
			return '?'
		}
		return r
	}, s)
}

// rect fills a rectangle in the colour, and sets the fill colour back to
// black (gopdf draws text in the fill colour).
func (p *pdfDoc) rect(x, y, w, h float64, r, g, b uint8) {
	p.pdf.SetFillColor(r, g, b)
	p.pdf.RectFromUpperLeftWithStyle(x, y, w, h, "F")
	p.pdf.SetFillColor(0, 0, 0)
}

func (p *pdfDoc) newPage(title string) {
	p.pdf.AddPage()
	p.page++
	p.pdf.SetFont("bold", "", 13)
	p.pdf.SetXY(pdfMargin, pdfMargin)
	p.pdf.Cell(nil, title)
	p.pdf.SetFont("regular", "", 8)
	p.pdf.SetXY(pdfMargin, pdfH-pdfMargin+2)
	p.pdf.Cell(nil, fmt.Sprintf("Aktenzeichen %s · Seite %d · vertraulich: Kontaktdaten, nur für die Kontaktnachverfolgung", p.caseRef, p.page))
	p.y = pdfMargin + 9
}

// fit shortens s to width at the current font, with an ellipsis.
func (p *pdfDoc) fit(s string, width float64) string {
	s = p.printable(s)
	if w, err := p.pdf.MeasureTextWidth(s); err == nil && w <= width {
		return s
	}
	r := []rune(s)
	for len(r) > 0 {
		r = r[:len(r)-1]
		if w, err := p.pdf.MeasureTextWidth(string(r) + "…"); err == nil && w <= width {
			return string(r) + "…"
		}
	}
	return ""
}

// wrap splits s (made printable) into lines of at most width at the
// regular 8-point font, between words; a word wider than a line (a long
// e-mail address) is broken where it must, never cut off.
func (p *pdfDoc) wrap(s string, width float64) []string {
	p.pdf.SetFont("regular", "", 8)
	fits := func(t string) bool { w, err := p.pdf.MeasureTextWidth(t); return err == nil && w <= width }
	var lines []string
	line := ""
	for _, word := range strings.Fields(p.printable(s)) {
		next := word
		if line != "" {
			next = line + " " + word
		}
		if fits(next) {
			line = next
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		line = word
		for !fits(line) {
			r := []rune(line)
			n := len(r) - 1
			for n > 1 && !fits(string(r[:n])) {
				n--
			}
			lines = append(lines, string(r[:n]))
			line = string(r[n:])
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func (p *pdfDoc) cover(rows [][2]string) {
	p.newPage("Kontaktnachverfolgung: Besucherliste")
	rows = append(rows, [2]string{"Zeichen", "Zeichen, die die Schrift dieses PDFs nicht darstellen kann, erscheinen als „?“; die XLSX-Datei enthält alle Angaben unverändert."})
	for _, r := range rows {
		p.pdf.SetFont("bold", "", 10)
		p.pdf.SetXY(pdfMargin, p.y)
		p.pdf.Cell(nil, r[0])
		p.pdf.SetFont("regular", "", 10)
		lines, err := p.pdf.SplitTextWithWordWrap(p.printable(r[1]), pdfW-2*pdfMargin-75)
		if err != nil || len(lines) == 0 {
			lines = []string{p.printable(r[1])}
		}
		for _, l := range lines {
			p.pdf.SetXY(pdfMargin+75, p.y)
			p.pdf.Cell(nil, strings.TrimSpace(l))
			p.y += 5
		}
		p.y += 1.5
	}
}

// timeline draws the bars, a page at a time, on the scale of the
// requested window: a stay that begins before the window or runs on
// after it (a visit still open at the export runs until its automatic
// check-out) is cut at the edge and marked there with an arrow, so that
// every bar keeps a readable width.
func (p *pdfDoc) timeline(h *Header, bars []bar) {
	sortBars(bars)
	from, to, slot := timelineSpan(h)
	x0, width := pdfMargin+pdfLabelW, pdfW-2*pdfMargin-pdfLabelW
	scale := width / float64(to.Sub(from))
	xOf := func(t time.Time) float64 {
		return x0 + float64(maxTime(from, minTime(to, t)).Sub(from))*scale
	}
	title := fmt.Sprintf("Zeitleiste %s bis %s", germanTime(h.From), germanTime(h.To))
	top := 0.0
	start := func() {
		p.newPage(title)
		p.pdf.SetFont("regular", "", 8)
		p.pdf.SetXY(pdfMargin, p.y-2)
		p.pdf.Cell(nil, "Gelb: der angefragte Zeitraum; hell: anwesend, dunkel: anwesend im Zeitraum; Pfeil: der Aufenthalt begann vorher oder reicht darüber hinaus (offen: beim Export noch anwesend).")
		p.y += 4
		top = p.y
		// The window, shaded, and the hour lines with their labels.
		p.rect(xOf(h.From), top, xOf(h.To)-xOf(h.From), pdfH-pdfMargin-pdfFooterGap-top, 255, 242, 204)
		step := max(slot*4, time.Hour)
		p.pdf.SetStrokeColor(200, 200, 200)
		p.pdf.SetFont("regular", "", 7)
		for t := from.Truncate(step); !t.After(to); t = t.Add(step) {
			if t.Before(from) {
				continue
			}
			p.pdf.Line(xOf(t), top+4, xOf(t), pdfH-pdfMargin-pdfFooterGap)
			p.pdf.SetXY(xOf(t)-4, top)
			p.pdf.Cell(nil, germanClock(t))
		}
		p.y = top + 5
	}
	start()
	group := ""
	for _, b := range bars {
		g := b.site + " · " + orDash(b.area)
		// The group's name on lines of its own across the page: a long
		// area name is wrapped, never cut.
		var head []string
		if g != group {
			head = p.wrap(g, (pdfW-2*pdfMargin)*0.9) // bold is wider than wrap's regular font
		}
		if p.y+float64(1+len(head))*pdfRow > pdfH-pdfMargin-pdfFooterGap {
			start()
			group = ""
			head = p.wrap(g, (pdfW-2*pdfMargin)*0.9) // the group again on the new page
		}
		if g != group {
			group = g
			p.pdf.SetFont("bold", "", 8)
			for _, line := range head {
				p.pdf.SetXY(pdfMargin, p.y+0.8)
				p.pdf.Cell(nil, line)
				p.y += pdfRow
			}
		}
		p.pdf.SetFont("regular", "", 8)
		p.pdf.SetXY(pdfMargin+2, p.y+0.8)
		until := germanClock(b.to)
		if b.open {
			until = "offen"
		}
		p.pdf.Cell(nil, p.fit(b.label, pdfLabelW-28)+"  "+germanClock(b.from)+"–"+until)
		x1, x2 := xOf(b.from), xOf(b.to)
		p.rect(x1, p.y+1, max(x2-x1, 0.8), pdfRow-2, 122, 156, 198)
		if in1, in2 := maxTime(b.from, h.From), minTime(b.to, h.To); in1.Before(in2) {
			p.rect(xOf(in1), p.y+1, max(xOf(in2)-xOf(in1), 0.8), pdfRow-2, 31, 78, 121)
		}
		if b.from.Before(from) {
			p.arrow(x1, p.y+pdfRow/2, -1)
		}
		if b.open || b.to.After(to) {
			p.arrow(x2, p.y+pdfRow/2, +1)
		}
		p.y += pdfRow
	}
}

// arrow draws a small black triangle at x, y pointing left (dir -1) or
// right (+1): the stay goes on beyond the window.
func (p *pdfDoc) arrow(x, y, dir float64) {
	p.pdf.SetFillColor(0, 0, 0)
	p.pdf.Polygon([]gopdf.Point{{X: x, Y: y - 1.6}, {X: x, Y: y + 1.6}, {X: x + dir*2.4, Y: y}}, "F")
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

// pdfColumns of the contact list, widths in millimetres (the page's
// width between the margins). Every cell wraps within its column: a row
// is as high as its longest cell, and nothing is cut off.
var pdfColumns = []struct {
	title string
	width float64
}{
	{"Name", 32}, {"Anschrift", 34}, {"Telefon", 22}, {"E-Mail", 28}, {"Standort", 26}, {"Bereich", 26},
	{"Termin, Person", 22}, {"Ankunft", 25}, {"Verlassen", 40}, {"Kontakt", 18},
}

func (p *pdfDoc) contacts(h *Header, recs []Record) {
	header := func() {
		p.newPage("Kontaktliste (" + fmt.Sprint(len(recs)) + " Besuche)")
		p.pdf.SetFont("bold", "", 8)
		x := pdfMargin
		for _, c := range pdfColumns {
			p.pdf.SetXY(x, p.y)
			p.pdf.Cell(nil, c.title)
			x += c.width
		}
		p.y += pdfRow
		p.pdf.SetStrokeColor(0, 0, 0)
		p.pdf.Line(pdfMargin, p.y-0.8, pdfW-pdfMargin, p.y-0.8)
	}
	header()
	for i := range recs {
		r := &recs[i]
		c := contactOf(r)
		cells := make([][]string, len(pdfColumns))
		lines := 1
		for j, text := range pdfCells(h, r, c) {
			cells[j] = p.wrap(text, pdfColumns[j].width-1.5)
			lines = max(lines, len(cells[j]))
		}
		var note []string
		if r.Note != "" {
			// The note on lines of their own below the row.
			label := "Hinweis zum Termin"
			if c.Appointment != "" {
				label += " " + c.Appointment
			}
			note = p.wrap(label+": "+r.Note, pdfW-2*pdfMargin-5.5)
		}
		if p.y+float64(lines+len(note))*pdfRow > pdfH-pdfMargin-pdfFooterGap {
			header()
		}
		p.pdf.SetFont("regular", "", 8)
		x := pdfMargin
		for j, col := range pdfColumns {
			for k, line := range cells[j] {
				p.pdf.SetXY(x, p.y+float64(k)*(pdfRow-1.2))
				p.pdf.Cell(nil, line)
			}
			x += col.width
		}
		p.y += float64(lines-1)*(pdfRow-1.2) + pdfRow
		for _, line := range note {
			p.pdf.SetXY(pdfMargin+4, p.y)
			p.pdf.Cell(nil, line)
			p.y += pdfRow
		}
		p.pdf.SetStrokeColor(220, 220, 220)
		p.pdf.Line(pdfMargin, p.y-0.8, pdfW-pdfMargin, p.y-0.8)
	}
}

// pdfCells are the texts of a record's row of the contact list, one per
// pdfColumns.
func pdfCells(h *Header, r *Record, c *registry.Contact) []string {
	out := departureText(h, r)
	if r.CheckOut == nil {
		out = "noch anwesend"
		if h.MaxStayMinutes > 0 {
			auto := r.CheckIn.Add(time.Duration(h.MaxStayMinutes) * time.Minute)
			out = "noch da, autom. " + auto.In(localZone()).Format("02.01. 15:04")
		}
	} else if r.CheckoutAuto {
		out = germanTime(*r.CheckOut) + " autom."
	}
	var visit []string
	for _, s := range []string{c.Appointment, c.Host, walkInText(c.WalkIn)} {
		if s != "" {
			visit = append(visit, s)
		}
	}
	name := c.FamilyName + ", " + c.GivenName
	if len(r.AlsoIn) > 0 {
		name += " (auch erfasst in: " + strings.Join(r.AlsoIn, ", ") + ")"
	}
	return []string{
		name,
		strings.TrimSpace(c.Street+" "+c.HouseNumber) + ", " + strings.TrimSpace(c.Postcode+" "+c.City),
		c.Phone, c.Email, placeName(h, r), orDash(r.Area), strings.Join(visit, "; "),
		germanTime(r.CheckIn), out, minutesText(r.ContactMinutes),
	}
}
