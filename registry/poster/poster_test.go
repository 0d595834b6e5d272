package poster_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/poster"
)

// tool returns the path of a program the test drives for real. It fails
// (never skips) when the program is missing: scripts/test-deps installs
// it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: install Debian's %s (scripts/test-deps does)", name, pkg)
	}
	return p
}

// TestPosterQRDecodes renders the poster with poppler and decodes its QR
// code with zbar, a decoder of its own: it must give back the check-in
// URL, and the page must hold the site's name, the area, both languages'
// instructions, the privacy summary and the paper-form note.
func TestPosterQRDecodes(t *testing.T) {
	pdftoppm, zbarimg, pdftotext := tool(t, "pdftoppm", "poppler-utils"), tool(t, "zbarimg", "zbar-tools"), tool(t, "pdftotext", "poppler-utils")
	site := &registry.Site{Code: "rathaus", Name: "Rathaus Musterstadt – Bürgerbüro", Address: "Marktplatz 1, 12345 Musterstadt",
		Controller: "Stadt Musterstadt, Der Bürgermeister, Marktplatz 1", DPOContact: "Frau Łukasiewicz, datenschutz@musterstadt.example"}
	url := "https://besuch.musterstadt.example/checkin/rathaus?area=Standesamt+%C3%96ffnung"
	p := &poster.Poster{Site: site, Area: "Standesamt Öffnung", URL: url, RetentionDays: 28, Created: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pdf := filepath.Join(dir, "poster.pdf")
	if err := os.WriteFile(pdf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pdftoppm, "-r", "150", "-png", "-singlefile", pdf, filepath.Join(dir, "poster")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	out, err := exec.Command(zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", filepath.Join(dir, "poster.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != url {
		t.Errorf("QR code decodes to %q, want %q", got, url)
	}
	text, err := exec.Command(pdftotext, "-layout", pdf, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, text)
	}
	info, err := exec.Command("pdfinfo", pdf).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo: %v\n%s", err, info)
	}
	if !strings.Contains(string(info), "Pages:           1") || !strings.Contains(string(info), "(A4)") {
		t.Errorf("pdfinfo: want one A4 page:\n%s", info)
	}
	flat := strings.Join(strings.Fields(string(text)), " ")
	for _, want := range []string{site.Name, site.Address, "Standesamt Öffnung", "QR-Code mit der Kamera", "Scan the QR code",
		"Papierformular", "paper form", "nach 28 Tagen gelöscht", "Łukasiewicz", site.Controller} {
		if !strings.Contains(flat, want) {
			t.Errorf("the poster's text lacks %q:\n%s", want, flat)
		}
	}
	if dst := os.Getenv("REGISTRY_SCREENSHOTS"); dst != "" {
		b, _ := os.ReadFile(filepath.Join(dir, "poster.png"))
		os.WriteFile(filepath.Join(dst, "poster.png"), b, 0o644)
	}
}

// TestQRSVG checks the slip's SVG: a square image with the label escaped.
func TestQRSVG(t *testing.T) {
	svg, err := poster.QRSVG("https://x.example/checkin/a/out#t", `Code "K7QD2M" <b>`)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if !strings.HasPrefix(s, "<svg ") || !strings.Contains(s, `aria-label="Code &#34;K7QD2M&#34; &lt;b&gt;"`) || strings.Contains(s, "<b>") {
		t.Errorf("SVG = %.200s", s)
	}
}
