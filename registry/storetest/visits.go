package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func testCreateFindVisits(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newVisit("rathaus", "buergerbuero", t0)
	b := newVisit("rathaus", "", t0.Add(time.Minute))
	c := newVisit("bibliothek", "lesesaal", t0.Add(123456*time.Microsecond))
	c.CheckOut = timePtr(t0.Add(time.Hour))
	keyA := &registry.IdempotencyKey{Hash: []byte("idem-a-0123456789abcdef"), RequestMAC: []byte("mac-a"), CheckIn: a.CheckIn, Visits: 1}
	createParties(t, s, party("token:intake", keyA, a), party("token:intake", nil, b, c))
	for _, want := range []*registry.Visit{a, b, c} {
		got := findVisit(t, s, want.ID)
		if got.Site != want.Site || got.Area != want.Area || !got.CheckIn.Equal(want.CheckIn) ||
			got.Epoch != want.Epoch || !bytes.Equal(got.Sealed, want.Sealed) || !got.CreatedAt.Equal(want.CreatedAt) ||
			!equalTimePtr(got.CheckOut, want.CheckOut) || got.CheckoutAuto {
			t.Errorf("FindVisit(%s) = %+v, want %+v", want.ID, got, want)
		}
		if got.CheckIn.Location() != time.UTC {
			t.Errorf("FindVisit(%s).CheckIn location = %v, want UTC", want.ID, got.CheckIn.Location())
		}
	}
	for _, id := range []string{registry.NewVisitID(a.CheckIn), registry.NewID(), "x", a.ID[:31] + "g"} {
		_, err := s.FindVisit(ctx, id)
		wantCode(t, err, registry.ENOTFOUND)
	}
	// Another day's prefix on a stored id names no visit.
	_, err := s.FindVisit(ctx, registry.VisitIDAt(a.CheckIn.Add(24*time.Hour), a.ID[9:]))
	wantCode(t, err, registry.ENOTFOUND)

	ev := wantEvents(t, s, registry.AuditVisitsRegistered, 1)[0]
	var p registry.VisitsRegistered
	if err := json.Unmarshal([]byte(ev.Details), &p); err != nil {
		t.Fatal(err)
	}
	leaves := append(append(registry.VisitLeaf(a), registry.VisitLeaf(b)...), registry.VisitLeaf(c)...)
	if p.Count != 3 || p.Sites["rathaus"] != 2 || p.Sites["bibliothek"] != 1 ||
		p.Leaves[a.Epoch] != base64.StdEncoding.EncodeToString(leaves) {
		t.Errorf("audit details = %s, want 3 visits with their leaves", ev.Details)
	}
	if ev.Actor != "token:intake" {
		t.Errorf("audit actor = %q, want token:intake", ev.Actor)
	}
	if err := s.CreateParties(ctx, nil); err != nil {
		t.Errorf("CreateParties(nil) = %v, want nil", err)
	}
	wantEvents(t, s, registry.AuditVisitsRegistered, 1)
	err = s.CreateParties(ctx, []*registry.Party{{Actor: "token:intake"}})
	wantCode(t, err, registry.EINVALID)
}

// party returns a party of the actor with the key (nil for none).
func party(actor registry.Actor, key *registry.IdempotencyKey, visits ...*registry.Visit) *registry.Party {
	return &registry.Party{Actor: actor, Key: key, Visits: visits}
}

