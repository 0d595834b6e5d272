package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

func TestTraceRequestLifecycle(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	id := e.file(t, e.office, traceInput())

	v := e.view(t, e.office, id)
	if v["id"] != id || v["status"] != "pending" || v["case_ref"] != traceInput().CaseRef || v["decided_at"] != nil {
		t.Errorf("view = %v, want id %s, pending, the case ref, no decision", v, id)
	}
	for _, k := range []string{"owner_token", "created_by", "decided_by"} {
		if _, ok := v[k]; ok {
			t.Errorf("view holds %q: %v", k, v)
		}
	}
	notFound := e.wantSameNotFound(t, id)

	r := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 403)
	e.wantNoContact(t, "pending export's answer", r.body)
	e.wantDenied(t, e.officeTok.Actor(), id, registry.EFORBIDDEN)

	// Refusals for the credential itself are audited too.
	r = e.as(t, "", "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 401)
	e.wantDenied(t, "anonymous", id, registry.EUNAUTHORIZED)
	r = e.as(t, "rgt_"+strings.Repeat("A", 43), "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 401)
	e.wantDenied(t, "anonymous", id, registry.EUNAUTHORIZED)
	intakeSecret, intakeTok := registry.NewToken(registry.RoleIntake, "", "Pforte", e.Clock.Now())
	if err := e.Store.CreateToken(context.Background(), "dpo:test", intakeTok); err != nil {
		t.Fatal(err)
	}
	r = e.as(t, intakeSecret, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 403)
	e.wantDenied(t, intakeTok.Actor(), id, registry.EFORBIDDEN)

	e.approve(t, id)
	r = e.as(t, e.office, "HEAD", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 405)
	if got := e.view(t, e.office, id)["status"]; got != "approved" {
		t.Fatalf("after HEAD, status = %v, want approved (HEAD must not consume the export)", got)
	}

	r = e.as(t, e.other, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 404)
	if !bytes.Equal(r.body, notFound) {
		t.Errorf("another office's export answer = %q, want the unknown id's %q", r.body, notFound)
	}
	e.wantDenied(t, e.otherTok.Actor(), id, registry.ENOTFOUND)

	b, digest := e.exportBundle(t, id)
	if len(b.Records) != len(e.inScope) {
		t.Errorf("bundle holds %d records, want %d", len(b.Records), len(e.inScope))
	}

	r = e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 409)
	e.wantNoContact(t, "second export's answer", r.body)
	e.wantDenied(t, e.officeTok.Actor(), id, registry.ECONFLICT)

	v = e.view(t, e.office, id)
	if v["status"] != "exported" || v["export_count"] != float64(len(e.inScope)) || v["export_digest"] != digest ||
		v["exported_at"] == nil || v["decision_note"] != "ok" {
		t.Errorf("view after export = %v, want exported, %d records, digest %s", v, len(e.inScope), digest)
	}
	e.wantNoContact(t, "server log", []byte(e.logs.String()))
}

func TestTraceExportPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	e := newTraceEnv(t, newServer(t, store, serverOptions{}))
	id := e.file(t, e.office, traceInput())
	if got := e.view(t, e.office, id)["status"]; got != "pending" {
		t.Errorf("status = %v, want pending", got)
	}
	e.approve(t, id)
	e.exportBundle(t, id)
	r := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 409)
}

func TestTraceExportExpiredApproval(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	id := e.file(t, e.office, traceInput())
	req := e.approve(t, id)
	e.Clock.Add(req.ExpiresAt.Sub(e.Clock.Now()) + time.Second)

	r := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 403)
	if p := r.problem(t); !strings.Contains(p.Detail, "expired") {
		t.Errorf("detail = %q, want it to say the approval expired", p.Detail)
	}
	e.wantNoContact(t, "expired export's answer", r.body)
	e.wantDenied(t, e.officeTok.Actor(), id, registry.EFORBIDDEN)
	if got := e.view(t, e.office, id)["exported_at"]; got != nil {
		t.Errorf("exported_at = %v after a refused export, want null", got)
	}
}

