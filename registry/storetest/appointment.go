package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func newAppointment(t *testing.T, start time.Time, uid string) *registry.Appointment {
	t.Helper()
	site := &registry.Site{Code: "rathaus", Name: "Rathaus", Hosts: []string{"Bürgerbüro", "Bauamt"}}
	a, err := registry.NewAppointment(&registry.AppointmentInput{Site: "rathaus", Host: "Bauamt", Start: start, End: start.Add(30 * time.Minute), UID: uid},
		site, "cli", t0.Add(-time.Hour))
	if err != nil {
		t.Fatalf("NewAppointment() = %v", err)
	}
	return a
}

// testAppointments: codes unique per site and day, an import is
// idempotent by UID, an arrival links the visit in the registration's
// transaction, check-out makes it "left", cancel, purge.
func testAppointments(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newAppointment(t, t0.Add(time.Hour), "")
	b := newAppointment(t, t0.Add(2*time.Hour), "outlook-123")
	b.Code = a.Code // the store draws another
	for _, x := range []*registry.Appointment{a, b} {
		got, created, err := s.CreateAppointment(ctx, "user:service", x, nil)
		if err != nil || !created || got.ID != x.ID {
			t.Fatalf("CreateAppointment() = %+v, %v, %v", got, created, err)
		}
	}
	if a.Code == b.Code {
		t.Fatalf("two appointments of a day share the code %s", a.Code)
	}
	again := newAppointment(t, t0.Add(2*time.Hour), "outlook-123")
	got, created, err := s.CreateAppointment(ctx, "user:service", again, nil)
	if err != nil || created || got.ID != b.ID {
		t.Errorf("re-import by UID = %+v, %v, %v; want the stored one", got, created, err)
	}
	list, err := s.Appointments(ctx, "rathaus", a.Day)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[0].Host != "Bauamt" {
		t.Fatalf("Appointments() = %+v, %v", list, err)
	}
	if _, err := s.FindAppointment(ctx, "rathaus", a.Day, "T-0000"); registry.ErrorCode(err) != registry.ENOTFOUND {
		t.Errorf("FindAppointment(unknown) = %v", err)
	}

	v := newVisit("rathaus", "", t0.Add(55*time.Minute))
	p := party("user:pforte", nil, v)
	p.Appointment = a.ID
	createParties(t, s, p)
	found, err := s.FindAppointment(ctx, "rathaus", a.Day, a.Code)
	if err != nil || found.Status != registry.AppointmentArrived || found.VisitID != v.ID || found.StatusAt(t0) != registry.AppointmentArrived {
		t.Fatalf("after arrival: %+v, %v", found, err)
	}
	// The arrival waits in the webhooks' outbox until it is marked told.
	if p, err := s.PendingArrivals(ctx, t0.Add(-time.Hour), 10); err != nil || len(p) != 1 || p[0].ID != a.ID {
		t.Fatalf("PendingArrivals() = %+v, %v; want the arrival", p, err)
	}
	if p, _ := s.PendingArrivals(ctx, t0.Add(time.Hour), 10); len(p) != 0 {
		t.Errorf("PendingArrivals(since after the arrival) = %+v, want none", p)
	}
	for range 2 {
		if err := s.MarkNotified(ctx, a.ID, t0); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := s.PendingArrivals(ctx, t0.Add(-time.Hour), 10); len(p) != 0 {
		t.Errorf("after MarkNotified: %+v pending", p)
	}
	if err := checkOut(s, v.ID, t0.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	found, _ = s.FindAppointment(ctx, "rathaus", a.Day, a.Code)
	if found.StatusAt(t0.Add(2*time.Hour)) != registry.AppointmentLeft {
		t.Errorf("after check-out: %s, want left", found.StatusAt(t0.Add(2*time.Hour)))
	}
	ev := wantEvents(t, s, registry.AuditVisitsRegistered, 1)[0]
	if m := details(t, ev); m["appointments"] != 1.0 {
		t.Errorf("registration event = %s, want appointments 1", ev.Details)
	}
	if b2, _ := s.FindAppointment(ctx, "rathaus", b.Day, b.Code); b2.StatusAt(t0.Add(3*time.Hour)) != registry.AppointmentNoShow {
		t.Errorf("unattended appointment: %s, want no-show", b2.StatusAt(t0.Add(3*time.Hour)))
	}
	if _, err := s.CancelAppointment(ctx, "user:service", a.ID, t0); registry.ErrorCode(err) != registry.ECONFLICT {
		t.Errorf("cancel after arrival = %v, want ECONFLICT", err)
	}
	if c, err := s.CancelAppointment(ctx, "user:service", b.ID, t0); err != nil || c.Status != registry.AppointmentCancelled {
		t.Errorf("cancel = %+v, %v", c, err)
	}
	wantEvents(t, s, registry.AuditAppointment, 4) // two created, one arrived, one cancelled

	rep, err := s.Purge(ctx, registry.ActorSystem, registry.PurgePlan{Now: t0.AddDate(0, 0, 29), Cutoff: t0.AddDate(0, 0, 1)})
	if err != nil || rep.AppointmentsDeleted != 2 {
		t.Fatalf("Purge() = %+v, %v; want 2 appointments deleted", rep, err)
	}
	if list, _ := s.Appointments(ctx, "rathaus", a.Day); len(list) != 0 {
		t.Errorf("after the purge: %d appointments", len(list))
	}
}

// testImportAppointments: a calendar import is one transaction: an item
// that cannot be stored stores none of the others (nor their audit
// events); a good import creates, re-imports by UID, and cancels.
func testImportAppointments(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a, b := newAppointment(t, t0.Add(time.Hour), "cal-1"), newAppointment(t, t0.Add(2*time.Hour), "cal-2")
	clash := newAppointment(t, t0.Add(3*time.Hour), "")
	clash.ID = a.ID // the store cannot place it: its id is taken
	_, err := s.ImportAppointments(ctx, "user:service", []registry.ImportedAppointment{{Appointment: a}, {Appointment: b}, {Appointment: clash}}, t0)
	if err == nil {
		t.Fatal("an import with an item that cannot be stored succeeded")
	}
	if list, _ := s.Appointments(ctx, "rathaus", a.Day); len(list) != 0 {
		t.Fatalf("a failed import left %d appointments", len(list))
	}
	wantEvents(t, s, registry.AuditAppointment, 0)

	a, b = newAppointment(t, t0.Add(time.Hour), "cal-1"), newAppointment(t, t0.Add(2*time.Hour), "cal-2")
	out, err := s.ImportAppointments(ctx, "user:service", []registry.ImportedAppointment{{Appointment: a}, {Appointment: b, Cancelled: true}}, t0)
	if err != nil || len(out) != 2 || !out[0].Created || out[0].Cancelled || !out[1].Cancelled || out[1].Appointment.Status != registry.AppointmentCancelled {
		t.Fatalf("ImportAppointments() = %+v, %v", out, err)
	}
	again := []registry.ImportedAppointment{{Appointment: newAppointment(t, t0.Add(time.Hour), "cal-1")}, {Appointment: newAppointment(t, t0.Add(2*time.Hour), "cal-2"), Cancelled: true}}
	out, err = s.ImportAppointments(ctx, "user:service", again, t0)
	if err != nil || out[0].Created || out[0].Appointment.ID != a.ID || out[1].Created || out[1].Cancelled {
		t.Fatalf("re-import = %+v, %v; want the stored ones, nothing new", out, err)
	}
	wantEvents(t, s, registry.AuditAppointment, 3) // two created, one cancelled
}

// testScopeByHost: a request naming a host or an appointment code covers
// the visitors of the appointments with that host or code, companions
// included, and nobody else; naming both covers either.
func testScopeByHost(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newAppointment(t, t0.Add(-30*time.Minute), "")
	b := newAppointment(t, t0.Add(-20*time.Minute), "")
	b.Host = "Bürgerbüro"
	for _, x := range []*registry.Appointment{a, b} {
		if _, _, err := s.CreateAppointment(ctx, "user:service", x, nil); err != nil {
			t.Fatal(err)
		}
	}
	reg, comp := newVisit("rathaus", "", t0.Add(-40*time.Minute)), newVisit("rathaus", "", t0.Add(-40*time.Minute))
	reg.Party, comp.Party = "party-1", "party-1"
	p := party("user:pforte", nil, reg, comp)
	p.Appointment = a.ID
	second := newVisit("rathaus", "", t0.Add(-25*time.Minute))
	q := party("user:pforte", nil, second)
	q.Appointment = b.ID
	other := newVisit("rathaus", "", t0.Add(-35*time.Minute))
	// A companion who registers on their own phone with a's code, and a
	// second registration of b's code at the desk with a companion: each
	// is a party of its own, linked to the appointment like the first.
	own := newVisit("rathaus", "", t0.Add(-38*time.Minute))
	ownParty := party("token:public-rathaus", nil, own)
	ownParty.Appointment = a.ID
	again, againComp := newVisit("rathaus", "", t0.Add(-24*time.Minute)), newVisit("rathaus", "", t0.Add(-24*time.Minute))
	againParty := party("user:pforte", nil, again, againComp)
	againParty.Appointment = b.ID
	createParties(t, s, p, q)
	createParties(t, s, ownParty, againParty)
	createVisits(t, s, other)
	if found, _ := s.FindAppointment(ctx, "rathaus", a.Day, a.Code); found.VisitID != reg.ID {
		t.Errorf("the appointment's visit = %s, want the first registrant's %s", found.VisitID, reg.ID)
	}

	r := newRequest(t, s, "office", t0, t0.Add(-time.Hour), t0, []string{"rathaus"}, nil)
	all := &recorder{}
	approve(t, s, r.ID, t0, t0.Add(time.Hour))
	if _, err := s.ExportTraceRequest(ctx, office, r.ID, t0, 12*time.Hour, nil, all.build); err != nil || len(all.visits) != 7 {
		t.Fatalf("export without hosts: %d visits, %v", len(all.visits), err)
	}
	for _, c := range []struct {
		name         string
		hosts, codes []string
		want         []string
	}{
		{"host", []string{"Bauamt"}, nil, []string{reg.ID, comp.ID, own.ID}},
		{"code", nil, []string{b.Code}, []string{second.ID, again.ID, againComp.ID}},
		{"host or code", []string{"Bauamt"}, []string{b.Code}, []string{reg.ID, comp.ID, own.ID, second.ID, again.ID, againComp.ID}},
		{"unknown code", nil, []string{"T-0000"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &registry.TraceRequest{ID: registry.NewID(), CaseRef: "GA-2", Office: "GA", LegalBasis: "§ 25 IfSG", Contact: "x",
				From: t0.Add(-time.Hour), To: t0, Sites: []string{"rathaus"}, Hosts: c.hosts, Appointments: c.codes, OwnerToken: "office"}
			if err := s.CreateTraceRequest(ctx, office, h); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindTraceRequest(ctx, h.ID)
			if err != nil || !slices.Equal(got.Hosts, c.hosts) || !slices.Equal(got.Appointments, c.codes) {
				t.Fatalf("stored hosts, codes = %v, %v, %v", got.Hosts, got.Appointments, err)
			}
			if ev, err := s.LastAudit(ctx, registry.AuditRequestCreated); err != nil || len(c.codes) > 0 != strings.Contains(ev.Details, `"appointments":["`+strings.Join(c.codes, `","`)+`"]`) ||
				len(c.hosts) > 0 && strings.Contains(ev.Details, c.hosts[0]) {
				t.Errorf("request.created event = %v, %v; want the codes and no host name", ev, err)
			}
			approve(t, s, h.ID, t0, t0.Add(time.Hour))
			// The preview counts what the export holds.
			counts, err := s.ScopeSummary(ctx, h, 12*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, sc := range counts {
				n += sc.Visits
			}
			if n != len(c.want) {
				t.Errorf("preview counts %d visits, want %d", n, len(c.want))
			}
			rec := &recorder{}
			if _, err := s.ExportTraceRequest(ctx, office, h.ID, t0, 12*time.Hour, nil, rec.build); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, v := range rec.visits {
				ids = append(ids, v.ID)
			}
			slices.Sort(ids)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Errorf("export = %v, want %v", ids, want)
			}
		})
	}
}
