package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

// TestIndexRequest: the health office names the index case by the code
// on its visitor slip (typed loosely); the request holds the visit it
// names, the DPO's view shows the scope against the whole window, and a
// code that names no visit here, whether unknown or of another site, is
// refused with one answer and recorded.
func TestIndexRequest(t *testing.T) {
	s, _ := newSQLiteServer(t, serverOptions{})
	e := newTraceEnv(t, s)
	index := e.registerAt(t, scopeVisit{tag: "Index", site: "rathaus", area: "Saal 1", in: -150 * time.Minute, out: ptr(-120 * time.Minute)})
	contact := e.registerAt(t, scopeVisit{tag: "Kontakt", site: "rathaus", area: "Saal 1", in: -130 * time.Minute, out: ptr(-100 * time.Minute)})
	elsewhere := e.registerAt(t, scopeVisit{tag: "Woanders", site: "bibliothek", area: "Saal 1", in: -150 * time.Minute, out: ptr(-120 * time.Minute)})
	code := e.Secret.ShortCode(index)
	in := traceInput()
	in.Areas = nil
	in.Index = []string{strings.ToLower(code[:3] + "-" + code[3:])}
	id := e.file(t, e.office, in)
	stored, err := s.Store.FindTraceRequest(t.Context(), id)
	if err != nil || len(stored.IndexVisits) != 1 || stored.IndexVisits[0] != index || stored.Index[0] != code || stored.Tolerance != registry.DefaultTolerance {
		t.Fatalf("stored index scope: %+v, %v", stored, err)
	}
	if v := e.view(t, e.office, id); v["index_visits"] != float64(1) || v["tolerance_minutes"] != float64(registry.DefaultTolerance) {
		t.Errorf("the office's view of the index scope: %v", v)
	}
	dpo, _ := s.Token(t, registry.RoleDPO, "")
	r := e.as(t, dpo, "GET", "/v1/dpo/requests/"+id, "")
	wantStatus(t, r, 200)
	var view struct {
		Visits int `json:"visits_in_scope"`
		Window int `json:"visits_in_window"`
	}
	json.Unmarshal(r.body, &view)
	if view.Visits < 2 || view.Window <= view.Visits {
		t.Errorf("DPO preview: %d visits in the index scope, %d in the window; want the index scope smaller", view.Visits, view.Window)
	}
	e.wantNoContact(t, "the DPO's view", r.body)

	// The export says why each row is there and how long it was together
	// with the index case.
	e.approve(t, id)
	dl := e.as(t, e.office, "GET", "/v1/trace-requests/"+id+"/export", "")
	wantStatus(t, dl, 200)
	b, err := export.Read(bytes.NewReader(dl.body), e.Office, e.trust(t))
	if err != nil {
		t.Fatalf("open the bundle: %v", err)
	}
	roles := map[string]string{}
	minutes := map[string]int{}
	for _, rec := range b.Records {
		roles[rec.VisitID], minutes[rec.VisitID] = rec.Role, rec.ContactMinutes
	}
	if len(b.Records) != view.Visits || roles[index] != export.RoleIndex || roles[contact] != export.RoleContact || minutes[contact] != 10 || minutes[index] != 30 {
		t.Errorf("export: %d records (preview %d), roles %v, minutes %v; want the index (30 min) and the contact (10 min with it)", len(b.Records), view.Visits, roles, minutes)
	}
	if _, ok := roles[elsewhere]; ok {
		t.Errorf("the export holds the visit at another site")
	}

	// Codes that name nothing here: one answer, recorded.
	details := map[string]string{}
	for name, c := range map[string]string{"unknown": "ZZZZZZ", "other site": e.Secret.ShortCode(elsewhere)} {
		in := traceInput()
		in.Index = []string{c}
		b, _ := json.Marshal(in)
		r := e.as(t, e.office, "POST", "/v1/trace-requests", string(b))
		wantStatus(t, r, 400)
		p := r.problem(t)
		if p.Field != "index" {
			t.Errorf("%s code: field %q, want index", name, p.Field)
		}
		details[name] = strings.ReplaceAll(p.Detail, c, "CODE")
	}
	if details["unknown"] != details["other site"] {
		t.Errorf("the answers tell an unknown code from another site's:\n%s\n%s", details["unknown"], details["other site"])
	}
	if !s.auditWith(t, registry.AuditAccess, `"what":"request.index_refused"`) {
		t.Errorf("the refused codes are not in the audit log")
	}
	// An index scope with a host is refused: one kind of scope at a time.
	in = traceInput()
	in.Index, in.Hosts = []string{code}, []string{"Bauamt"}
	body, _ := json.Marshal(in)
	wantStatus(t, e.as(t, e.office, "POST", "/v1/trace-requests", string(body)), 400)
	// Guessing codes runs into the limit of failed authentications.
	limited := false
	for i := 0; i < 30 && !limited; i++ {
		in := traceInput()
		in.Index = []string{fmt.Sprintf("ZZZZ%02d", i)}
		b, _ := json.Marshal(in)
		r := e.as(t, e.office, "POST", "/v1/trace-requests", string(b))
		limited = r.status == 429 && r.header.Get("Retry-After") != ""
	}
	if !limited {
		t.Errorf("30 guessed codes in a row were all answered; want 429 with Retry-After")
	}

}