func testIdempotentReplay(t *testing.T, s registry.Store) {
	first := newVisit("rathaus", "a", t0)
	key1 := &registry.IdempotencyKey{Hash: []byte("hash-1"), RequestMAC: []byte("mac-1"), CheckIn: first.CheckIn, Visits: 1}
	createParties(t, s, party("token:intake", key1, first))

	// A retry of first (another body, another day), a new keyed party and
	// its retry in the same batch, and a party without a key.
	retryVisit := newVisit("rathaus", "b", t0.Add(25*time.Hour))
	retry := party("token:intake", &registry.IdempotencyKey{Hash: []byte("hash-1"), RequestMAC: []byte("mac-other"), CheckIn: retryVisit.CheckIn, Visits: 1}, retryVisit)
	key2 := &registry.IdempotencyKey{Hash: []byte("hash-2"), RequestMAC: []byte("mac-2"), CheckIn: t0, Visits: 2}
	second := party("token:intake", key2, newVisit("rathaus", "a", t0.Add(time.Minute)), newVisit("rathaus", "a", t0.Add(time.Minute)))
	secondRetry := party("token:intake", &registry.IdempotencyKey{Hash: []byte("hash-2"), RequestMAC: []byte("mac-2"), CheckIn: key2.CheckIn, Visits: 2},
		newVisit("rathaus", "a", t0.Add(time.Minute)), newVisit("rathaus", "a", t0.Add(time.Minute)))
	plain := party("token:intake", nil, newVisit("rathaus", "a", t0.Add(2*time.Minute)))
	createParties(t, s, retry, second, secondRetry, plain)

	tests := []struct {
		name   string
		got    *registry.Party
		replay *registry.IdempotencyKey
	}{
		{"retry", retry, key1},
		{"second", second, nil},
		{"second retry in batch", secondRetry, key2},
		{"plain", plain, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.got.Replay
			switch {
			case tt.replay == nil && r != nil:
				t.Errorf("Replay = %+v, want nil", r)
			case tt.replay != nil && (r == nil || !bytes.Equal(r.Hash, tt.replay.Hash) || !bytes.Equal(r.RequestMAC, tt.replay.RequestMAC) ||
				!r.CheckIn.Equal(tt.replay.CheckIn) || r.Visits != tt.replay.Visits):
				t.Errorf("Replay = %+v, want the stored %+v", r, tt.replay)
			}
		})
	}
	for _, v := range append(retry.Visits, secondRetry.Visits...) {
		_, err := s.FindVisit(context.Background(), v.ID)
		wantCode(t, err, registry.ENOTFOUND) // a replay stores nothing
	}
	for _, v := range append(second.Visits, plain.Visits...) {
		findVisit(t, s, v.ID)
	}
	evs := wantEvents(t, s, registry.AuditVisitsRegistered, 2)
	if got := details(t, evs[1])["count"]; got != 3.0 {
		t.Errorf("audit count = %v, want 3", got)
	}
	again := party("token:intake", &registry.IdempotencyKey{Hash: []byte("hash-1"), RequestMAC: []byte("mac-1"), CheckIn: first.CheckIn, Visits: 1},
		newVisit("rathaus", "", t0))
	createParties(t, s, again)
	if again.Replay == nil {
		t.Errorf("replay-only batch: Replay = nil")
	}
	wantEvents(t, s, registry.AuditVisitsRegistered, 2) // a replay alone is not an event
}

func testDuplicateVisitID(t *testing.T, s registry.Store) {
	a := newVisit("rathaus", "", t0)
	createVisits(t, s, a)
	b := newVisit("rathaus", "", t0)
	dup := newVisit("rathaus", "", t0)
	dup.ID = a.ID
	err := s.CreateParties(context.Background(), []*registry.Party{party("token:intake", nil, b), party("token:intake", nil, dup)})
	wantCode(t, err, registry.ECONFLICT)
	_, err = s.FindVisit(context.Background(), b.ID)
	wantCode(t, err, registry.ENOTFOUND) // the failed batch stored nothing
	wantEvents(t, s, registry.AuditVisitsRegistered, 1)
}

// testAuditPerActor: a batch of two actors' parties is one event each.
func testAuditPerActor(t *testing.T, s registry.Store) {
	createParties(t, s, party("token:a", nil, newVisit("rathaus", "", t0)), party("user:meier", nil, newVisit("rathaus", "", t0), newVisit("bauamt", "", t0)),
		party("token:a", nil, newVisit("rathaus", "", t0)))
	evs := wantEvents(t, s, registry.AuditVisitsRegistered, 2)
	if evs[0].Actor != "token:a" || details(t, evs[0])["count"] != 2.0 || evs[1].Actor != "user:meier" || details(t, evs[1])["count"] != 2.0 {
		t.Errorf("events = %s %s, %s %s; want token:a with 2, user:meier with 2", evs[0].Actor, evs[0].Details, evs[1].Actor, evs[1].Details)
	}
}

