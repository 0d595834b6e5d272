package export

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// convertFile has LibreOffice open a file with its default import (as a
// tracer's double click does) and save it as flat ODS.
func convertFile(t *testing.T, soffice, path string) string {
	t.Helper()
	out, profile := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, soffice, "--headless", "--norestore", "-env:UserInstallation=file://"+profile,
		"--convert-to", "fods", "--outdir", out, path)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, msg)
	}
	return filepath.Join(out, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".fods")
}

func TestXLSXInLibreOffice(t *testing.T) {
	soffice := sofficePath(t)
	b := corpusBundle()
	b.Header.From, b.Header.To = b.Records[0].CheckIn.Add(-time.Hour), b.Records[0].CheckIn.Add(time.Hour)
	b.Header.Sites, b.Header.SiteNames = []string{"rathaus"}, []SiteLabel{{Code: "rathaus", Name: "Rathaus Musterstadt"}}
	b.Header.MaxStayMinutes = 720
	b.Header.Count = len(b.Records)
	b.Header.Approvals = []HeaderApproval{{Name: "Anna DSB", SignedAt: b.Header.From}}
	b.Digest = strings.Repeat("ab", 32)
	// An index scope: the first row is the index case, the others contacts.
	b.Header.Index, b.Header.IndexVisits, b.Header.Tolerance = []string{"K7QD2M"}, []string{b.Records[0].VisitID}, 5
	for i := range b.Records {
		b.Records[i].Role = RoleContact
	}
	b.Records[0].Role = RoleIndex
	var buf bytes.Buffer
	if err := WriteXLSX(&buf, b, b.Header.To, t.TempDir()); err != nil {
		t.Fatalf("WriteXLSX: %v", err)
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "kontakte.xlsx"), buf.Bytes())
	sheets := readSheets(t, convertFile(t, soffice, path))
	for name, rows := range sheets {
		if n := formulas(rows); n != 0 {
			t.Errorf("sheet %s: %d formula cells, want 0", name, n)
		}
	}
	rows := sheets[sheetContacts]
	if len(rows) < 1+len(b.Records) {
		t.Fatalf("contact sheet: %d rows, want %d", len(rows), 1+len(b.Records))
	}
	if got := cellAt(rows[0], 0).text; got != "Nachname" {
		t.Errorf("first header cell = %q", got)
	}
	role := len(xlsxColumns) - 1
	if h, first, second := cellAt(rows[0], role).text, cellAt(rows[1], role).text, cellAt(rows[2], role).text; h != "Rolle (Indexfall)" || first != "Indexfall" || second != "Kontakt" {
		t.Errorf("role column: %q, rows %q and %q; want the index case and a contact", h, first, second)
	}
	marked := 0
	for _, row := range sheets[sheetTimeline] {
		if strings.HasPrefix(cellAt(row, 0).text, "INDEXFALL: ") {
			marked++
		}
	}
	if marked != 1 {
		t.Errorf("the timeline marks %d rows as the index case, want 1", marked)
	}
	personal := []int{0, 1, 2, 3, 4, 5, 6, 7, 9, 14, 15}
	for i, p := range formulaCorpus {
		row := rows[1+i]
		for _, col := range personal {
			if c, want := cellAt(row, col), lineEnds(clean(p)); c.valueType != "string" || lineEnds(c.text) != want {
				t.Errorf("row %d col %q: %s %q, want the text %q exactly", 1+i, xlsxColumns[col].title, c.valueType, c.text, want)
			}
		}
		if c := cellAt(row, 10); c.valueType != "date" || c.text != "05.03.2021 14:30" {
			t.Errorf("row %d arrival: %s %q, want date 05.03.2021 14:30 (German time)", 1+i, c.valueType, c.text)
		}
		if c := cellAt(row, 13); c.valueType != "float" || c.text != "5" {
			t.Errorf("row %d minutes: %s %q, want the number 5", 1+i, c.valueType, c.text)
		}
		if c := cellAt(row, 12); !strings.HasPrefix(c.text, "noch anwesend, automatische Abmeldung spätestens 06.03.2021 02:30") {
			t.Errorf("row %d open visit: %q", 1+i, c.text)
		}
	}
	for i, ph := range phoneCorpus {
		row := rows[1+len(formulaCorpus)+i]
		for col, want := range map[int]string{6: ph, 4: "01067", 3: "12-14"} {
			if c := cellAt(row, col); c.valueType != "string" || c.text != want {
				t.Errorf("phone row %d col %q: %s %q, want text %q", i, xlsxColumns[col].title, c.valueType, c.text, want)
			}
		}
		if c := cellAt(row, 11); c.valueType != "date" || c.text != "05.03.2021 15:30" {
			t.Errorf("phone row %d departure: %s %q", i, c.valueType, c.text)
		}
	}
	cover := sheets[sheetCase]
	var all []string
	for _, r := range cover {
		for _, c := range r {
			all = append(all, c.text)
		}
	}
	joined := strings.Join(all, "|")
	for _, want := range []string{"Rathaus Musterstadt (rathaus)", "Anna DSB am 05.03.2021 13:30", "05.03.2021 13:30 bis 05.03.2021 15:30", strings.Repeat("ab", 32)} {
		if !strings.Contains(joined, want) {
			t.Errorf("cover sheet lacks %q: %s", want, joined)
		}
	}
	if tl := sheets[sheetTimeline]; len(tl) < 3+len(b.Records) {
		t.Errorf("timeline: %d rows, want a row per visit and group headers", len(tl))
	}
}