func TestTraceRequestRefusals(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	id := e.file(t, e.office, traceInput())
	tooOld := traceInput()
	tooOld.From = e.Clock.Now().Add(-testRetention - time.Hour)
	backwards := traceInput()
	backwards.From, backwards.To = windowTo, windowFrom
	tests := []struct {
		name         string
		secret       string
		method, path string
		body         any // JSON-encoded unless a string
		status       int
		field        string
	}{
		{"intake token files", e.intake, "POST", "/v1/trace-requests", traceInput(), 403, ""},
		{"intake token reads", e.intake, "GET", "/v1/trace-requests/" + id, nil, 403, ""},
		{"intake token exports", e.intake, "GET", "/v1/trace-requests/" + id + "/export", nil, 403, ""},
		{"no token", "", "POST", "/v1/trace-requests", traceInput(), 401, ""},
		{"window beyond retention", e.office, "POST", "/v1/trace-requests", tooOld, 400, "from"},
		{"window backwards", e.office, "POST", "/v1/trace-requests", backwards, 400, "to"},
		{"no sites", e.office, "POST", "/v1/trace-requests", `{"case_ref":"x","office":"x","legal_basis":"x","contact":"x",` +
			`"from":"2025-03-04T06:30:00Z","to":"2025-03-04T08:30:00Z","sites":[]}`, 400, "sites"},
		{"unknown field", e.office, "POST", "/v1/trace-requests", `{"case_ref":"x","owner_token":"x"}`, 400, "owner_token"},
		{"from not RFC 3339", e.office, "POST", "/v1/trace-requests", `{"from":"yesterday"}`, 400, "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("Content-Type", "application/json")
			if tt.secret != "" {
				h.Set("Authorization", "Bearer "+tt.secret)
			}
			r := e.do(t, request{method: tt.method, path: tt.path, header: h, body: jsonBody(t, tt.body)})
			wantStatus(t, r, tt.status)
			if p := r.problem(t); p.Field != tt.field {
				t.Errorf("field = %q, want %q (detail %q)", p.Field, tt.field, p.Detail)
			}
		})
	}
	t.Run("retention message", func(t *testing.T) {
		r := e.as(t, e.office, "POST", "/v1/trace-requests", jsonBody(t, tooOld))
		if p := r.problem(t); !strings.Contains(p.Detail, "retention period of 28 days") {
			t.Errorf("detail = %q, want it to name the retention period", p.Detail)
		}
	})
	if got := e.view(t, e.office, id)["status"]; got != "pending" {
		t.Errorf("status after refusals = %v, want pending", got)
	}
}

func TestBundleFileName(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	tests := []struct{ caseRef, want string }{
		{"GA-53/2025 Ä-117", "GA-53_2025__-117"},
		{`"; filename=evil.exe`, "filename_evil.exe"},
		{"../../etc/passwd", "etc_passwd"},
		{"///", "trace"},
		{strings.Repeat("a", 90), strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.caseRef, func(t *testing.T) {
			in := traceInput()
			in.CaseRef = tt.caseRef
			id := e.file(t, e.office, in)
			e.approve(t, id)
			r := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
			wantStatus(t, r, 200)
			want := `attachment; filename="` + tt.want + "-" + id + `.registry-export.age"`
			if got := r.header.Get("Content-Disposition"); got != want {
				t.Errorf("Content-Disposition = %s, want %s", got, want)
			}
		})
	}
}

// wantSameNotFound checks that another office's token, an unknown id and
// malformed ids all get one and the same 404, and returns its body.
func (e *traceEnv) wantSameNotFound(t *testing.T, id string) []byte {
	t.Helper()
	first := e.as(t, e.other, "GET", "/v1/trace-requests/"+id, "")
	wantStatus(t, first, 404)
	e.wantNoContact(t, "404", first.body)
	for _, path := range []string{registry.NewID(), "not-an-id", strings.ToUpper(id), id + "0", registry.NewID() + "/export", "x/export"} {
		r := e.as(t, e.office, "GET", "/v1/trace-requests/"+path, "")
		wantStatus(t, r, 404)
		if !bytes.Equal(r.body, first.body) {
			t.Errorf("answer for %s = %q, want the other office's %q", path, r.body, first.body)
		}
	}
	return first.body
}

