package export

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// twoRegistries returns the opened bundles of one case from two
// registries (two instances, two key stores, one health office): the city
// hall with Erika and Max, the library with Erika again (the same person:
// her phone number written another way) and Lisa, in an area whose name
// is long.
func twoRegistries(t *testing.T) []Part {
	t.Helper()
	hall, lib := newFixture(t), newFixture(t)
	lib.to, lib.office, lib.sealer = hall.to, hall.office, hall.sealer
	in := time.Date(2021, 3, 5, 13, 30, 0, 0, time.UTC)
	from, to := in.Add(-time.Hour), in.Add(2*time.Hour)
	open := func(f *fixture, sites []string, visits ...*registry.Visit) *Bundle {
		req := testRequest(from, to, sites...)
		b, err := Read(bytes.NewReader(f.write(t, req, visits)), f.office, f.trust)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		return b
	}
	erika1, _ := hall.visitWith(t, "rathaus", "Bürgerbüro", in, ptr(in.Add(45*time.Minute)), "Erika", "+49 221 1234567")
	max1, _ := hall.visitWith(t, "rathaus", "Standesamt", in.Add(10*time.Minute), nil, "Max", "+49 221 7654321")
	erika2, _ := lib.visitWith(t, "bibliothek", "Lesesaal und Zeitschriftenarchiv im Obergeschoss", in.Add(time.Hour), ptr(in.Add(90*time.Minute)), "Erika", "0221 1234567")
	lisa, _ := lib.visitWith(t, "bibliothek", "Lesesaal und Zeitschriftenarchiv im Obergeschoss", in.Add(70*time.Minute), ptr(in.Add(80*time.Minute)), "Lisa", "+49 2291 55555")
	return []Part{
		{Registry: "Rathaus Musterstadt", Bundle: open(hall, []string{"rathaus"}, erika1, max1)},
		{Registry: "Stadtbibliothek", Bundle: open(lib, []string{"bibliothek"}, lisa, erika2)},
	}
}

func testCase(parts []Part) CaseInfo {
	h := parts[0].Bundle.Header
	return CaseInfo{Ref: "GA-2021/0815", Office: h.Office, LegalBasis: h.LegalBasis, From: h.From, To: h.To}
}

// TestMerge: one case of two registries is one source: every record names
// its registry and site, the same person in both is marked in both, not
// merged, and the header sums up each bundle.
func TestMerge(t *testing.T) {
	parts := twoRegistries(t)
	src := Merge(testCase(parts), parts)
	h := src.BundleHeader()
	if h.Count != 4 || len(h.Parts) != 2 || h.Duplicates != 2 || h.CaseRef != "GA-2021/0815" {
		t.Fatalf("merged header: count %d, parts %d, duplicates %d, case %q", h.Count, len(h.Parts), h.Duplicates, h.CaseRef)
	}
	for i, p := range h.Parts {
		if p.Registry != parts[i].Registry || p.Digest != parts[i].Bundle.Digest || p.Count != 2 || len(p.Approvals) != 1 {
			t.Errorf("part %d = %+v", i, p)
		}
	}
	var got []string
	for r, err := range src.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Contact.GivenName+"@"+r.Registry+"/"+r.SiteLabel+"/"+strings.Join(r.AlsoIn, ","))
	}
	want := []string{
		"Erika@Rathaus Musterstadt/rathaus/Stadtbibliothek",
		"Max@Rathaus Musterstadt/rathaus/",
		"Erika@Stadtbibliothek/bibliothek/Rathaus Musterstadt",
		"Lisa@Stadtbibliothek/bibliothek/",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("merged records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMergedOutputs: the case's workbook, opened in LibreOffice, names
// the registry of every row, keeps long area names whole, marks the
// person found twice, and sums up both bundles on its case sheet; the PDF
// and the CSV say the same.
func TestMergedOutputs(t *testing.T) {
	soffice := sofficePath(t)
	parts := twoRegistries(t)
	src := Merge(testCase(parts), parts)
	var buf bytes.Buffer
	if err := WriteXLSX(&buf, src, testNow, ""); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "fall.xlsx"), buf.Bytes())
	sheets := readSheets(t, convertFile(t, soffice, path))
	var rows [][]odsCell
	for _, r := range sheets[sheetContacts] {
		if cellAt(r, 0).text != "" {
			rows = append(rows, r)
		}
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c.text] = i
	}
	for _, name := range []string{"Register", "Standort", "Bereich", "Auch erfasst in"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("contact sheet lacks the column %q: %v", name, rows[0])
		}
	}
	if len(rows) != 5 {
		t.Fatalf("contact sheet: %d rows, want header and 4", len(rows))
	}
	for _, row := range rows[1:] {
		name, reg := cellAt(row, col["Vorname"]).text, cellAt(row, col["Register"]).text
		area := cellAt(row, col["Bereich"]).text
		if reg == "Stadtbibliothek" && area != "Lesesaal und Zeitschriftenarchiv im Obergeschoss" {
			t.Errorf("area of %s cut: %q", name, area)
		}
		also := cellAt(row, col["Auch erfasst in"]).text
		if (name == "Erika") != (also != "") {
			t.Errorf("%s (%s): also in %q", name, reg, also)
		}
	}
	var cover []string
	for _, r := range sheets[sheetCase] {
		for _, c := range r {
			cover = append(cover, c.text)
		}
	}
	text := strings.Join(cover, "\n")
	for _, want := range []string{"Register: Rathaus Musterstadt", "Register: Stadtbibliothek", parts[0].Bundle.Digest, parts[1].Bundle.Digest,
		"Anna DSB", "Datensätze gesamt", "2 Datensätze von Personen, die in mehreren Registern erfasst sind"} {
		if !strings.Contains(text, want) {
			t.Errorf("case sheet lacks %q:\n%s", want, text)
		}
	}
	var timeline []string
	for _, r := range sheets[sheetTimeline] {
		if len(r) > 0 {
			timeline = append(timeline, cellAt(r, 0).text)
		}
	}
	if tl := strings.Join(timeline, "\n"); !strings.Contains(tl, "Rathaus Musterstadt · rathaus · Bürgerbüro") ||
		!strings.Contains(tl, "Stadtbibliothek · bibliothek · Lesesaal und Zeitschriftenarchiv im Obergeschoss") {
		t.Errorf("timeline groups:\n%s", tl)
	}

	// The PDF, as pdftotext reads it.
	buf.Reset()
	if err := WritePDF(&buf, src, testNow); err != nil {
		t.Fatal(err)
	}
	pdfPath := writeFile(t, filepath.Join(t.TempDir(), "fall.pdf"), buf.Bytes())
	out, err := exec.Command(popplerPath(t, "pdftotext"), pdfPath, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	flat := strings.Join(strings.Fields(string(out)), " ")
	// A wrapped cell's lines interleave with its neighbours' in the text:
	// every word of the long area is there.
	for _, want := range []string{"Register: Stadtbibliothek", "auch erfasst in: Rathaus Musterstadt", "Lesesaal", "Zeitschriftenarchiv", "Obergeschoss"} {
		if !strings.Contains(flat, want) {
			t.Errorf("PDF lacks %q:\n%s", want, out)
		}
	}

	buf.Reset()
	if err := WriteCSV(&buf, src, ';'); err != nil {
		t.Fatal(err)
	}
	if csv := buf.String(); !strings.Contains(csv, ";Register;Auch erfasst in") || !strings.Contains(csv, ";Stadtbibliothek;Rathaus Musterstadt") {
		t.Errorf("CSV lacks the registry columns:\n%s", csv)
	}
}