func testConcurrentCreateVisits(t *testing.T, s registry.Store) {
	const workers, batches, size = 8, 10, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      []string
		replayed = map[int]int{}
		errs     = make(chan error, workers*batches)
	)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				parties := make([]*registry.Party, size)
				for i := range parties {
					parties[i] = party("token:intake", nil, newVisit(fmt.Sprintf("site-%d", w), "", t0.Add(time.Duration(b*size+i)*time.Second)))
				}
				// Every worker retries the same keyed party.
				parties[0].Key = &registry.IdempotencyKey{Hash: []byte(fmt.Sprintf("shared-%d", b)), RequestMAC: []byte("m"), CheckIn: t0, Visits: 1}
				if err := s.CreateParties(context.Background(), parties); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, p := range parties {
					if p.Replay != nil {
						replayed[b]++
						continue
					}
					ids = append(ids, p.Visits[0].ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent CreateParties() = %v", err)
	}
	for b := range batches {
		if replayed[b] != workers-1 {
			t.Errorf("shared key %d replayed %d times, want %d", b, replayed[b], workers-1)
		}
	}
	if got, want := len(ids), workers*batches*(size-1)+batches; got != want {
		t.Errorf("%d stored visits, want %d", got, want)
	}
	for _, id := range ids {
		findVisit(t, s, id)
	}
	total := 0
	for _, e := range eventsOf(t, s, registry.AuditVisitsRegistered) {
		total += int(details(t, e)["count"].(float64))
	}
	if total != len(ids) {
		t.Errorf("audit events count %d visits, want %d", total, len(ids))
	}
	rep, err := s.Purge(context.Background(), registry.ActorSystem, registry.PurgePlan{Now: t0, Cutoff: t0.Add(-time.Hour), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.VisitsRemaining; got != int64(len(ids)) {
		t.Errorf("%d rows in the store, want %d", got, len(ids))
	}
}

// checkOut checks one visit out as its visitor and returns the
// departure's error.
func checkOut(s registry.Store, id string, at time.Time) error {
	d := &registry.Departure{ID: id, At: at}
	if err := s.CheckOutVisits(context.Background(), registry.ActorVisitor, []*registry.Departure{d}); err != nil {
		return err
	}
	return d.Err
}

func testCheckOutVisit(t *testing.T, s registry.Store) {
	v := newVisit("rathaus", "", t0)
	w := newVisit("rathaus", "", t0)
	createVisits(t, s, v, w)
	tests := []struct {
		name string
		id   string
		at   time.Time
		code string
	}{
		{"before check-in", v.ID, t0.Add(-time.Second), registry.EINVALID},
		{"after the longest stay", v.ID, t0.Add(registry.MaxStayLimit + time.Second), registry.EINVALID},
		{"open visit", v.ID, t0.Add(90 * time.Minute), ""},
		{"already checked out", v.ID, t0.Add(2 * time.Hour), registry.ECONFLICT},
		{"at check-in", w.ID, t0, ""},
		{"unknown", registry.NewID(), t0, registry.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, checkOut(s, tt.id, tt.at), tt.code)
		})
	}
	got := findVisit(t, s, v.ID)
	if want := t0.Add(90 * time.Minute); got.CheckOut == nil || !got.CheckOut.Equal(want) || got.CheckoutAuto || got.CheckoutReason != registry.CheckoutVisitor {
		t.Errorf("CheckOut = %v auto %v reason %q, want %v by the visitor", got.CheckOut, got.CheckoutAuto, got.CheckoutReason, want)
	}
	// Two check-outs, one event each, committing to what they changed.
	evs := wantEvents(t, s, registry.AuditVisitsCheckedOut, 2)
	var p registry.VisitsCheckedOut
	if err := json.Unmarshal([]byte(evs[0].Details), &p); err != nil {
		t.Fatal(err)
	}
	leaf := base64.StdEncoding.EncodeToString(registry.DepartureLeaf(v.ID, t0.Add(90*time.Minute), registry.CheckoutVisitor))
	if p.Count != 1 || p.Sites["rathaus"] != 1 || p.Leaves[v.Epoch] != leaf || evs[0].Actor != registry.ActorVisitor {
		t.Errorf("check-out event = %s by %s, want one visit with its leaf, by the visitor", evs[0].Details, evs[0].Actor)
	}
}

// testCheckOutVisits checks a desk's batch: each departure gets its own
// outcome, the recorded ones share one event, another site's visit is
// refused, and the server's own reasons are not for callers.
func testCheckOutVisits(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a, b, c := newVisit("rathaus", "Foyer", t0), newVisit("rathaus", "", t0), newVisit("bauamt", "", t0)
	createParties(t, s, party("user:pforte", nil, a, b), party("user:pforte", nil, c))
	if err := checkOut(s, b.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	deps := []*registry.Departure{
		{ID: a.ID, At: at, Reason: registry.CheckoutDesk, Site: "rathaus"},
		{ID: b.ID, At: at, Reason: registry.CheckoutDesk, Site: "rathaus"},
		{ID: c.ID, At: at, Reason: registry.CheckoutDesk, Site: "rathaus"},
		{ID: registry.NewVisitID(t0), At: at, Reason: registry.CheckoutDesk, Site: "rathaus"},
	}
	if err := s.CheckOutVisits(ctx, "user:pforte", deps); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", registry.ECONFLICT, registry.EFORBIDDEN, registry.ENOTFOUND} {
		wantCode(t, deps[i].Err, want)
	}
	if got := findVisit(t, s, a.ID); got.CheckoutReason != registry.CheckoutDesk || got.CheckoutAuto || got.Party != a.ID {
		t.Errorf("desk check-out: reason %q auto %v party %s, want desk, manual, party %s", got.CheckoutReason, got.CheckoutAuto, got.Party, a.ID)
	}
	if got := findVisit(t, s, b.ID); got.Party != a.ID {
		t.Errorf("companion's party = %s, want the registrant's id %s", got.Party, a.ID)
	}
	if got := findVisit(t, s, c.ID); got.CheckOut != nil {
		t.Errorf("another site's visit was checked out at %v", got.CheckOut)
	}
	ev := wantEvents(t, s, registry.AuditVisitsCheckedOut, 2)[1]
	if d := details(t, ev); ev.Actor != "user:pforte" || d["count"].(float64) != 1 || d["reason"] != string(registry.CheckoutDesk) {
		t.Errorf("desk event = %s by %s, want one desk check-out by user:pforte", ev.Details, ev.Actor)
	}
	for _, r := range []registry.CheckoutReason{registry.CheckoutClosing, registry.CheckoutMaxStay} {
		err := s.CheckOutVisits(ctx, "user:pforte", []*registry.Departure{{ID: c.ID, At: at, Reason: r}})
		wantCode(t, err, registry.EINVALID)
	}
}

