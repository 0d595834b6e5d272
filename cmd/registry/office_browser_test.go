package main

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/cityhall/registry/registry/browsertest"
	"github.com/cityhall/registry/registry/mail/mailtest"
)

// TestBrowserOffice is a health-office clerk's first case in a real
// browser: add two registries (the city hall and the library) with their
// tokens and trust files, confirm each digest as read on the phone, file
// one case to both, see the requests wait, get an e-mail when the DPOs
// approved, and download the merged workbook, opened in LibreOffice:
// every row names its registry, the area is whole, the person found in
// both is marked, and the timeline spans both sites.
func TestBrowserOffice(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Fatal("soffice not found: install LibreOffice (scripts/test-deps does)")
	}
	w := newOfficeWorld(t)
	smtp := mailtest.Start(t)
	base, _, logs := w.workspace(filepath.Join(w.dir, "workspace"), "--smtp", smtp.URL, "--smtp-ca", smtp.CAFile,
		"--smtp-from", "kontaktverfolgung@gesundheitsamt.example", "--notify", "team@gesundheitsamt.example")
	b := browsertest.Start(t, "")
	ctx, closeTab := b.Tab()
	defer closeTab()
	browsertest.Do(t, ctx, "window", chromedp.EmulateViewport(browsertest.DeskW, browsertest.DeskH))
	downloads := t.TempDir()
	c := chromedp.FromContext(ctx)
	if _, err := cdp.Call(ctx, c.Browser, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}

	browsertest.Act(t, ctx, "open the workspace", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("h1")))
	browsertest.WantText(t, ctx, "Fälle", "Noch keine Fälle")
	browsertest.Screen(t, ctx, "office-start")

	// The registries, each with its token and trust file; the digest is
	// compared on the phone and typed in.
	for _, r := range []*officeRegistry{w.hall, w.lib} {
		token, _ := os.ReadFile(r.officeToken)
		browsertest.Act(t, ctx, "registries", chromedp.Click(`//nav//a[.="Register"]`), chromedp.WaitVisible(chromedp.CSS("#f-name")))
		browsertest.Fill(t, ctx, map[string]string{"f-name": r.name, "f-url": r.url, "f-token": strings.TrimSpace(string(token))}, "f-name", "f-url", "f-token")
		browsertest.Do(t, ctx, "trust file", chromedp.SetUploadFiles(chromedp.CSS("#f-trust"), []string{r.trust}))
		browsertest.Act(t, ctx, "add "+r.name, chromedp.Click(`//button[.="Register hinzufügen"]`), chromedp.WaitVisible(`//p[contains(., "Register hinzugefügt")]`))
	}
	browsertest.WantText(t, ctx, "nicht bestätigt", w.hall.digest, w.lib.digest, "Rathaus Musterstadt (rathaus)")
	browsertest.Screen(t, ctx, "office-registries-unconfirmed")
	// A wrong digest is refused, the right one confirms.
	id := "f-digest-rathaus-musterstadt"
	browsertest.Fill(t, ctx, map[string]string{id: w.lib.digest}, id)
	browsertest.Act(t, ctx, "wrong digest", chromedp.Submit(chromedp.CSS("#"+id)), chromedp.WaitVisible(chromedp.CSS("#errors")))
	browsertest.WantText(t, ctx, "Das ist nicht die Prüfsumme")
	for _, r := range []struct{ id, digest string }{{"rathaus-musterstadt", w.hall.digest}, {"stadtbibliothek", w.lib.digest}} {
		field := "f-digest-" + r.id
		browsertest.Fill(t, ctx, map[string]string{field: strings.ToUpper(r.digest)}, field)
		browsertest.Act(t, ctx, "confirm "+r.id, chromedp.Submit(chromedp.CSS("#"+field)), chromedp.WaitVisible(`//p[contains(., "Prüfsumme bestätigt")]`))
	}
	if strings.Contains(browsertest.BodyText(t, ctx), "nicht bestätigt") {
		t.Errorf("a registry is still unconfirmed")
	}
	browsertest.Screen(t, ctx, "office-registries")

	// One case to both: the whole city hall, the library's reading room.
	browsertest.Act(t, ctx, "new case", chromedp.Click(`//nav//a[.="Neuer Fall"]`), chromedp.WaitVisible(chromedp.CSS("#f-ref")))
	browsertest.Fill(t, ctx, map[string]string{"f-ref": "GA-2026-0900", "f-legal-basis": "§ 25 IfSG", "f-contact": "Frau Beispiel, 0221 555-0"},
		"f-ref", "f-legal-basis", "f-contact")
	browsertest.Eval[bool](t, ctx, `document.getElementById('f-from').value = '2026-11-24T08:00', document.getElementById('f-to').value = '2026-11-24T10:30', true`)
	browsertest.Do(t, ctx, "choose registries", chromedp.Click(`//fieldset[legend[.="Rathaus Musterstadt"]]//label[contains(., "In diesem Register anfragen")]`),
		chromedp.Click(`//fieldset[legend[.="Stadtbibliothek"]]//label[contains(., "In diesem Register anfragen")]`),
		chromedp.Click(`//fieldset[legend[.="Stadtbibliothek"]]//label[contains(., "Lesesaal")]`))
	browsertest.Screen(t, ctx, "office-new-case")
	browsertest.Act(t, ctx, "file the case", chromedp.Click(`//button[.="Fall anlegen und Anfragen stellen"]`), chromedp.WaitVisible(`//p[contains(., "Fall angelegt")]`))
	browsertest.Act(t, ctx, "ask now", chromedp.Click(`//button[.="Jetzt nachfragen"]`), chromedp.WaitVisible(`//p[.="Nachgefragt."]`))
	browsertest.WantText(t, ctx, "wartet auf Freigabe", "Stadtbibliothek", "Lesesaal und Zeitschriftenarchiv im Obergeschoss", "Noch hat kein Register geantwortet")
	browsertest.Screen(t, ctx, "office-case-pending")

	// Both DPOs approve; asked again, the answers are downloaded, the
	// clerk is told on the page and by e-mail.
	w.approve(w.hall)
	w.approve(w.lib)
	browsertest.Act(t, ctx, "ask again", chromedp.Click(`//button[.="Jetzt nachfragen"]`), chromedp.WaitVisible(`//p[.="Nachgefragt."]`))
	if got := browsertest.Eval[int](t, ctx, `document.querySelectorAll('td.status-downloaded').length`); got != 2 {
		t.Fatalf("%d requests downloaded, want 2:\n%s\n%s", got, browsertest.BodyText(t, ctx), logs.String())
	}
	browsertest.Screen(t, ctx, "office-case-answered")
	var all []string
	for _, raw := range smtp.Wait(t, 4) { // filed twice, downloaded twice
		subject, body := mailtest.Decode(t, raw)
		m := subject + "\n" + body
		for _, secret := range []string{"Erika", "Mustermann", "Heidestra", "1234567"} {
			if strings.Contains(m, secret) {
				t.Errorf("a notification holds visitor data (%q):\n%s", secret, m)
			}
		}
		all = append(all, m)
	}
	if text := strings.Join(all, "\n"); !strings.Contains(text, "Kontaktnachverfolgung: GA-2026-0900 – Stadtbibliothek") ||
		!strings.Contains(text, "freigegeben, Ergebnis heruntergeladen") || !strings.Contains(text, base+"/cases/") {
		t.Errorf("the notifications lack the case, the change or the link:\n%s", text)
	}
	browsertest.Act(t, ctx, "start page", chromedp.Click(`//nav//a[.="Fälle"]`), chromedp.WaitVisible(chromedp.CSS(".notices")))
	browsertest.WantText(t, ctx, "Rathaus Musterstadt: GA-2026-0900 – freigegeben, Ergebnis heruntergeladen", "2 von 2 beantwortet")
	browsertest.Screen(t, ctx, "office-start-news")
	browsertest.Act(t, ctx, "back to the case", chromedp.Click(`//a[.="GA-2026-0900"]`), chromedp.WaitVisible(chromedp.CSS("#f-passphrase")))
	caseURL := browsertest.Eval[string](t, ctx, "location.href")

	// A wrong passphrase opens nothing.
	browsertest.Fill(t, ctx, map[string]string{"f-passphrase": "falsch"}, "f-passphrase")
	browsertest.Act(t, ctx, "wrong passphrase", chromedp.Submit(chromedp.CSS("#f-passphrase")), chromedp.WaitVisible(chromedp.CSS("h1")))
	browsertest.WantText(t, ctx, "passphrase", "wrong")
	browsertest.Act(t, ctx, "back", chromedp.Navigate(caseURL), chromedp.WaitVisible(chromedp.CSS("#f-passphrase")))

	// The workbook, opened in LibreOffice.
	browsertest.Fill(t, ctx, map[string]string{"f-passphrase": w.passphrase}, "f-passphrase")
	browsertest.Do(t, ctx, "download the workbook", chromedp.Submit(chromedp.CSS("#f-passphrase")))
	book := waitFile(t, downloads, ".xlsx")
	if filepath.Base(book) != "Fall-GA-2026-0900.xlsx" {
		t.Errorf("downloaded %s, want Fall-GA-2026-0900.xlsx", filepath.Base(book))
	}
	sheets := sheetsOf(t, soffice, book)
	contacts := sheets["Kontakte"]
	if len(contacts) != 5 {
		t.Fatalf("contacts sheet: %d rows, want a header and 4:\n%v", len(contacts), contacts)
	}
	col := map[string]int{}
	for i, h := range contacts[0] {
		col[h] = i
	}
	got := map[string]string{}
	for _, row := range contacts[1:] {
		got[row[col["Vorname"]]+"@"+row[col["Register"]]] = row[col["Bereich"]] + "|" + row[col["Auch erfasst in"]]
	}
	want := map[string]string{
		"Erika@Rathaus Musterstadt": "Bürgerbüro|Stadtbibliothek",
		"Max@Rathaus Musterstadt":   "Standesamt|",
		"Erika@Stadtbibliothek":     "Lesesaal und Zeitschriftenarchiv im Obergeschoss|Rathaus Musterstadt",
		"Lisa@Stadtbibliothek":      "Lesesaal und Zeitschriftenarchiv im Obergeschoss|",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("row %s: area|also in = %q, want %q", k, got[k], v)
		}
	}
	timeline := strings.Join(flatten(sheets["Zeitleiste"]), "\n")
	for _, g := range []string{"Rathaus Musterstadt · Bürgerbüro", "Stadtbibliothek · Lesesaal und Zeitschriftenarchiv im Obergeschoss", "Schmidt, Lisa"} {
		if !strings.Contains(timeline, g) {
			t.Errorf("timeline lacks %q:\n%s", g, timeline)
		}
	}
	cover := strings.Join(flatten(sheets["Fall"]), "\n")
	for _, s := range []string{"GA-2026-0900", "Register: Rathaus Musterstadt", "Register: Stadtbibliothek", "DSB Rathaus Musterstadt", "DSB Stadtbibliothek"} {
		if !strings.Contains(cover, s) {
			t.Errorf("case sheet lacks %q", s)
		}
	}

	// English, and the log that says who opened the case.
	browsertest.Act(t, ctx, "log", chromedp.Navigate(base+"/log?lang=en"), chromedp.WaitVisible(chromedp.CSS("h1")))
	browsertest.WantText(t, ctx, "Workspace log", "case.opened", "Frau Beispiel", "The log is unchanged")
	browsertest.Screen(t, ctx, "office-log-en")
	browsertest.Act(t, ctx, "German again", chromedp.Navigate(base+"/?lang=de"), chromedp.WaitVisible(chromedp.CSS("h1")))

	// A phone-sized screen fits too.
	browsertest.Do(t, ctx, "phone", chromedp.EmulateViewport(browsertest.PhoneW, browsertest.PhoneH))
	browsertest.Act(t, ctx, "case on a phone", chromedp.Click(`//a[.="GA-2026-0900"]`), chromedp.WaitVisible(chromedp.CSS("#f-passphrase")))
	browsertest.Screen(t, ctx, "office-case-phone")
}

