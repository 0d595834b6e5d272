package poster

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/cityhall/registry/registry"
)

// Poster is what an entrance poster shows.
type Poster struct {
	Site *registry.Site
	// Area is the room or department the poster hangs at ("" for the
	// whole site); its check-ins are registered for that area.
	Area string
	// URL is the check-in URL the QR code holds (the public form, with
	// ?area= for an area's poster).
	URL string
	// RetentionDays is the statutory period, for the privacy summary.
	RetentionDays int
	// Created is the poster's creation date in the PDF's metadata.
	Created time.Time
}

// A4 in millimetres and the poster's layout.
const (
	pageW, pageH = 210.0, 297.0
	margin       = 18.0
	qrSize       = 105.0
	textW        = pageW - 2*margin
)

// Write draws the poster as a one-page A4 PDF to w.
func (p *Poster) Write(w io.Writer) error {
	if p.Site == nil || p.URL == "" {
		return fmt.Errorf("poster: site and URL are required")
	}
	m, err := QRMatrix(p.URL)
	if err != nil {
		return err
	}
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4, Unit: gopdf.UnitMM})
	pdf.SetInfo(gopdf.PdfInfo{Title: "Anmeldung / Check-in: " + p.Site.Name, Creator: "registry", Producer: "registry", CreationDate: p.Created})
	if err := pdf.AddTTFFontData("regular", goregular.TTF); err != nil {
		return fmt.Errorf("poster: font: %w", err)
	}
	if err := pdf.AddTTFFontData("bold", gobold.TTF); err != nil {
		return fmt.Errorf("poster: font: %w", err)
	}
	pdf.AddPage()
	d := &drawer{pdf: pdf, y: margin}

	d.text("bold", 26, p.Site.Name, textW)
	if p.Site.Address != "" {
		d.text("regular", 13, p.Site.Address, textW)
	}
	if p.Area != "" {
		d.gap(2)
		d.text("bold", 16, "Bereich / Area: "+p.Area, textW)
	}
	d.gap(5)
	d.text("bold", 20, "Besucher-Anmeldung · Visitor check-in", textW)
	d.gap(3)

	// The QR code, centred, drawn as filled squares (vector: sharp at any
	// printer resolution).
	x0, y0 := (pageW-qrSize)/2, d.y
	module := qrSize / float64(len(m)+2*quietZone)
	pdf.SetFillColor(0, 0, 0)
	for y, row := range m {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			run := x
			for run < len(row) && row[run] {
				run++
			}
			pdf.RectFromUpperLeftWithStyle(x0+float64(x+quietZone)*module, y0+float64(y+quietZone)*module,
				float64(run-x)*module+0.01, module+0.01, "F")
			x = run
		}
	}
	d.y = y0 + qrSize + 1
	d.centred("regular", 10, p.URL)
	d.gap(4)

	d.text("bold", 13, "So geht's:", textW)
	d.text("regular", 12, "1. QR-Code mit der Kamera Ihres Telefons scannen.  2. Kontaktdaten eintragen und „Anmelden“ tippen.  3. Beim Gehen den QR-Code erneut scannen und „Abmelden“ tippen.", textW)
	d.gap(1)
	d.text("bold", 13, "How it works:", textW)
	d.text("regular", 12, "1. Scan the QR code with your phone's camera.  2. Enter your contact details and tap \"Check in\".  3. When you leave, scan the code again and tap \"Check out\".", textW)
	d.gap(3)
	if p.Site.RequiresAppointment {
		d.text("bold", 13, "Nur mit Termin: Bitte halten Sie Ihren Termin-Code bereit (zum Beispiel T-4711).", textW)
		d.text("regular", 12, "By appointment only: please have your appointment code ready (for example T-4711).", textW)
	}
	d.text("regular", 11, "Das Formular gibt es auch auf Türkçe, Українська, Русский, Polski, English und Arabisch (Arabic).", textW)
	d.text("bold", 13, "Ohne Telefon? An der Pforte erhalten Sie ein Papierformular.", textW)
	d.text("regular", 12, "No phone? Ask at the reception desk for a paper form.", textW)
	d.gap(4)

	privacy := fmt.Sprintf("Datenschutz: Name, Anschrift, Telefon (E-Mail freiwillig), wen Sie besuchen und die Zeit Ihres Besuchs werden erfasst, damit das Gesundheitsamt Infektionsketten nachverfolgen kann, sofort für das Gesundheitsamt verschlüsselt, nur auf dessen Anforderung herausgegeben und nach %d Tagen gelöscht. Unverschlüsselt bleiben nur Ort, Raum und Zeiten.", p.RetentionDays)
	d.text("regular", 9.5, privacy, textW)
	if p.Site.LegalBasis != "" {
		d.text("regular", 9.5, "Rechtsgrundlage / Legal basis: "+p.Site.LegalBasis, textW)
	}
	d.text("regular", 9.5, fmt.Sprintf("Privacy: your contact details are encrypted at once for the health office, handed over only at its request and deleted after %d days.", p.RetentionDays), textW)
	if p.Site.Controller != "" {
		d.text("regular", 9.5, "Verantwortlich / Controller: "+p.Site.Controller, textW)
	}
	if p.Site.DPOContact != "" {
		d.text("regular", 9.5, "Datenschutzbeauftragte / Data protection officer: "+p.Site.DPOContact, textW)
	}
	if d.y > pageH-margin/2 {
		return fmt.Errorf("poster: the texts of site %s do not fit on one page; shorten the controller or DPO text", p.Site.Code)
	}
	return pdf.Write(w)
}

// drawer writes lines top to bottom.
type drawer struct {
	pdf *gopdf.GoPdf
	y   float64
}

func (d *drawer) gap(mm float64) { d.y += mm }

// text writes s word-wrapped to width at the left margin.
func (d *drawer) text(font string, size float64, s string, width float64) {
	d.pdf.SetFont(font, "", size)
	lines, err := d.pdf.SplitTextWithWordWrap(s, width)
	if err != nil {
		lines = []string{s}
	}
	lh := size * 0.3528 * 1.3 // points to mm, with leading
	for _, l := range lines {
		d.pdf.SetXY(margin, d.y)
		d.pdf.Cell(nil, strings.TrimSpace(l))
		d.y += lh
	}
}

// centred writes one line centred on the page.
func (d *drawer) centred(font string, size float64, s string) {
	d.pdf.SetFont(font, "", size)
	w, err := d.pdf.MeasureTextWidth(s)
	if err != nil {
		w = 0
	}
	d.pdf.SetXY(max(margin, (pageW-w)/2), d.y)
	d.pdf.Cell(nil, s)
	d.y += size * 0.3528 * 1.3
}