// testCloseVisits checks the closing-time check-out: the site's visits
// open since from and checked in before closing, no others.
func testCloseVisits(t *testing.T, s registry.Store) {
	ctx := context.Background()
	closing := t0.Add(8 * time.Hour)
	early, late, after := newVisit("rathaus", "", t0.Add(-25*time.Hour)), newVisit("rathaus", "Saal", t0), newVisit("rathaus", "", closing.Add(time.Minute))
	done, other := newVisit("rathaus", "", t0), newVisit("bauamt", "", t0)
	done.CheckOut = timePtr(t0.Add(time.Hour))
	createVisits(t, s, early, late, after, done, other)
	n, err := s.CloseVisits(ctx, registry.ActorSystem, "rathaus", t0.Add(-time.Hour), closing)
	if err != nil || n != 1 {
		t.Fatalf("CloseVisits = %d, %v; want 1", n, err)
	}
	got := findVisit(t, s, late.ID)
	if got.CheckOut == nil || !got.CheckOut.Equal(closing) || !got.CheckoutAuto || got.CheckoutReason != registry.CheckoutClosing {
		t.Errorf("closed visit: %v auto %v reason %q, want %v closing", got.CheckOut, got.CheckoutAuto, got.CheckoutReason, closing)
	}
	for _, v := range []*registry.Visit{early, after, other} {
		if got := findVisit(t, s, v.ID); got.CheckOut != nil {
			t.Errorf("visit checked in at %v of %s was closed", v.CheckIn, v.Site)
		}
	}
	ev := wantEvents(t, s, registry.AuditVisitsCheckedOut, 1)[0]
	if d := details(t, ev); d["reason"] != string(registry.CheckoutClosing) || d["count"].(float64) != 1 {
		t.Errorf("closing event = %s", ev.Details)
	}
	if n, err := s.CloseVisits(ctx, registry.ActorSystem, "rathaus", t0.Add(-time.Hour), closing); err != nil || n != 0 {
		t.Errorf("second CloseVisits = %d, %v; want 0", n, err)
	}
	wantEvents(t, s, registry.AuditVisitsCheckedOut, 1)
}

// testOpenVisits checks the desk's list and the occupancy counts: open
// visits since the bound only, without sealed data.
func testOpenVisits(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a, b := newVisit("rathaus", "Foyer", t0), newVisit("rathaus", "Foyer", t0.Add(time.Minute))
	c, old := newVisit("rathaus", "", t0.Add(2*time.Minute)), newVisit("rathaus", "", t0.Add(-13*time.Hour))
	gone, other := newVisit("rathaus", "Foyer", t0), newVisit("bauamt", "", t0)
	gone.CheckOut = timePtr(t0.Add(time.Minute))
	createParties(t, s, party("token:intake", nil, a, b), party("token:intake", nil, c, old, gone, other))
	open, err := s.OpenVisits(ctx, "rathaus", t0.Add(-12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range open {
		got = append(got, v.ID+" "+v.Area+" "+v.Party)
		if v.Sealed != nil {
			t.Errorf("OpenVisits returned sealed data")
		}
	}
	want := []string{a.ID + " Foyer " + a.ID, b.ID + " Foyer " + a.ID, c.ID + "  " + c.ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("OpenVisits = %v, want %v", got, want)
	}
	occ, err := s.Occupancy(ctx, t0.Add(-12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantOcc := []registry.Occupancy{{Site: "bauamt", Open: 1}, {Site: "rathaus", Open: 1}, {Site: "rathaus", Area: "Foyer", Open: 2}}
	if fmt.Sprint(occ) != fmt.Sprint(wantOcc) {
		t.Errorf("Occupancy = %v, want %v", occ, wantOcc)
	}
}