// waitFile waits for a finished download with the extension.
func waitFile(t *testing.T, dir, ext string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ext) {
				return filepath.Join(dir, e.Name())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s downloaded into %s", ext, dir)
		}
	}
}

// sheetsOf converts every sheet of a workbook to CSV with LibreOffice and
// returns the rows by sheet name.
func sheetsOf(t *testing.T, soffice, book string) map[string][][]string {
	t.Helper()
	out, profile := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Field 12 of the CSV filter options, -1: every sheet into a file of
	// its own, named BOOK-SHEET.csv.
	cmd := exec.CommandContext(ctx, soffice, "--headless", "--norestore", "-env:UserInstallation=file://"+profile,
		"--convert-to", `csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1`, "--outdir", out, book)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, msg)
	}
	base := strings.TrimSuffix(filepath.Base(book), filepath.Ext(book))
	sheets := map[string][][]string{}
	for _, name := range []string{"Fall", "Kontakte", "Zeitleiste"} {
		f, err := os.Open(filepath.Join(out, base+"-"+name+".csv"))
		if err != nil {
			t.Fatalf("sheet %s: %v", name, err)
		}
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		rows, err := r.ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("sheet %s: %v", name, err)
		}
		var kept [][]string
		for _, row := range rows {
			if strings.Join(row, "") != "" {
				kept = append(kept, row)
			}
		}
		sheets[name] = kept
	}
	return sheets
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, " "))
	}
	return out
}