// exportBundle downloads id's export, checks the headers and opens the
// bundle with the office identity; the bundle must hold exactly the
// in-scope visits. It returns the bundle and its hex digest.
func (e *traceEnv) exportBundle(t *testing.T, id string) (*export.Bundle, string) {
	t.Helper()
	r := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, r, 200)
	sum := sha256.Sum256(r.body)
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	for k, want := range map[string]string{
		"Content-Type": "application/octet-stream", "Repr-Digest": "sha-256=:" + b64 + ":",
		"Digest": "sha-256=" + b64, "Content-Length": strconv.Itoa(len(r.body)),
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	b, err := export.Read(bytes.NewReader(r.body), e.Office, e.trust(t))
	if err != nil {
		t.Fatalf("open bundle: %v", err)
	}
	if b.Header.RequestID != id || b.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("bundle header %+v digest %s, want request %s digest of the body", b.Header, b.Digest, id)
	}
	var got []string
	for _, rec := range b.Records {
		got = append(got, rec.VisitID)
	}
	slices.Sort(got)
	if e.inScope != nil && !slices.Equal(got, e.inScope) { // the scopeVisits fixture's
		t.Errorf("bundle visits = %v, want %v", got, e.inScope)
	}
	if left, err := os.ReadDir(e.tempDir); err != nil || len(left) != 0 {
		t.Errorf("temp dir after export holds %v (%v), want nothing", left, err)
	}
	return b, hex.EncodeToString(sum[:])
}

// jsonBody returns v as a request body: a string as is, nil as "", else
// JSON.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTraceRequestsOfTheOffice: requests belong to the office, not to the
// token: a replacement token of the same office lists, sees and withdraws
// them; another office sees none of them.
func TestTraceRequestsOfTheOffice(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	old, oldTok := s.OfficeToken(t, registry.RoleHealthOffice, "", "ga-musterstadt")
	first := e.file(t, old, traceInput())
	e.Clock.Add(time.Second)
	second := e.file(t, old, traceInput())
	if err := e.Store.RevokeToken(context.Background(), "dpo:test", oldTok.ID, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Add(2 * time.Second) // past the token cache
	wantStatus(t, e.as(t, old, "GET", "/v1/trace-requests", ""), 401)

	fresh, _ := s.OfficeToken(t, registry.RoleHealthOffice, "", "ga-musterstadt")
	other, _ := s.OfficeToken(t, registry.RoleHealthOffice, "", "ga-nachbarkreis")
	list := func(secret, query string) []string {
		t.Helper()
		r := e.as(t, secret, "GET", "/v1/trace-requests"+query, "")
		wantStatus(t, r, 200)
		var got struct {
			Requests []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"requests"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, q := range got.Requests {
			ids = append(ids, q.ID+":"+q.Status)
		}
		return ids
	}
	if got, want := list(fresh, ""), []string{second + ":pending", first + ":pending"}; !slices.Equal(got, want) {
		t.Errorf("the office's list = %v, want %v (newest first)", got, want)
	}
	if got := list(other, ""); len(got) != 0 {
		t.Errorf("another office lists %v", got)
	}
	wantStatus(t, e.as(t, fresh, "GET", "/v1/trace-requests?status=bogus", ""), 400)
	wantStatus(t, e.as(t, fresh, "GET", "/v1/trace-requests/"+first, ""), 200)
	wantStatus(t, e.as(t, other, "GET", "/v1/trace-requests/"+first, ""), 404)
	wantStatus(t, e.as(t, other, "POST", "/v1/trace-requests/"+first+"/withdraw", ""), 404)

	r := e.as(t, fresh, "POST", "/v1/trace-requests/"+first+"/withdraw", "")
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.body), `"status":"withdrawn"`) {
		t.Errorf("withdraw answer = %s", r.body)
	}
	wantStatus(t, e.as(t, fresh, "POST", "/v1/trace-requests/"+first+"/withdraw", ""), 409)
	if got, want := list(fresh, "?status=withdrawn"), []string{first + ":withdrawn"}; !slices.Equal(got, want) {
		t.Errorf("withdrawn list = %v, want %v", got, want)
	}
	// The replacement token exports what the revoked one filed.
	e.approve(t, second)
	wantStatus(t, e.as(t, other, "GET", "/v1/trace-requests/"+second+"/export", ""), 404)
	wantStatus(t, e.as(t, fresh, "GET", "/v1/trace-requests/"+second+"/export", ""), 200)
}

