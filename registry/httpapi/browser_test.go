package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/browsertest"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/retention"
)

// The browser tests drive the desk's pages and the visitors' pages in a
// real headless Chromium (Debian's chromium, which scripts/test-deps
// installs; a missing browser fails the test, it never skips). They use
// the keyboard where staff would, check the screens at a desk size and a
// phone size (no horizontal scrolling, every screenshot rendered), and
// with REGISTRY_SCREENSHOTS=DIR save the screenshots there.

// Screen sizes: a desk PC and a phone.
const (
	deskW, deskH   = browsertest.DeskW, browsertest.DeskH
	phoneW, phoneH = browsertest.PhoneW, browsertest.PhoneH
)

// The helpers of browsertest under the names these tests use.
type browser = browsertest.Browser

func startBrowser(t *testing.T, profile string) *browser { return browsertest.Start(t, profile) }

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Do(t, ctx, what, steps...)
}

func act(t *testing.T, ctx context.Context, what string, action chromedp.Action[chromedp.Void], steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Act(t, ctx, what, action, steps...)
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return browsertest.Eval[T](t, ctx, expr)
}

func bodyText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.BodyText(t, ctx)
}

func wantText(t *testing.T, ctx context.Context, texts ...string) {
	t.Helper()
	browsertest.WantText(t, ctx, texts...)
}

func screen(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	return browsertest.Screen(t, ctx, name)
}

func focused(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Focused(t, ctx)
}

// browserSite is the site of the browser tests: areas with capacities,
// opening hours, self check-in and the full notice.
func browserSite() *registry.Site {
	return &registry.Site{
		Code: "rathaus", Name: "Rathaus Musterstadt", Address: "Marktplatz 1, 12345 Musterstadt",
		Areas:    []registry.Area{{Name: "Bürgerbüro", Capacity: 2}, {Name: "Standesamt"}},
		Capacity: 4, Opens: "08:00", Closes: "18:00", SelfCheckin: true, FullNotice: true,
		Controller: "Stadt Musterstadt, Der Bürgermeister", DPOContact: "datenschutz@musterstadt.example",
	}
}

