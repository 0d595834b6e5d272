package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/checks"
)

// dpoServer is a trace environment with a DPO account (dsb) and a desk
// account (pforte), a pending request and the hourly checks' report.
func dpoServer(t *testing.T) (*traceEnv, string, string) {
	t.Helper()
	rep := &checks.Report{Findings: []checks.Finding{{State: checks.OK, Check: "audit", Detail: "the log verifies: 42 entries"},
		{State: checks.Fail, Check: "keys", Detail: "no day key for 2026-03-09", Fix: "start serve: it creates them"}}}
	s, _ := newSQLiteServer(t, serverOptions{checks: func() *checks.Report { return rep }})
	rep.At = s.Clock.Now()
	e := newTraceEnv(t, s)
	const pw = "Datenschutz-2026!"
	for _, u := range []*registry.User{
		{Login: "dsb", Name: "Dana Datenschutz", Role: registry.UserDPO, PasswordHash: crypto.HashPassword(pw)},
		{Login: "pforte", Name: "Maria Pforte", Role: registry.UserDesk, Sites: []string{"rathaus"}, PasswordHash: crypto.HashPassword(pw)},
	} {
		if err := s.Store.CreateUser(context.Background(), "dpo:it", u); err != nil {
			t.Fatal(err)
		}
	}
	e.approver(t)
	id := e.file(t, e.office, traceInput())
	return e, id, pw
}

