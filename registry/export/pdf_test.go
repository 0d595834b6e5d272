package export

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// popplerPath returns a poppler tool, failing the test when it is missing
// unless REGISTRY_TEST_POPPLER=skip.
func popplerPath(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("REGISTRY_TEST_POPPLER") == "skip" {
		t.Skipf("%s not found and REGISTRY_TEST_POPPLER=skip", name)
	}
	t.Fatalf("%s not found: install poppler-utils or set REGISTRY_TEST_POPPLER=skip", name)
	return ""
}

// pdfNote is a note for the health office longer than a line.
const pdfNote = "Begleitperson Frau Ösen, Tel. 0171 5550123 / kommt mit Rollstuhl, bitte Aufzug freihalten; spricht wenig Deutsch, " +
	"Dolmetscherin Frau Yilmaz begleitet sie, erreichbar unter 0171 5550199, bitte vor dem Termin kurz anrufen"

// pdfBundle is a small case: three visitors at two areas, one still there.
func pdfBundle() *Bundle {
	in := time.Date(2021, 3, 5, 13, 30, 0, 0, time.UTC)
	contact := func(given, family string) *registry.Contact {
		return &registry.Contact{GivenName: given, FamilyName: family, Street: "Am Markt", HouseNumber: "1", Postcode: "59872",
			City: "Meschede", Phone: "+4929312010", Email: "x@example.org"}
	}
	b := &Bundle{Header: Header{Format: Format, RequestID: registry.NewID(), CaseRef: "GA-2021/0815", Office: "Gesundheitsamt Hochsauerlandkreis",
		LegalBasis: "§ 25 IfSG", From: in, To: in.Add(2 * time.Hour), Sites: []string{"rathaus"},
		SiteNames: []SiteLabel{{Code: "rathaus", Name: "Rathaus Meschede"}}, MaxStayMinutes: 720, Count: 3,
		CreatedAt: in.Add(3 * time.Hour), Approvals: []HeaderApproval{{Name: "Anna DSB", SignedAt: in.Add(150 * time.Minute)}}},
		Digest: strings.Repeat("cd", 32)}
	b.Records = []Record{
		{VisitID: registry.NewID(), Site: "rathaus", Area: "Bürgerbüro", CheckIn: in.Add(-30 * time.Minute), CheckOut: ptr(in.Add(30 * time.Minute)), ContactMinutes: 30, Contact: contact("Zoë", "Müller-Lüdenscheidt"),
			Note: pdfNote},
		{VisitID: registry.NewID(), Site: "rathaus", Area: "Bürgerbüro", CheckIn: in.Add(20 * time.Minute), CheckOut: ptr(in.Add(21 * time.Minute)), ContactMinutes: 1, Contact: contact("Jürgen", "Ölmann")},
		{VisitID: registry.NewID(), Site: "rathaus", Area: "Standesamt", CheckIn: in.Add(time.Hour), ContactMinutes: 60, Contact: contact("Ἀλέξανδρος 李", "Ngô")},
	}
	b.Records[0].Contact.Appointment = "T-4711"
	return b
}

// TestPDF renders the PDF with poppler: pages, text and a picture.
func TestPDF(t *testing.T) {
	pdftotext, pdftoppm := popplerPath(t, "pdftotext"), popplerPath(t, "pdftoppm")
	b := pdfBundle()
	var buf bytes.Buffer
	if err := WritePDF(&buf, b, b.Header.CreatedAt.Add(time.Hour)); err != nil {
		t.Fatalf("WritePDF: %v", err)
	}
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "kontakte.pdf"), buf.Bytes())
	out, err := exec.Command(pdftotext, "-layout", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	text := string(out)
	if pages := strings.Count(text, "\f"); pages != 3 {
		t.Errorf("pages = %d, want 3 (cover, timeline, list)", pages)
	}
	for _, want := range []string{"GA-2021/0815", "Rathaus Meschede (rathaus)", "Anna DSB", "05.03.2021 14:30 bis 05.03.2021 16:30",
		"Müller-Lüdenscheidt, Zoë", "Ölmann, Jürgen", "1 Minute", "30 Minuten", "noch da, autom. 06.03. 03:30",
		"+4929312010", "Seite 3", strings.Repeat("cd", 32)[:40], "Hinweis zum Termin T-4711: " + pdfNote} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	if !strings.Contains(text, "Ngô") || !strings.Contains(text, "?") {
		t.Errorf("PDF text: the name in a script the font lacks should show as ?: %s", text)
	}
	png := filepath.Join(dir, "page")
	if msg, err := exec.Command(pdftoppm, "-png", "-r", "50", path, png).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, msg)
	}
	if shots := os.Getenv("REGISTRY_SCREENSHOTS"); shots != "" {
		// Examples for the README: the PDF's pages, and the workbook.
		exec.Command(pdftoppm, "-png", "-r", "60", path, filepath.Join(shots, "healthoffice-pdf")).Run()
		os.WriteFile(filepath.Join(shots, "healthoffice-example.pdf"), buf.Bytes(), 0o644)
		var x bytes.Buffer
		if err := WriteXLSX(&x, b, b.Header.CreatedAt.Add(time.Hour), t.TempDir()); err == nil {
			os.WriteFile(filepath.Join(shots, "healthoffice-example.xlsx"), x.Bytes(), 0o644)
		}
	}
	for _, n := range []string{"page-1.png", "page-2.png", "page-3.png"} {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Size() < 1000 {
			t.Errorf("rendered %s: %v", n, err)
		}
	}
}

func TestPDFRefusesTooMany(t *testing.T) {
	b := pdfBundle()
	b.Header.Count = MaxPDFRecords + 1
	if err := WritePDF(&bytes.Buffer{}, b, time.Now()); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("WritePDF(%d records) = %v, want EINVALID", b.Header.Count, err)
	}
}