// TestStateChangesReadTheirBody: withdrawing a request and cancelling an
// appointment take no body or {}; a wrong Content-Type is 415, garbage,
// a 16 KiB body or unknown fields 400, and none of them changes anything.
func TestStateChangesReadTheirBody(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	office, _ := s.OfficeToken(t, registry.RoleHealthOffice, "", "ga-musterstadt")
	id := e.file(t, office, traceInput())
	s.PutSite(t, apptSite())
	sched, _ := s.Token(t, registry.RoleScheduler, "rathaus")
	a := s.appointment(t, "rathaus", "Bürgerbüro", "Bürgerbüro", intaketest.Start.Add(time.Hour))
	garbage := strings.Repeat("\x00\xffgarbage", 16<<10/10)
	bad := []struct {
		ct, body string
		status   int
	}{
		{"text/plain", "withdraw", 415},
		{"application/x-www-form-urlencoded", "a=b", 415},
		{"", "{}", 415}, // a body needs its type
		{"application/json", garbage, 400},
		{"application/json", garbage + garbage, 413},
		{"application/json", strings.Repeat(" ", 1000) + "x", 400},
		{"application/json", `{"force":true}`, 400},
		{"application/json", `[]`, 400},
		{"application/json", `{}{}`, 400},
	}
	for _, route := range []struct{ secret, path string }{
		{office, "/v1/trace-requests/" + id + "/withdraw"},
		{sched, "/v1/appointments/rathaus/" + string(a.Day) + "/" + a.Code + "/cancel"},
	} {
		for _, b := range bad {
			h := hdr("Authorization", "Bearer "+route.secret)
			if b.ct != "" {
				h.Set("Content-Type", b.ct)
			}
			r := e.do(t, request{method: "POST", path: route.path, header: h, body: b.body})
			if r.status != b.status {
				t.Errorf("%s with %q %.20q: %d, want %d", route.path, b.ct, b.body, r.status, b.status)
			}
		}
	}
	if r, err := e.Store.FindTraceRequest(t.Context(), id); err != nil || r.Status != registry.TracePending {
		t.Fatalf("after the refused bodies the request is %v (%v), want pending", r.Status, err)
	}
	if got, err := e.Store.FindAppointment(t.Context(), "rathaus", a.Day, a.Code); err != nil || got.Status != registry.AppointmentExpected {
		t.Fatalf("after the refused bodies the appointment is %v (%v), want expected", got.Status, err)
	}
	// {} and no body at all are the two ways to say nothing.
	wantStatus(t, e.as(t, office, "POST", "/v1/trace-requests/"+id+"/withdraw", "{}"), 200)
	wantStatus(t, e.as(t, sched, "POST", "/v1/appointments/rathaus/"+string(a.Day)+"/"+a.Code+"/cancel", ""), 200)
}

// TestSitesForTheOffice: a health office's token lists the sites with
// their areas (for its workspace's pick lists), without the desk's
// configuration or staff names; other roles may not.
func TestSitesForTheOffice(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	s.PutSite(t, &registry.Site{Code: "bauamt", Name: "Bauamt", Address: "Marktplatz 2", Areas: []registry.Area{{Name: "Planauslage", Capacity: 4}},
		Hosts: []string{"Herr Geheim"}, Controller: "Stadt Musterstadt"})
	office, _ := s.OfficeToken(t, registry.RoleHealthOffice, "", "ga-musterstadt")
	r := e.as(t, office, "GET", "/v1/sites", "")
	wantStatus(t, r, 200)
	var got struct {
		Sites []struct {
			Code, Name, Address string
			Areas               []string
		} `json:"sites"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, site := range got.Sites {
		if site.Code == "bauamt" {
			found = site.Name == "Bauamt" && site.Address == "Marktplatz 2" && slices.Equal(site.Areas, []string{"Planauslage"})
		}
	}
	if !found || strings.Contains(string(r.body), "Herr Geheim") || strings.Contains(string(r.body), "capacity") {
		t.Errorf("GET /v1/sites = %s", r.body)
	}
	wantStatus(t, e.as(t, s.intake, "GET", "/v1/sites", ""), 403)
}
