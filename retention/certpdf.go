package retention

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/cityhall/registry/registry"
)

// WriteCertificatePDF writes the certificate for people: the month, the
// totals, a row per day and the statement, with the SHA-256 of the
// signed JSON file (digest), which 'registry certificate verify' prints
// too: the PDF is the readable copy, the JSON file the signed record.
func WriteCertificatePDF(w io.Writer, c *Certificate, digest, registryName string) error {
	const pageW, pageH, margin = 210.0, 297.0, 15.0
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: gopdf.Rect{W: pageW, H: pageH}, Unit: gopdf.UnitMM})
	pdf.SetInfo(gopdf.PdfInfo{Title: "Löschbescheinigung " + c.Month, Creator: "registry", Producer: "registry"})
	if err := pdf.AddTTFFontData("regular", goregular.TTF); err != nil {
		return err
	}
	if err := pdf.AddTTFFontData("bold", gobold.TTF); err != nil {
		return err
	}
	local := func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.In(registry.LocalZone).Format("02.01.2006 15:04")
	}
	month, _ := time.Parse("2006-01", c.Month)
	y := margin
	text := func(font string, size float64, x float64, s string) {
		pdf.SetFont(font, "", size)
		pdf.SetXY(x, y)
		pdf.Cell(nil, s)
	}
	wrap := func(font string, size float64, s string, width float64) {
		pdf.SetFont(font, "", size)
		lines, err := pdf.SplitTextWithWordWrap(s, width)
		if err != nil {
			lines = []string{s}
		}
		for _, l := range lines {
			text(font, size, margin, strings.TrimSpace(l))
			y += size * 0.45
		}
	}
	page := 0
	newPage := func() {
		pdf.AddPage()
		page++
		y = margin
		text("regular", 8, margin, fmt.Sprintf("Löschbescheinigung %s · %s · Seite %d", germanMonth(month), registryName, page))
		y += 8
	}
	newPage()
	text("bold", 16, margin, "Löschbescheinigung "+germanMonth(month))
	y += 10
	rows := [][2]string{
		{"Register", registryName},
		{"Instanzschlüssel", c.Instance},
		{"Ausgestellt", local(&c.IssuedAt)},
		{"Aufbewahrungsfrist", strconv.Itoa(c.Retention) + " Tage"},
		{"Besuche registriert", strconv.Itoa(c.Registered)},
		{"Besuche gelöscht", strconv.Itoa(c.Deleted)},
		{"Protokollstand", fmt.Sprintf("Eintrag %d, %s…", c.AuditSeq, c.AuditHash[:min(16, len(c.AuditHash))])},
	}
	for _, r := range rows {
		text("bold", 10, margin, r[0])
		text("regular", 10, margin+50, r[1])
		y += 5.5
	}
	y += 4
	cols := []struct {
		title string
		x     float64
	}{{"Tag (UTC)", margin}, {"registriert", margin + 24}, {"gelöscht", margin + 46}, {"gespeichert", margin + 64}, {"gelöscht bis", margin + 86}, {"Schlüssel vernichtet", margin + 116}, {"Abrufe (Aktenzeichen)", margin + 150}}
	header := func() {
		for _, c := range cols {
			text("bold", 8, c.x, c.title)
		}
		y += 5
		pdf.SetLineWidth(0.2)
		pdf.Line(margin, y-1, pageW-margin, y-1)
	}
	header()
	for _, d := range c.Days {
		if y > pageH-margin-20 {
			newPage()
			header()
		}
		key := local(d.KeyDestroyed)
		if d.NoKey {
			key = "kein Schlüssel (keine Daten)"
		}
		exports := strings.Join(d.Exports, ", ")
		if exports == "" {
			exports = "–"
		}
		vals := []string{string(d.Day), strconv.Itoa(d.Registered), strconv.Itoa(d.Deleted), strconv.FormatInt(d.Remaining, 10), local(d.DeletedBy), key, exports}
		for i, c := range cols {
			text("regular", 8, c.x, vals[i])
		}
		y += 5
	}
	y += 6
	if y > pageH-margin-50 {
		newPage()
	}
	text("bold", 11, margin, "Erklärung")
	y += 6
	wrap("regular", 10, c.Statement, pageW-2*margin)
	y += 4
	wrap("regular", 9, "Diese Bescheinigung ist die lesbare Fassung der signierten Datei mit der SHA-256-Prüfsumme "+digest+
		". Prüfen: registry certificate verify DATEI.json --trust DATEI.trust; der Befehl zeigt dieselbe Prüfsumme.", pageW-2*margin)
	return pdf.Write(w)
}

// germanMonth is "November 2026".
func germanMonth(t time.Time) string {
	names := []string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"}
	return names[t.Month()-1] + " " + strconv.Itoa(t.Year())
}