// upload posts the statement and signature files as the page's form does.
func upload(t *testing.T, c *deskClient, id string, statement, signature []byte, note string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, data := range map[string][]byte{"statement": statement, "signature": signature} {
		fw, _ := mw.CreateFormFile(name, name+".txt")
		fw.Write(data)
	}
	mw.WriteField("note", note)
	mw.WriteField("lang", "de")
	mw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", c.s.url+"/dpo/requests/"+id+"/decision", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDPOPages: a signed-in DPO reads the pending request with its
// statement, scope and signatures; downloads the statement, signs it
// offline and uploads the signature, which the export counts; a
// signature over a changed statement is refused and recorded; other
// accounts do not see the pages.
func TestDPOPages(t *testing.T) {
	e, id, pw := dpoServer(t)
	desk := newDeskClient(t, e.testServer)
	desk.signIn("pforte", pw)
	if code, _ := desk.page("GET", "/dpo/", nil); code != http.StatusForbidden {
		t.Errorf("a desk account opens /dpo/: %d, want 403", code)
	}

	c := newDeskClient(t, e.testServer)
	if resp := c.signIn("dsb", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if resp := c.send("GET", "/desk/rathaus/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dpo/?lang=de" {
		t.Errorf("a DPO opening the desk: %d %s, want 303 to /dpo/", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, home := c.page("GET", "/dpo/", nil)
	if code != 200 {
		t.Fatalf("GET /dpo/: %d\n%s", code, home)
	}
	for _, want := range []string{"GA-53/2025 Ä-117", "wartet auf Freigabe", "0 von 1", e.signer.Approver.Name,
		"no day key for 2026-03-09", "Prüfungen mit Fehler: 1.", "Tagesschlüssel vorhanden"} {
		if !strings.Contains(home, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
	code, page := c.page("GET", "/dpo/requests/"+id, nil)
	if code != 200 {
		t.Fatalf("GET the request: %d", code)
	}
	for _, want := range []string{"§ 25 IfSG i.V.m. § 28a Abs. 4 IfSG", "Frau Beispiel, 0231 123-0", "Saal 1, Foyer", "Besuche im Umfang: 3.",
		"0 von 1 nötigen Freigaben", "registry requests approve " + id, "Noch keine Unterschrift.", "über die Schnittstelle des Gesundheitsamts"} {
		if !strings.Contains(page, want) {
			t.Errorf("the request page lacks %q", want)
		}
	}
	for _, tag := range e.tags {
		if strings.Contains(home+page, tag) {
			t.Errorf("a DPO page holds the visitor data %q", tag)
		}
	}

	// Offline: the statement from the page, signed elsewhere.
	resp := c.send("GET", "/dpo/requests/"+id+"/statement?decision=approve&days=3", nil)
	st, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("statement download: %d %s", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	g := e.signer
	sign := func(b []byte) []byte {
		return registry.FormatSignatureFile(g.Approver.Key(), g.Key.Sign(registry.PurposeDecision, b))
	}
	changed := bytes.Replace(st, []byte(`"Foyer"`), []byte(`"Saal 2"`), 1)
	if bytes.Equal(changed, st) {
		t.Fatalf("statement without the area: %s", st)
	}
	if code, body := upload(t, c, id, changed, sign(changed), ""); code != http.StatusForbidden || !strings.Contains(body, "passt nicht zu dieser Anfrage") {
		t.Errorf("a signature over a changed statement: %d, want 403 with the reason", code)
	}
	if code, _ := upload(t, c, id, st, []byte("nonsense"), ""); code != http.StatusBadRequest {
		t.Errorf("an unreadable signature file: %d, want 400", code)
	}
	if code, _ := upload(t, c, id, st, sign(st), ""); code != http.StatusSeeOther {
		t.Fatalf("the offline signature: %d, want 303", code)
	}
	_, page = c.page("GET", "/dpo/requests/"+id+"?signed=1", nil)
	for _, want := range []string{"Ihre Unterschrift wurde geprüft und gespeichert.", "freigegeben, nicht abgerufen", "1 von 1 nötigen Freigaben"} {
		if !strings.Contains(page, want) {
			t.Errorf("after the upload the page lacks %q", want)
		}
	}
	r, err := e.Store.FindTraceRequest(context.Background(), id)
	if err != nil || r.Status != registry.TraceApproved || r.ExpiresAt == nil || r.ExpiresAt.Sub(e.Clock.Now()) != 72*time.Hour {
		t.Fatalf("request after the upload: %+v, %v", r, err)
	}
	ev, err := e.Store.LastAudit(context.Background(), registry.AuditApprovalRefused)
	if err != nil || ev.Subject != id {
		t.Errorf("the refused signature is not recorded: %v %v", ev, err)
	}
	if w := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", ""); w.status != 200 {
		t.Errorf("export after the uploaded approval: %d", w.status)
	}
}

// TestBrowserDPO: the DPO signs in with a browser and sees the pending
// request, its scope and its signatures, at desk and phone sizes, in
// German and English; axe-core finds nothing; screenshots for the guide.
func TestBrowserDPO(t *testing.T) {
	e, id, pw := dpoServer(t)
	b := startBrowser(t, "")
	ctx := b.Ctx
	do(t, ctx, "desk size", chromedp.EmulateViewport(deskW, deskH))
	do(t, ctx, "open the DPO's page", chromedp.Navigate(e.url+"/dpo/"), chromedp.WaitVisible(chromedp.CSS("#f-login")))
	fill(t, ctx, map[string]string{"f-login": "dsb", "f-password": pw}, "f-login", "f-password")
	act(t, ctx, "sign in", chromedp.Submit(chromedp.CSS("#f-password")), chromedp.WaitVisible(chromedp.CSS("#requests")))
	wantText(t, ctx, "Datenschutz: Übersicht", "GA-53/2025 Ä-117", "wartet auf Freigabe", "0 von 1", "no day key for 2026-03-09")
	screen(t, ctx, "dpo-overview")
	act(t, ctx, "open the request", chromedp.Click(chromedp.CSS(`a[href^="/dpo/requests/"]`)), chromedp.WaitVisible(chromedp.CSS("#statement")))
	wantText(t, ctx, "Was Sie unterschreiben", "Saal 1, Foyer", "Besuche im Umfang: 3.", "0 von 1 nötigen Freigaben", "registry requests approve "+id)
	screen(t, ctx, "dpo-request")
	e.approve(t, id)
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#signatures")))
	wantText(t, ctx, "1 von 1 nötigen Freigaben", e.signer.Approver.Name, "freigeben")
	do(t, ctx, "phone size", chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateMobile))
	screen(t, ctx, "dpo-request-phone")
	act(t, ctx, "English", chromedp.Click(chromedp.CSS(`a[hreflang="en"]`)), chromedp.WaitVisible(chromedp.CSS("#statement")))
	wantText(t, ctx, "What you sign", "1 of 1 approvals needed")
	screen(t, ctx, "dpo-request-en")
}
