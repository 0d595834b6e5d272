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

func testCheckOutVisit(t *testing.T, s registry.Store) {
	ctx := context.Background()
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
		{"open visit", v.ID, t0.Add(90 * time.Minute), ""},
		{"already checked out", v.ID, t0.Add(2 * time.Hour), registry.ECONFLICT},
		{"at check-in", w.ID, t0, ""},
		{"unknown", registry.NewID(), t0, registry.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.CheckOutVisit(ctx, tt.id, tt.at), tt.code)
		})
	}
	got := findVisit(t, s, v.ID)
	if want := t0.Add(90 * time.Minute); got.CheckOut == nil || !got.CheckOut.Equal(want) || got.CheckoutAuto {
		t.Errorf("CheckOut = %v auto %v, want %v manual", got.CheckOut, got.CheckoutAuto, want)
	}
}