// browserServer is a SQLite server with the browser site and a desk
// account that must change its one-time password.
func browserServer(t *testing.T) (*testServer, string) {
	t.Helper()
	s, _ := newSQLiteServer(t, serverOptions{})
	s.PutSite(t, browserSite())
	const pw = "einmal-passwort-2026"
	u := &registry.User{Login: "pforte", Name: "Maria Pforte", Role: registry.UserDesk, Sites: []string{"rathaus"},
		PasswordHash: crypto.HashPassword(pw), MustChange: true}
	if err := s.Store.CreateUser(context.Background(), "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	return s, pw
}

func fill(t *testing.T, ctx context.Context, values map[string]string, order ...string) {
	t.Helper()
	browsertest.Fill(t, ctx, values, order...)
}

var visitor = map[string]string{
	"f-given_name": "Erika", "f-family_name": "Mustermann", "f-street": "Heidestraße", "f-house_number": "17",
	"f-postcode": "51147", "f-city": "Köln", "f-phone": "+49 221 1234567", "f-host": "Frau Amt",
}

var visitorOrder = []string{"f-given_name", "f-family_name", "f-street", "f-house_number", "f-postcode", "f-city", "f-phone", "f-host"}

// openVisits returns the open visits of rathaus in the store.
func openVisits(t *testing.T, s *testServer) []*registry.Visit {
	t.Helper()
	vs, err := s.Store.OpenVisits(context.Background(), "rathaus", s.Clock.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestBrowserDesk is the Pforte's day in a real browser: sign in by
// keyboard and change the one-time password, register a visitor with a
// companion (every error at once, focus on the first), print slips, see
// them present with the occupancy against the capacities, check one out
// by typing its code and the other by scanning its slip, type in a paper
// form, check out a group, and find everyone checked out at closing
// time.
func TestBrowserDesk(t *testing.T) {
	s, pw := browserServer(t)
	b := startBrowser(t, "")
	ctx := b.Ctx
	do(t, ctx, "desk size", chromedp.EmulateViewport(deskW, deskH))

	// Sign in with the keyboard alone: the login field has the focus.
	do(t, ctx, "open the desk", chromedp.Navigate(s.url+"/desk/"), chromedp.WaitVisible(chromedp.CSS("#f-login")))
	if got := focused(t, ctx); got != "f-login" {
		t.Errorf("focus on the sign-in page is %q, want f-login", got)
	}
	screen(t, ctx, "desk-login")
	act(t, ctx, "sign in by keyboard", chromedp.KeyEvent("pforte\t"+pw+"\r"), chromedp.WaitVisible(chromedp.CSS("#f-current")))
	wantText(t, ctx, "Bitte wählen Sie ein eigenes Passwort")

	// A wrong repeat is refused, then the new password takes.
	const newPW = "Eingang-Nord-2026!"
	fill(t, ctx, map[string]string{"f-current": pw, "f-new": newPW, "f-repeat": newPW + "x"}, "f-current", "f-new", "f-repeat")
	act(t, ctx, "submit", chromedp.Submit(chromedp.CSS("#f-repeat")), chromedp.WaitVisible(chromedp.CSS("#errors")))
	wantText(t, ctx, "Die beiden neuen Passwörter stimmen nicht überein")
	fill(t, ctx, map[string]string{"f-current": pw, "f-new": newPW, "f-repeat": newPW}, "f-current", "f-new", "f-repeat")
	act(t, ctx, "submit", chromedp.Submit(chromedp.CSS("#f-repeat")), chromedp.WaitVisible(`//p[contains(., "Passwort ist geändert")]`))
	// The first sign-in continues to the account's own page, the form,
	// with the cursor in the first name.
	if path := eval[string](t, ctx, `location.pathname`); path != "/desk/rathaus/" {
		t.Errorf("after the first password change the desk is at %s, want /desk/rathaus/", path)
	}
	if got := focused(t, ctx); got != "f-given_name" {
		t.Errorf("focus on the form is %q, want f-given_name", got)
	}

	// Keyboard alone: type, Tab, Enter in a field registers (not "more
	// companions"), and the cursor is back in the first name afterwards.
	act(t, ctx, "register by keyboard", chromedp.KeyEvent("Erika\tMustermann\tHeidestraße\t17\t51147\tKöln\t+49 221 1234567\r"),
		chromedp.WaitVisible(chromedp.CSS(".slip")))
	wantText(t, ctx, "Angemeldet: Erika M.")
	if n := len(openVisits(t, s)); n != 1 {
		t.Fatalf("%d visits stored after Enter, want 1", n)
	}
	act(t, ctx, "next visitor", chromedp.Click(chromedp.CSS("a.next")), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	if got := focused(t, ctx); got != "f-given_name" {
		t.Errorf("focus after the next visitor is %q, want f-given_name", got)
	}
	act(t, ctx, "check the keyboard visitor out", chromedp.Navigate(s.url+"/desk/rathaus/present"), chromedp.WaitVisible(chromedp.CSS("#f-code")))
	act(t, ctx, "by code", chromedp.KeyEvent(eval[string](t, ctx, `document.querySelector('table.present .code').textContent`)+"\r"),
		chromedp.WaitVisible(`//p[contains(., "Abgemeldet: 1.")]`))

	// Register a visitor and a companion: two faults are shown together,
	// the first in form order has the focus.
	do(t, ctx, "open the form", chromedp.Navigate(s.url+"/desk/rathaus/"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	screen(t, ctx, "desk-register")
	bad := map[string]string{}
	for k, v := range visitor {
		bad[k] = v
	}
	bad["f-postcode"], bad["f-phone"] = "51#47", "ruf mich an"
	fill(t, ctx, bad, visitorOrder...)
	fill(t, ctx, map[string]string{"f-c1_given_name": "Max", "f-c1_family_name": "Mustermann"}, "f-c1_given_name", "f-c1_family_name")
	do(t, ctx, "choose the area", chromedp.SetValue(chromedp.CSS("#f-area"), "Bürgerbüro"))
	act(t, ctx, "submit", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS("#errors")))
	wantText(t, ctx, "Bitte prüfen Sie die markierten Felder", "Postleitzahl: Bitte geben Sie eine gültige Postleitzahl an", "Telefon: Bitte geben Sie eine gültige Telefonnummer an")
	if got := focused(t, ctx); got != "f-postcode" {
		t.Errorf("focus after the errors is %q, want f-postcode (the first field at fault)", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[aria-invalid="true"]').length`); n != 2 {
		t.Errorf("%d inputs marked invalid, want 2", n)
	}
	screen(t, ctx, "desk-register-errors")
	if n := len(openVisits(t, s)); n != 0 {
		t.Fatalf("%d visits stored after a refused form", n)
	}
	fill(t, ctx, visitor, "f-postcode", "f-phone")
	act(t, ctx, "submit", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS(".slip")))
	codes := eval[[]string](t, ctx, `[...document.querySelectorAll('.slip-code')].map(e => e.textContent)`)
	if len(codes) != 2 || eval[int](t, ctx, `document.querySelectorAll('.slip .qr svg').length`) != 2 {
		t.Fatalf("slips: codes %v, want two slips with QR codes", codes)
	}
	wantText(t, ctx, "Angemeldet: Erika M., Max M.", "Bürgerbüro", "Bürgerbüro ist jetzt voll: 2 von 2 Plätzen.")
	slipPNG := qrOfSlip(t, ctx, 1)
	screen(t, ctx, "desk-slips")
	// Printed: a slip per label on a receipt printer, or both on one A4
	// sheet.
	if n := printedPages(t, ctx, ""); n != 2 {
		t.Errorf("receipt printing: %d pages, want one per slip (2)", n)
	}
	if n := printedPages(t, ctx, "a4"); n != 1 {
		t.Errorf("A4 printing: %d pages, want both slips on one sheet", n)
	}

	// Who is present: both, the area full (2 of 2), the site not (2 of 4).
	do(t, ctx, "present", chromedp.Navigate(s.url+"/desk/rathaus/present"), chromedp.WaitVisible(chromedp.CSS("table.present")))
	wantText(t, ctx, codes[0], codes[1], "2 von 4", "2 von 2 (voll)", "2 Personen")
	if n := eval[int](t, ctx, `document.querySelectorAll('table.occupancy tr.full').length`); n != 1 {
		t.Errorf("%d occupancy rows highlighted full, want 1 (Bürgerbüro)", n)
	}
	if page := bodyText(t, ctx); strings.Contains(page, "Erika") || strings.Contains(page, "Mustermann") {
		t.Errorf("the list of those present shows a name:\n%s", page)
	}
	screen(t, ctx, "desk-present")

	// Check the first out by typing its code (lower case, with a dash),
	// the second by scanning its slip (a scanner types the QR code's text).
	if got := focused(t, ctx); got != "f-code" {
		t.Errorf("focus on the list is %q, want the code field", got)
	}
	typed := strings.ToLower(codes[0][:3] + "-" + codes[0][3:])
	act(t, ctx, "check out by code", chromedp.KeyEvent(typed+"\r"), chromedp.WaitVisible(`//p[contains(., "Abgemeldet: 1.")]`))
	if n := len(openVisits(t, s)); n != 1 {
		t.Errorf("%d open visits after one check-out, want 1", n)
	}
	act(t, ctx, "scan the slip", chromedp.SendKeys(chromedp.CSS("#f-code"), slipPNG+"\r"), chromedp.WaitVisible(`//p[contains(., "Abgemeldet: 1.")]`))
	if n := len(openVisits(t, s)); n != 0 {
		t.Errorf("%d open visits after scanning the second slip, want 0", n)
	}
	act(t, ctx, "unknown code", chromedp.SendKeys(chromedp.CSS("#f-code"), codes[0]+"\r"), chromedp.WaitVisible(`//p[contains(., "Kein anwesender Besucher")]`))

	// A paper form typed in afterwards: arrival and departure.
	do(t, ctx, "paper form", chromedp.Navigate(s.url+"/desk/rathaus/paper"), chromedp.WaitVisible(chromedp.CSS("#f-arrival")))
	fill(t, ctx, visitor, visitorOrder...)
	do(t, ctx, "times", chromedp.SetValue(chromedp.CSS("#f-arrival"), "09:05"), chromedp.SetValue(chromedp.CSS("#f-departure"), "09:50"))
	screen(t, ctx, "desk-paper")
	act(t, ctx, "submit", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(`//p[contains(., "Nachgetragen: Erika M.")]`))
	if n := eval[int](t, ctx, `document.querySelectorAll('.slip').length`); n != 0 {
		t.Errorf("%d slips for a visit that is over", n)
	}
	checkPaperVisit(t, s)

	// A family of three, checked out as a group.
	do(t, ctx, "open the form", chromedp.Navigate(s.url+"/desk/rathaus/"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	fill(t, ctx, visitor, visitorOrder...)
	fill(t, ctx, map[string]string{"f-c1_given_name": "Max", "f-c1_family_name": "M"}, "f-c1_given_name", "f-c1_family_name")
	act(t, ctx, "more companions", chromedp.Click(chromedp.CSS(`button[name="more"]`)), chromedp.WaitVisible(chromedp.CSS("#f-c2_given_name")))
	if got := focused(t, ctx); got != "f-c2_given_name" {
		t.Errorf("focus after more companions is %q, want f-c2_given_name", got)
	}
	act(t, ctx, "type the second companion, Enter", chromedp.KeyEvent("Moritz\tM\r"), chromedp.WaitVisible(chromedp.CSS(".slip")))
	do(t, ctx, "one more", chromedp.Navigate(s.url+"/desk/rathaus/"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	fill(t, ctx, visitor, visitorOrder...)
	act(t, ctx, "submit", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS(".slip")))
	do(t, ctx, "present", chromedp.Navigate(s.url+"/desk/rathaus/present"), chromedp.WaitVisible(chromedp.CSS("table.present")))
	wantText(t, ctx, "Im Haus: 4", "4 von 4 (voll)", "3 Personen", "allein")
	act(t, ctx, "check out the group", chromedp.Click(`button[name="party"]`), chromedp.WaitVisible(`//p[contains(., "Abgemeldet: 3.")]`))
	if n := len(openVisits(t, s)); n != 1 {
		t.Errorf("%d open visits after the group left, want 1", n)
	}

	// Closing time: the last visitor is checked out automatically at 18:00.
	closing := time.Date(2025, 3, 4, 18, 0, 0, 0, registry.LocalZone)
	s.Clock.Set(closing.Add(2 * time.Minute))
	closer := &retention.Closer{Store: s.Store, Now: s.Clock.Now}
	if n, err := closer.Close(context.Background()); err != nil || n != 1 {
		t.Fatalf("closing: %d, %v; want 1", n, err)
	}
	// Seven hours later the session has ended (30 minutes idle).
	do(t, ctx, "session ended", chromedp.Navigate(s.url+"/desk/rathaus/present"), chromedp.WaitVisible(chromedp.CSS("#f-login")))
	act(t, ctx, "sign in again", chromedp.KeyEvent("pforte\t"+newPW+"\r"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	do(t, ctx, "present", chromedp.Navigate(s.url+"/desk/rathaus/present"), chromedp.WaitVisible(`//p[contains(., "Niemand ist angemeldet.")]`))
	wantText(t, ctx, "0 von 4")
	closed := 0
	evs, err := s.Store.AuditEvents(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == registry.AuditVisitsCheckedOut && strings.Contains(e.Details, `"reason":"closing"`) {
			closed++
		}
		if e.Action == registry.AuditVisitsRegistered && e.Actor != "user:pforte" {
			t.Errorf("registration by %q, want user:pforte", e.Actor)
		}
	}
	if closed != 1 {
		t.Errorf("%d closing check-outs in the audit log, want 1", closed)
	}

	// Signing out ends the session.
	act(t, ctx, "sign out", chromedp.Click(`//button[contains(., "Ausloggen")]`), chromedp.WaitVisible(`//p[contains(., "Sie sind ausgeloggt.")]`))
	do(t, ctx, "desk after sign-out", chromedp.Navigate(s.url+"/desk/rathaus/present"), chromedp.WaitVisible(chromedp.CSS("#f-login")))
}

// qrOfSlip screenshots the QR code of slip i (from 0), decodes it with
// zbar and returns the text: the slip's check-out link.
// printedPages prints the page on A4 as Chrome does (body class set to
// class, as the print buttons do) and returns the PDF's page count by
// pdfinfo.
func printedPages(t *testing.T, ctx context.Context, class string) int {
	t.Helper()
	eval[bool](t, ctx, fmt.Sprintf(`document.body.classList.toggle("a4", %q === "a4"), true`, class))
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	pdf, err := chromedp.Run(tctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4)))
	if err != nil {
		t.Fatalf("print to PDF: %v", err)
	}
	path := filepath.Join(t.TempDir(), "slips.pdf")
	os.WriteFile(path, pdf, 0o600)
	out, err := exec.Command("pdfinfo", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo (poppler-utils): %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Pages: +([0-9]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("pdfinfo: %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	eval[bool](t, ctx, `document.body.classList.remove("a4"), true`)
	return n
}

func qrOfSlip(t *testing.T, ctx context.Context, i int) string {
	t.Helper()
	zbarimg, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatal("zbarimg is missing: install Debian's zbar-tools (scripts/test-deps does)")
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.Screenshot(fmt.Sprintf(`(//div[@class="qr"])[%d]`, i+1)))
	if err != nil {
		t.Fatalf("screenshot of slip %d: %v", i, err)
	}
	path := filepath.Join(t.TempDir(), "slip.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code on slip %d: %v", i, err)
	}
	link := strings.TrimSpace(string(out))
	if !strings.Contains(link, "/checkin/rathaus/out#") {
		t.Fatalf("slip QR code = %q, want the check-out link", link)
	}
	return link
}

// checkPaperVisit finds the typed-in paper form in the store: checked in
// at 09:05 and out at 09:50 German time, by the desk.
func checkPaperVisit(t *testing.T, s *testServer) {
	t.Helper()
	in := time.Date(2025, 3, 4, 9, 5, 0, 0, registry.LocalZone)
	evs, err := s.Store.AuditEvents(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == registry.AuditVisitsRegistered && strings.Contains(e.Details, `"departures"`) {
			n, err := s.Store.CountVisits(context.Background(), in, in.Add(time.Second))
			if err != nil || n != 1 {
				t.Errorf("visits checked in at 09:05: %d, %v; want the paper form's", n, err)
			}
			return
		}
	}
	t.Error("no registration with a departure in the audit log")
}

// TestBrowserVisitor is a visitor's phone: check in with a companion on
// the form, close the tab, open the poster's page again and find both
// still checked in, restart the browser and find them again, check the
// household out at once; a second registration checks out through the
// check-out link alone; the full site shows its notice.
func TestBrowserVisitor(t *testing.T) {
	s, _ := browserServer(t)
	b := startBrowser(t, "")
	phone := func(ctx context.Context) {
		do(t, ctx, "phone size", chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch))
	}
	ctx, closeTab := b.Tab()
	phone(ctx)
	do(t, ctx, "open the poster's page", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	wantText(t, ctx, "Rathaus Musterstadt", "Verantwortlich: Stadt Musterstadt", "datenschutz@musterstadt.example", "Unverschlüsselt speichern wir nur")
	if opts := eval[[]string](t, ctx, `[...document.querySelectorAll('#f-area option')].map(o => o.textContent)`); fmt.Sprint(opts) != "[keine Angabe Bürgerbüro Standesamt]" {
		t.Errorf("area choices = %v", opts)
	}
	screen(t, ctx, "phone-form")
	fill(t, ctx, visitor, visitorOrder...)
	fill(t, ctx, map[string]string{"f-c1_given_name": "Max", "f-c1_family_name": "Mustermann"}, "f-c1_given_name", "f-c1_family_name")
	act(t, ctx, "check in", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS(".people")))
	wantText(t, ctx, "Sie sind angemeldet", "Erika Mustermann", "Max Mustermann", "Alle abmelden (2)")
	screen(t, ctx, "phone-status")
	if n := len(openVisits(t, s)); n != 2 {
		t.Fatalf("%d open visits, want 2", n)
	}

	// Tab closed; the poster scanned again in a new tab.
	closeTab()
	ctx, closeTab = b.Tab()
	phone(ctx)
	do(t, ctx, "scan again", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS(".people")))
	wantText(t, ctx, "Person 1", "Person 2", "Alle abmelden (2)")
	closeTab()

	// The phone restarts: a new browser process on the same profile.
	b.Stop()
	b = startBrowser(t, b.Profile)
	ctx, closeTab = b.Tab()
	defer closeTab()
	phone(ctx)
	do(t, ctx, "scan after a restart", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS(".people")))
	wantText(t, ctx, "Alle abmelden (2)")
	act(t, ctx, "check the household out", chromedp.Click(chromedp.CSS("button.all")), chromedp.WaitVisible(`//h1[contains(., "Auf Wiedersehen")]`))
	if n := len(openVisits(t, s)); n != 0 {
		t.Errorf("%d open visits after the household checked out, want 0", n)
	}
	do(t, ctx, "scan once more", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))

	// The check-out link alone (bookmarked, or opened from another app):
	// its tickets sit in the fragment, which the script posts.
	fill(t, ctx, visitor, visitorOrder...)
	act(t, ctx, "check in", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS(".outlink")))
	link := eval[string](t, ctx, `document.querySelector('.outlink').href`)
	if !strings.Contains(link, "/checkin/rathaus/out#") || strings.Contains(strings.SplitN(link, "#", 2)[0], "rgc_") {
		t.Fatalf("check-out link %q: the token must be in the fragment only", link)
	}
	other := startBrowser(t, "") // another app: no cookie
	octx, closeOther := other.Tab()
	defer closeOther()
	phone(octx)
	do(t, octx, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#out button")))
	if loc := eval[string](t, octx, "location.href"); strings.Contains(loc, "#") {
		t.Errorf("the link's fragment stays in the address bar: %s", loc)
	}
	screen(t, octx, "phone-out")
	act(t, octx, "check out", chromedp.Click(chromedp.CSS("#out button")), chromedp.WaitVisible(`//h1[contains(., "Auf Wiedersehen")]`))
	if n := len(openVisits(t, s)); n != 0 {
		t.Errorf("%d open visits after the check-out link, want 0", n)
	}

	// The site at capacity: the form asks to wait at the desk.
	for i := range 4 {
		reg := registryWithTag(fmt.Sprint("Voll", i))
		reg.Area = ""
		if _, err := s.Service.Register(context.Background(), mustToken(t, s), reg, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Clock.Add(10 * time.Second) // past the occupancy cache
	do(t, ctx, "full", chromedp.Navigate(s.url+"/checkin/rathaus?new=1"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	wantText(t, ctx, "Bitte melden Sie sich an und warten Sie an der Pforte")
	screen(t, ctx, "phone-full")
}

// mustToken returns the intake token record of the test server.
func mustToken(t *testing.T, s *testServer) *registry.Token {
	t.Helper()
	tok, err := s.Store.FindTokenByHash(context.Background(), registry.HashToken(s.intake))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestBrowserAppointments: at a site by appointment only the desk sees the
// day's appointments, registers a visitor from one (code, host and room
// filled in; the appointment turns "da"), and admits a walk-in only with
// a reason chosen from the list.
func TestBrowserAppointments(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	s.PutSite(t, apptSite())
	const pw = "Eingang-Nord-2026!"
	u := &registry.User{Login: "pforte", Name: "Maria Pforte", Role: registry.UserDesk, Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(pw)}
	if err := s.Store.CreateUser(context.Background(), "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	a := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", s.Clock.Now().Add(15*time.Minute))
	s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", s.Clock.Now().Add(2*time.Hour))

	b := startBrowser(t, "")
	ctx := b.Ctx
	do(t, ctx, "tablet size", chromedp.EmulateViewport(1024, 768))
	do(t, ctx, "open the desk", chromedp.Navigate(s.url+"/desk/"), chromedp.WaitVisible(chromedp.CSS("#f-login")))
	act(t, ctx, "sign in", chromedp.KeyEvent("pforte\t"+pw+"\r"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))

	act(t, ctx, "day list", chromedp.Click(`//nav//a[.="Termine heute"]`), chromedp.WaitVisible(chromedp.CSS("table.day")))
	wantText(t, ctx, a.Code, "Standesamt Frau Roth", "erwartet")
	screen(t, ctx, "desk-day")
	act(t, ctx, "register from the appointment", chromedp.Click(`//tr[td[.="`+a.Code+`"]]//a`), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	for id, want := range map[string]string{"f-appointment": a.Code, "f-host": "Standesamt Frau Roth", "f-area": "Standesamt"} {
		if got := eval[string](t, ctx, `document.getElementById("`+id+`").value`); got != want {
			t.Errorf("%s = %q, want %q from the appointment", id, got, want)
		}
	}
	fill(t, ctx, visitor, visitorOrder[:7]...)
	act(t, ctx, "register", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS(".slip")))
	act(t, ctx, "day list again", chromedp.Navigate(s.url+"/desk/rathaus/day"), chromedp.WaitVisible(chromedp.CSS("table.day")))
	if got := eval[string](t, ctx, `[...document.querySelectorAll("tr")].find(r => r.textContent.includes("`+a.Code+`")).textContent`); !strings.Contains(got, "da") || strings.Contains(got, "Anmelden") {
		t.Errorf("the appointment's row after arrival: %q", got)
	}

	// The desk books a later appointment for a caller.
	act(t, ctx, "book", chromedp.Click(`//nav//a[.="Termin vergeben"]`), chromedp.WaitVisible(chromedp.CSS("#f-host")))
	do(t, ctx, "choose host and times", chromedp.SetValue(chromedp.CSS("#f-host"), "Bürgerbüro"),
		chromedp.SetValue(chromedp.CSS("#f-arrival"), "16:00"), chromedp.SetValue(chromedp.CSS("#f-departure"), "16:30"),
		chromedp.SendKeys(chromedp.CSS("#f-note"), "Kommt mit Betreuerin\nTel. 0171 5550188"))
	if got := eval[string](t, ctx, `document.getElementById("f-note").getAttribute("aria-describedby")`); got != "f-note-hint" {
		t.Errorf("the note's hint is not its description: %q", got)
	}
	screen(t, ctx, "desk-book-note")
	act(t, ctx, "make it", chromedp.Submit(chromedp.CSS("#f-host")), chromedp.WaitVisible(`//p[contains(., "angelegt")]`))
	wantText(t, ctx, "Termine von Bürgerbüro an diesem Tag:")
	screen(t, ctx, "desk-book")
	// The same host at an overlapping time: warned, booked only when
	// confirmed.
	do(t, ctx, "overlapping times", chromedp.SetValue(chromedp.CSS("#f-host"), "Bürgerbüro"),
		chromedp.SetValue(chromedp.CSS("#f-arrival"), "16:15"), chromedp.SetValue(chromedp.CSS("#f-departure"), "16:45"))
	act(t, ctx, "book the overlap", chromedp.Submit(chromedp.CSS("#f-host")), chromedp.WaitVisible(chromedp.CSS("#f-overlap")))
	wantText(t, ctx, "Bürgerbüro hat zu dieser Zeit schon einen Termin")
	screen(t, ctx, "desk-book-overlap")
	do(t, ctx, "tick the confirmation", chromedp.Click(chromedp.CSS("#f-overlap")))
	act(t, ctx, "confirm the overlap", chromedp.Submit(chromedp.CSS("#f-host")), chromedp.WaitVisible(`//p[contains(., "angelegt")]`))

	// A caller cancels tomorrow's appointment: the desk opens that day and
	// confirms the question the page asks.
	tomorrow := s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", s.Clock.Now().Add(24*time.Hour))
	asked := make(chan string, 1)
	dctx, stopDialogs := context.WithCancel(ctx)
	defer stopDialogs()
	dialogs := chromedp.Events(dctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			asked <- ev.Message
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	act(t, ctx, "the next day", chromedp.Click(`//nav//a[.="Termine heute"]`), chromedp.WaitVisible(chromedp.CSS(".daynav")))
	act(t, ctx, "go to tomorrow", chromedp.Click(`//a[contains(., "Nächster Tag")]`), chromedp.WaitVisible(`//td[.="`+tomorrow.Code+`"]`))
	screen(t, ctx, "desk-day-tomorrow")
	act(t, ctx, "cancel", chromedp.Click(`//tr[td[.="`+tomorrow.Code+`"]]//button[.="Absagen"]`),
		chromedp.WaitVisible(`//p[contains(., "`+tomorrow.Code+` abgesagt")]`))
	select {
	case q := <-asked:
		if !strings.Contains(q, tomorrow.Code) {
			t.Errorf("the confirmation asked %q, want the code", q)
		}
	default:
		t.Errorf("the page cancelled without asking")
	}
	if got, _ := s.Store.FindAppointment(t.Context(), "rathaus", tomorrow.Day, tomorrow.Code); got.Status != registry.AppointmentCancelled {
		t.Errorf("after the cancel in the browser: %s", got.Status)
	}
	if list, _ := s.Store.Appointments(t.Context(), "rathaus", registry.LocalDay(s.Clock.Now())); !slices.ContainsFunc(list, func(a *registry.Appointment) bool {
		return a.HasNote && a.Start.In(registry.LocalZone).Format("15:04") == "16:00"
	}) {
		t.Errorf("the booked appointment has no sealed note: %+v", list)
	}

	// A walk-in: refused without a reason, admitted with one.
	do(t, ctx, "open the form", chromedp.Navigate(s.url+"/desk/rathaus/"), chromedp.WaitVisible(chromedp.CSS("#f-walk_in")))
	fill(t, ctx, map[string]string{"f-given_name": "Walter", "f-family_name": "Ohnetermin", "f-street": "Weg", "f-house_number": "1",
		"f-postcode": "12345", "f-city": "Ort", "f-phone": "+49 30 1234567"},
		"f-given_name", "f-family_name", "f-street", "f-house_number", "f-postcode", "f-city", "f-phone")
	act(t, ctx, "register without a code", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS("#errors")))
	wantText(t, ctx, "Kein gültiger Termin-Code für heute")
	if got := focused(t, ctx); got != "f-appointment" {
		t.Errorf("focus after the refusal = %q, want f-appointment", got)
	}
	do(t, ctx, "choose a reason", chromedp.SetValue(chromedp.CSS("#f-walk_in"), "escorted"))
	screen(t, ctx, "desk-walk-in")
	act(t, ctx, "register the walk-in", chromedp.Submit(chromedp.CSS("#f-given_name")), chromedp.WaitVisible(chromedp.CSS(".slip")))
	if !s.auditWith(t, registry.AuditVisitsRegistered, `"walk_ins":{"escorted":1}`) {
		t.Errorf("the walk-in's reason is not in the audit log")
	}

	// The host signs in (keyboard) and sees the arrival, without a name.
	const hostPW = "Standesamt-Roth-2026"
	host := &registry.User{Login: "roth", Name: "Frau Roth", Role: registry.UserHost, Host: "Standesamt Frau Roth", Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(hostPW)}
	if err := s.Store.CreateUser(context.Background(), "dpo:it", host); err != nil {
		t.Fatal(err)
	}
	act(t, ctx, "sign out", chromedp.Click(`//button[.="Ausloggen"]`), chromedp.WaitVisible(chromedp.CSS("#f-login")))
	act(t, ctx, "host signs in", chromedp.KeyEvent("roth\t"+hostPW+"\r"), chromedp.WaitVisible(chromedp.CSS("table.day")))
	wantText(t, ctx, "Meine Termine heute", a.Code, "da seit")
	if strings.Contains(bodyText(t, ctx), "Mustermann") || strings.Contains(bodyText(t, ctx), "Im Haus") {
		t.Errorf("the host's page shows a name or the desk's navigation")
	}
	screen(t, ctx, "host-page")

	// The page is live: a visitor registered while the host looks shows up
	// without a reload, and a screen reader hears it.
	later := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", s.Clock.Now().Add(30*time.Minute))
	do(t, ctx, "reload for the new appointment", chromedp.Reload(), chromedp.WaitVisible(`//tr[@data-code="`+later.Code+`"]`))
	if eval[bool](t, ctx, `document.querySelector('tr[data-code="`+later.Code+`"]').hasAttribute("data-announce")`) {
		t.Fatalf("the later appointment counts as arrived already")
	}
	eval[bool](t, ctx, `window.notReloaded = true`)
	reg := intaketest.Registration("live")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", later.Code
	wantStatus(t, s.register(t, regJSON(t, reg), ""), 201)
	// The next update would come within 5 seconds; the page also updates
	// when it becomes visible again, which the test uses not to wait.
	eval[bool](t, ctx, `document.dispatchEvent(new Event("visibilitychange"))`)
	do(t, ctx, "update", chromedp.WaitVisible(`//tr[@data-code="`+later.Code+`" and contains(@class, "new")]`))
	if got := eval[string](t, ctx, `document.getElementById("live-status").textContent`); !strings.Contains(got, later.Code) || !strings.Contains(got, "angekommen") {
		t.Errorf("the status line says %q, want the arrival", got)
	}
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Errorf("the page reloaded instead of updating")
	}
	if strings.Contains(bodyText(t, ctx), reg.FamilyName) {
		t.Errorf("the live update shows the visitor's name")
	}
	screen(t, ctx, "host-page-live")

	// The host cancels one of its appointments; the page it lands on (the
	// answer to the form) goes on updating itself.
	gone := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", s.Clock.Now().Add(45*time.Minute))
	next := s.appointment(t, "rathaus", "Standesamt Frau Roth", "Standesamt", s.Clock.Now().Add(50*time.Minute))
	do(t, ctx, "reload for the new appointments", chromedp.Reload(), chromedp.WaitVisible(`//tr[@data-code="`+next.Code+`"]`))
	act(t, ctx, "host cancels", chromedp.Click(`//tr[td[.="`+gone.Code+`"]]//button[.="Absagen"]`),
		chromedp.WaitVisible(`//p[contains(., "`+gone.Code+` abgesagt")]`))
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Errorf("the host's page cancelled without asking")
	}
	reg = intaketest.Registration("live2")
	reg.Site, reg.Host, reg.Area, reg.Appointment = "rathaus", "", "", next.Code
	wantStatus(t, s.register(t, regJSON(t, reg), ""), 201)
	eval[bool](t, ctx, `document.dispatchEvent(new Event("visibilitychange"))`)
	do(t, ctx, "update after the cancel", chromedp.WaitVisible(`//tr[@data-code="`+next.Code+`" and contains(@class, "new")]`))

	// The visitor's own form at a site by appointment only asks for the code.
	do(t, ctx, "phone size", chromedp.EmulateViewport(phoneW, phoneH))
	do(t, ctx, "public form", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS("#f-appointment")))
	if got := eval[bool](t, ctx, `document.getElementById("f-appointment").required`); !got {
		t.Errorf("the code input of a site by appointment only is not required")
	}
	// The code comes first and is checked when the visitor leaves it,
	// before the address is typed.
	if first := eval[string](t, ctx, `document.querySelector('form input:not([type=hidden]), form select').id`); first != "f-appointment" {
		t.Errorf("the first input is %s, want the appointment code", first)
	}
	do(t, ctx, "a wrong code", chromedp.SendKeys(chromedp.CSS("#f-appointment"), "T-0001\t"),
		chromedp.WaitVisible(`//p[@id="f-appointment-check" and contains(., "ohne Termin wenden Sie sich bitte an die Pforte")]`))
	if eval[string](t, ctx, `document.getElementById("f-appointment").getAttribute("aria-invalid")`) != "true" {
		t.Errorf("a wrong code is not marked invalid")
	}
	eval[bool](t, ctx, `document.getElementById("f-appointment").value = "", true`)
	do(t, ctx, "the right code", chromedp.SendKeys(chromedp.CSS("#f-appointment"), strings.ToLower(next.Code)+"\t"),
		chromedp.WaitVisible(`//p[@id="f-appointment-check" and contains(., "Termin gefunden")]`))
	screen(t, ctx, "phone-appointment")
}

// TestBrowserDeskLayout: at the desk's common widths the header's
// language link takes a click (nothing lies over it), the register button
// is on screen without scrolling at 1366×768, and a skip link leads past
// the navigation.
func TestBrowserDeskLayout(t *testing.T) {
	s, pw := deskServer(t, serverOptions{})
	b := startBrowser(t, "")
	ctx := b.Ctx
	do(t, ctx, "size", chromedp.EmulateViewport(1366, 768))
	// A newcomer lands on a page, not a JSON 404; the favicon exists.
	do(t, ctx, "landing page", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS("h1")))
	wantText(t, ctx, "Besucherregister", "Bauamt", "Pforte und Termine")
	screen(t, ctx, "home")
	if resp, err := http.Get(s.url + "/favicon.ico"); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/x-icon" {
		t.Errorf("favicon.ico: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	do(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`a[href^="/desk/"]`)), chromedp.WaitVisible(chromedp.CSS("#f-login")))
	act(t, ctx, "sign in", chromedp.KeyEvent("pforte\t"+pw+"\r"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	for _, width := range []int64{1366, 820, 390} {
		do(t, ctx, "size", chromedp.EmulateViewport(width, 768))
		hit := eval[bool](t, ctx, `(() => { const a = document.querySelector('a[hreflang="en"]'); const r = a.getBoundingClientRect();
			const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); return e === a || a.contains(e); })()`)
		if !hit {
			t.Errorf("at %d px something lies over the English link", width)
		}
	}
	do(t, ctx, "size", chromedp.EmulateViewport(1366, 768))
	if bottom := eval[float64](t, ctx, `document.querySelector('form.register > button:last-of-type').getBoundingClientRect().bottom`); bottom > 768 {
		t.Errorf("the register button ends at %.0f px, below the 768 px window", bottom)
	}
	screen(t, ctx, "desk-register")
	act(t, ctx, "English", chromedp.Click(chromedp.CSS(`a[hreflang="en"]`)), chromedp.WaitVisible(`//h1[contains(., "Register")]`))
	do(t, ctx, "reload", chromedp.Navigate(s.url+"/desk/rathaus/?lang=de"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	if top := eval[float64](t, ctx, `(() => { const a = document.querySelector('a.skip'); a.focus(); return a.getBoundingClientRect().top; })()`); top < 0 || top > 100 {
		t.Errorf("the focused skip link is at %.0f px, not on screen", top)
	}
	do(t, ctx, "skip link", chromedp.KeyEvent("\r"))
	if got := eval[string](t, ctx, `location.hash`); got != "#main" {
		t.Errorf("the skip link went to %q, want #main", got)
	}
}

// acceptLanguage makes the tab's browser send Accept-Language: lang, as
// a phone set to that language does.
func acceptLanguage(lang string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
			UserAgent: "Mozilla/5.0 (Linux; Android 14) registry-test", AcceptLanguage: lang})
		return err
	})
}

// TestBrowserVisitorLanguages: phones set to Turkish, Arabic and
// Ukrainian get the form in their language and check in and out with it;
// the Arabic page runs right to left (labels and buttons mirrored, the
// phone number left to right inside it); the picker switches the
// language and the choice is kept; axe-core finds nothing in any language;
// screenshots of the Arabic and Ukrainian forms on a phone.
func TestBrowserVisitorLanguages(t *testing.T) {
	s, _ := browserServer(t)
	b := startBrowser(t, "")
	for _, tc := range []struct{ lang, title, submit, done, bye string }{
		{"tr", "Giriş", "Giriş yap", "Girişiniz yapıldı", "Güle güle"},
		{"ar", "التسجيل", "تسجيل", "تم تسجيلك", "مع السلامة"},
		{"uk", "Реєстрація", "Зареєструватися", "Вас зареєстровано", "До побачення"},
	} {
		ctx, closeTab := b.Tab()
		do(t, ctx, "phone in "+tc.lang, acceptLanguage(tc.lang), chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch))
		do(t, ctx, "open the form", chromedp.Navigate(s.url+"/checkin/rathaus?new=1"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
		if got := eval[string](t, ctx, `document.documentElement.lang + " " + document.documentElement.dir`); got != tc.lang+" "+map[bool]string{true: "rtl", false: "ltr"}[tc.lang == "ar"] {
			t.Errorf("%s: html lang and dir = %q", tc.lang, got)
		}
		wantText(t, ctx, tc.title)
		if tc.lang == "ar" {
			// Mirrored: the label starts at the right edge of the form; the
			// phone number is typed left to right.
			mirrored := eval[bool](t, ctx, `(() => { const r = document.createRange(); r.selectNodeContents(document.querySelector('label[for=f-given_name]'));
				const l = r.getBoundingClientRect(), f = document.querySelector('form').getBoundingClientRect();
				return Math.abs(l.right - f.right) < 2 && l.left > f.left + 10; })()`)
			if !mirrored {
				t.Errorf("the Arabic form is not mirrored")
			}
			if dir := eval[string](t, ctx, `getComputedStyle(document.querySelector('#f-phone')).direction`); dir != "ltr" {
				t.Errorf("the phone input runs %s in Arabic, want ltr", dir)
			}
		}
		screen(t, ctx, "phone-form-"+tc.lang)
		fill(t, ctx, visitor, visitorOrder...)
		act(t, ctx, "check in", chromedp.Click(chromedp.CSS(`form button[type=submit]:last-of-type`)), chromedp.WaitVisible(chromedp.CSS(".people")))
		wantText(t, ctx, tc.done, "Erika Mustermann")
		screen(t, ctx, "phone-status-"+tc.lang)
		act(t, ctx, "check out", chromedp.Click(chromedp.CSS(".people button")), chromedp.WaitVisible(chromedp.CSS("h1")))
		wantText(t, ctx, tc.bye)
		closeTab()
	}
	if n := len(openVisits(t, s)); n != 0 {
		t.Errorf("%d visits still open after the three checked out", n)
	}

	// The picker: a German phone chooses Polish; the choice stays when the
	// poster is scanned again.
	ctx, closeTab := b.Tab()
	defer closeTab()
	do(t, ctx, "German phone", acceptLanguage("de-DE,de"), chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateMobile))
	do(t, ctx, "open the form", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	wantText(t, ctx, "Anmeldung")
	act(t, ctx, "choose Polski", chromedp.Click(chromedp.CSS(`nav.langs a[hreflang="pl"]`)), chromedp.WaitVisible(`//h1[contains(., "Rejestracja")]`))
	do(t, ctx, "scan again", chromedp.Navigate(s.url+"/checkin/rathaus"), chromedp.WaitVisible(chromedp.CSS("#f-given_name")))
	if lang := eval[string](t, ctx, `document.documentElement.lang`); lang != "pl" {
		t.Errorf("after choosing Polish and scanning again the page is in %q", lang)
	}
	screen(t, ctx, "phone-form-pl")
}
