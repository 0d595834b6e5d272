package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func testCreateFindVisits(t *testing.T, s registry.Store) {
	ctx := context.Background()
	a := newVisit("rathaus", "buergerbuero", t0)
	a.IdempotencyHash, a.RequestMAC = []byte("idem-a-0123456789abcdef"), []byte("mac-a")
	b := newVisit("rathaus", "", t0.Add(time.Minute))
	c := newVisit("bibliothek", "lesesaal", t0.Add(123456*time.Microsecond))
	c.CheckOut = timePtr(t0.Add(time.Hour))
	createVisits(t, s, a, b, c)
	for _, want := range []*registry.Visit{a, b, c} {
		got := findVisit(t, s, want.ID)
		if got.Site != want.Site || got.Area != want.Area || !got.CheckIn.Equal(want.CheckIn) ||
			got.Epoch != want.Epoch || !bytes.Equal(got.Sealed, want.Sealed) || !got.CreatedAt.Equal(want.CreatedAt) ||
			!equalTimePtr(got.CheckOut, want.CheckOut) || got.CheckoutAuto || got.Replayed {
			t.Errorf("FindVisit(%s) = %+v, want %+v", want.ID, got, want)
		}
		if !bytes.Equal(got.IdempotencyHash, want.IdempotencyHash) || !bytes.Equal(got.RequestMAC, want.RequestMAC) {
			t.Errorf("FindVisit(%s): idempotency hash/MAC differ from the stored ones", want.ID)
		}
		if got.CheckIn.Location() != time.UTC {
			t.Errorf("FindVisit(%s).CheckIn location = %v, want UTC", want.ID, got.CheckIn.Location())
		}
	}
	_, err := s.FindVisit(ctx, registry.NewID())
	wantCode(t, err, registry.ENOTFOUND)

	ev := wantEvents(t, s, registry.AuditVisitsRegistered, 1)[0]
	if got, want := ev.Details, `{"count":3,"sites":{"bibliothek":1,"rathaus":2}}`; got != want {
		t.Errorf("audit details = %s, want %s", got, want)
	}
	if ev.Actor != "token:intake" {
		t.Errorf("audit actor = %q, want token:intake", ev.Actor)
	}
	if err := s.CreateVisits(ctx, "token:intake", nil); err != nil {
		t.Errorf("CreateVisits(nil) = %v, want nil", err)
	}
	wantEvents(t, s, registry.AuditVisitsRegistered, 1)
}

func testIdempotentReplay(t *testing.T, s registry.Store) {
	first := newVisit("rathaus", "a", t0)
	first.IdempotencyHash, first.RequestMAC = []byte("hash-1"), []byte("mac-1")
	createVisits(t, s, first)

	// A retry of first, a new keyed visit and its retry in the same batch,
	// and a visit without a key.
	retry := newVisit("rathaus", "b", t0.Add(time.Hour))
	retry.IdempotencyHash, retry.RequestMAC = []byte("hash-1"), []byte("mac-other")
	second := newVisit("rathaus", "a", t0.Add(time.Minute))
	second.IdempotencyHash, second.RequestMAC = []byte("hash-2"), []byte("mac-2")
	secondRetry := newVisit("rathaus", "a", t0.Add(time.Minute))
	secondRetry.IdempotencyHash = []byte("hash-2")
	plain := newVisit("rathaus", "a", t0.Add(2*time.Minute))
	createVisits(t, s, retry, second, secondRetry, plain)

	tests := []struct {
		name         string
		got          *registry.Visit
		replayed     bool
		wantID       string
		wantMAC      []byte
		wantArea     string
		wantCheckIn  time.Time
		wantCreateAt time.Time
	}{
		{"retry", retry, true, first.ID, first.RequestMAC, "a", first.CheckIn, first.CreatedAt},
		{"second", second, false, second.ID, []byte("mac-2"), "a", second.CheckIn, second.CreatedAt},
		{"second retry in batch", secondRetry, true, second.ID, []byte("mac-2"), "a", second.CheckIn, second.CreatedAt},
		{"plain", plain, false, plain.ID, nil, "a", plain.CheckIn, plain.CreatedAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.got
			if v.Replayed != tt.replayed || v.ID != tt.wantID || !bytes.Equal(v.RequestMAC, tt.wantMAC) ||
				v.Area != tt.wantArea || !v.CheckIn.Equal(tt.wantCheckIn) || !v.CreatedAt.Equal(tt.wantCreateAt) {
				t.Errorf("got %+v, want Replayed=%v ID=%s MAC=%q", v, tt.replayed, tt.wantID, tt.wantMAC)
			}
		})
	}
	evs := wantEvents(t, s, registry.AuditVisitsRegistered, 2)
	if got, want := evs[1].Details, `{"count":2,"sites":{"rathaus":2}}`; got != want {
		t.Errorf("audit details = %s, want %s", got, want)
	}
	again := newVisit("rathaus", "", t0)
	again.IdempotencyHash = []byte("hash-1")
	createVisits(t, s, again)
	if !again.Replayed || again.ID != first.ID {
		t.Errorf("replay-only batch: Replayed=%v ID=%s, want true %s", again.Replayed, again.ID, first.ID)
	}
	wantEvents(t, s, registry.AuditVisitsRegistered, 2) // a replay alone is not an event
}

func testDuplicateVisitID(t *testing.T, s registry.Store) {
	a := newVisit("rathaus", "", t0)
	createVisits(t, s, a)
	b := newVisit("rathaus", "", t0)
	dup := newVisit("rathaus", "", t0)
	dup.ID = a.ID
	err := s.CreateVisits(context.Background(), "token:intake", []*registry.Visit{b, dup})
	wantCode(t, err, registry.ECONFLICT)
	_, err = s.FindVisit(context.Background(), b.ID)
	wantCode(t, err, registry.ENOTFOUND) // the failed batch stored nothing
	wantEvents(t, s, registry.AuditVisitsRegistered, 1)
}

func testConcurrentCreateVisits(t *testing.T, s registry.Store) {
	const workers, batches, size = 8, 10, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      []string
		sharedID = map[string]bool{}
		errs     = make(chan error, workers*batches)
	)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]*registry.Visit, size)
				for i := range batch {
					batch[i] = newVisit(fmt.Sprintf("site-%d", w), "", t0.Add(time.Duration(b*size+i)*time.Second))
				}
				// Every worker retries the same keyed visit.
				batch[0].IdempotencyHash = []byte(fmt.Sprintf("shared-%d", b))
				if err := s.CreateVisits(context.Background(), "token:intake", batch); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for i, v := range batch {
					if i == 0 {
						sharedID[v.ID] = true
					}
					if !v.Replayed {
						ids = append(ids, v.ID)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent CreateVisits() = %v", err)
	}
	if got, want := len(sharedID), batches; got != want {
		t.Errorf("%d distinct ids for %d shared idempotency keys, want %d", got, batches, want)
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

func testCheckoutKey(t *testing.T, s registry.Store) {
	ctx := context.Background()
	keys := make([][]byte, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := s.CheckoutKey(ctx)
			if err != nil {
				t.Errorf("CheckoutKey() = %v", err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	again, err := s.CheckoutKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 32 || bytes.Equal(again, make([]byte, 32)) {
		t.Fatalf("CheckoutKey() = %d bytes %x, want 32 random bytes", len(again), again)
	}
	for i, k := range keys {
		if !bytes.Equal(k, again) {
			t.Errorf("call %d returned another key", i)
		}
	}
}
