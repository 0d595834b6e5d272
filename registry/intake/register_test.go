package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/intake/intaketest"
)

func TestRegisterSealsAndStores(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	reg := intaketest.Registration("seal1")
	want := *reg
	res, err := env.Service.Register(t.Context(), tok, reg, "", nil)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if res.Replayed {
		t.Errorf("Replayed = true, want false")
	}
	v, c, err := env.Open(t, res.Visit.ID)
	if err != nil {
		t.Fatalf("open stored visit: %v", err)
	}
	now := env.Clock.Now()
	if !v.CheckIn.Equal(now) || v.Epoch != registry.DayOf(now) || v.Site != want.Site || v.Area != want.Area {
		t.Errorf("stored visit = %v check-in %v, want site %s area %s check-in %v", v, v.CheckIn, want.Site, want.Area, now)
	}
	if c.GivenName != want.GivenName || c.Phone != want.Phone || c.Email != want.Email || c.Appointment != want.Appointment {
		t.Errorf("opened contact differs from the registration")
	}
	if day, ok := registry.VisitDay(v.ID); !ok || day != v.Epoch {
		t.Errorf("visit id %s names day %s, want its check-in day %s", v.ID, day, v.Epoch)
	}
}

func TestRegisterRefuses(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, intakeTok := env.Token(t, registry.RoleIntake, "")
	_, siteTok := env.Token(t, registry.RoleIntake, "stadthaus")
	_, officeTok := env.Token(t, registry.RoleHealthOffice, "")
	revoked := *intakeTok
	revoked.RevokedAt = new(env.Clock.Now())
	tests := []struct {
		name  string
		tok   *registry.Token
		edit  func(*registry.Registration)
		code  string
		field string
	}{
		{"no token", nil, nil, registry.EUNAUTHORIZED, ""},
		{"revoked token", &revoked, nil, registry.EUNAUTHORIZED, ""},
		{"health-office token", officeTok, nil, registry.EFORBIDDEN, ""},
		{"site-bound token, other site", siteTok, nil, registry.EFORBIDDEN, "site"},
		{"missing phone", intakeTok, func(r *registry.Registration) { r.Phone = "" }, registry.EINVALID, "phone"},
		{"bad site", intakeTok, func(r *registry.Registration) { r.Site = "Rathaus!" }, registry.EINVALID, "site"},
		{"check-in in the future", intakeTok, func(r *registry.Registration) { r.CheckIn = new(env.Clock.Now().Add(time.Hour)) }, registry.EINVALID, "check_in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := intaketest.Registration("refuse")
			if tt.edit != nil {
				tt.edit(reg)
			}
			_, err := env.Service.Register(t.Context(), tt.tok, reg, "", nil)
			wantCode(t, err, tt.code, tt.field)
		})
	}
	wantVisits(t, env.Store, 0)
	t.Run("site-bound token, own site", func(t *testing.T) {
		reg := intaketest.Registration("own")
		reg.Site = "stadthaus"
		if _, err := env.Service.Register(t.Context(), siteTok, reg, "", nil); err != nil {
			t.Fatalf("Register: %v", err)
		}
		wantVisits(t, env.Store, 1)
	})
}

func TestRegisterWithoutEpochKey(t *testing.T) {
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	env := intaketest.New(t, newSQLite(t), intaketest.Options{NoEpochKey: true, Logger: logger})
	_, tok := env.Token(t, registry.RoleIntake, "")
	reg := intaketest.Registration("nokey")
	_, err := env.Service.Register(t.Context(), tok, reg, "k1", []byte("{}"))
	wantCode(t, err, registry.EUNAVAILABLE, "")
	day := string(registry.DayOf(env.Clock.Now()))
	if got, want := registry.ErrorMessage(err), "no epoch key for "+day; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	wantVisits(t, env.Store, 0)
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), day) {
		t.Errorf("log = %q, want an error line naming %s", log.String(), day)
	}
	if strings.Contains(log.String(), "nokey") {
		t.Errorf("log %q holds contact data", log.String())
	}

	// The operator creates the key: the next registration works (nothing
	// negative was cached).
	env.AddEpochKey(t, registry.DayOf(env.Clock.Now()))
	if _, err := env.Service.Register(t.Context(), tok, intaketest.Registration("nokey"), "k1", []byte("{}")); err != nil {
		t.Fatalf("Register after key creation: %v", err)
	}
	wantVisits(t, env.Store, 1)
}

func TestRegisterIdempotency(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	_, other := env.Token(t, registry.RoleIntake, "")
	body := []byte(`{"the":"body"}`)
	first, err := env.Service.Register(t.Context(), tok, intaketest.Registration("idem"), "key-1", body)
	if err != nil {
		t.Fatalf("first Register: %v", err)
	}
	env.Clock.Add(time.Minute)

	t.Run("replay", func(t *testing.T) {
		again, err := env.Service.Register(t.Context(), tok, intaketest.Registration("idem"), "key-1", body)
		if err != nil {
			t.Fatalf("replayed Register: %v", err)
		}
		if !again.Replayed || again.Visit.ID != first.Visit.ID || again.CheckoutToken != first.CheckoutToken {
			t.Errorf("replay = {%s %s replayed=%v}, want {%s %s replayed=true}",
				again.Visit.ID, again.CheckoutToken, again.Replayed, first.Visit.ID, first.CheckoutToken)
		}
		if !again.Visit.CheckIn.Equal(first.Visit.CheckIn) {
			t.Errorf("replay check-in = %v, want the first's %v", again.Visit.CheckIn, first.Visit.CheckIn)
		}
	})
	t.Run("same key, other body", func(t *testing.T) {
		_, err := env.Service.Register(t.Context(), tok, intaketest.Registration("idem"), "key-1", []byte(`{"the":"other"}`))
		wantCode(t, err, registry.ECONFLICT, "")
	})
	t.Run("same key, other token", func(t *testing.T) {
		res, err := env.Service.Register(t.Context(), other, intaketest.Registration("idem"), "key-1", body)
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		if res.Replayed || res.Visit.ID == first.Visit.ID {
			t.Errorf("another token's key replayed visit %s, want a new visit", res.Visit.ID)
		}
	})
	wantVisits(t, env.Store, 2)
	if got := env.Service.Stats().Replayed; got != 2 {
		t.Errorf("Stats.Replayed = %d, want 2", got)
	}
}

func TestRegisterConcurrentGroupCommit(t *testing.T) {
	store := gated(newSQLite(t))
	env := intaketest.New(t, store, intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	const n = 100
	results, errs := make([]*intake.Result, n), make([]error, n)
	var wg sync.WaitGroup
	register := func(i int) {
		results[i], errs[i] = env.Service.Register(context.Background(), tok, intaketest.Registration(fmt.Sprint("c", i)), fmt.Sprint("key-", i), []byte{byte(i)})
	}
	wg.Go(func() { register(0) })
	<-store.entered // the committer holds visit 0 in a transaction
	for i := 1; i < n; i++ {
		wg.Go(func() { register(i) })
	}
	waitQueued(t, env.Service, n-1)
	close(store.gate)
	wg.Wait()

	ids := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Register %d: %v", i, err)
		}
		ids[results[i].Visit.ID] = true
	}
	if len(ids) != n {
		t.Errorf("distinct ids = %d, want %d", len(ids), n)
	}
	sizes, actors := store.calls()
	if fmt.Sprint(sizes) != "[1 99]" {
		t.Errorf("CreateParties batch sizes = %v, want [1 99]", sizes)
	}
	for _, a := range actors {
		if a != tok.Actor() {
			t.Errorf("batch actor = %q, want the token's %q", a, tok.Actor())
		}
	}
	wantVisits(t, env.Store, n)
	st := env.Service.Stats()
	if st.Registered != n || st.Batches != 2 || st.BatchSizeSum != n {
		t.Errorf("Stats = %+v, want %d registered in 2 batches", st, n)
	}
}

func TestRegisterConcurrentUngated(t *testing.T) {
	store := &countingStore{Store: newSQLite(t)}
	env := intaketest.New(t, store, intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = env.Service.Register(context.Background(), tok, intaketest.Registration(fmt.Sprint("u", i)), "", nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Register: %v", err)
	}
	wantVisits(t, env.Store, n)
	sizes, _ := store.calls()
	sum := 0
	for _, s := range sizes {
		sum += s
	}
	if sum != n {
		t.Errorf("visits over all batches = %d, want %d", sum, n)
	}
	t.Logf("%d visits in %d transactions: %v", n, len(sizes), sizes)
}

// TestBatchAuditsEachActor: a batch holding the registrations of two
// tokens writes one audit event per token, each naming its own actor.
func TestBatchAuditsEachActor(t *testing.T) {
	store := gated(newSQLite(t))
	env := intaketest.New(t, store, intaketest.Options{})
	_, a := env.Token(t, registry.RoleIntake, "")
	_, b := env.Token(t, registry.RoleIntake, "")
	var wg sync.WaitGroup
	wg.Go(func() { env.Service.Register(context.Background(), a, intaketest.Registration("a0"), "", nil) })
	<-store.entered
	wg.Go(func() { env.Service.Register(context.Background(), a, intaketest.Registration("a1"), "", nil) })
	wg.Go(func() { env.Service.Register(context.Background(), b, intaketest.Registration("b1"), "", nil) })
	waitQueued(t, env.Service, 2)
	close(store.gate)
	wg.Wait()
	if sizes, _ := store.calls(); fmt.Sprint(sizes) != "[1 2]" {
		t.Fatalf("batch sizes = %v, want [1 2]", sizes)
	}
	events, err := env.Store.AuditEvents(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events {
		if ev.Action == registry.AuditVisitsRegistered {
			var p registry.VisitsRegistered
			if err := json.Unmarshal([]byte(ev.Details), &p); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s:%d", ev.Actor, p.Count))
		}
	}
	want := []string{string(a.Actor()) + ":1", string(a.Actor()) + ":1", string(b.Actor()) + ":1"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("registration events = %v, want %v", got, want)
	}
}

func TestFailedBatchRetriesAlone(t *testing.T) {
	store := gated(newSQLite(t))
	store.fail = func(v *registry.Visit) bool { return v.Site == "poison" }
	env := intaketest.New(t, store, intaketest.Options{})
	env.PutSite(t, &registry.Site{Code: "poison", Name: "Poison"})
	_, tok := env.Token(t, registry.RoleIntake, "")
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	register := func(i int) {
		reg := intaketest.Registration(fmt.Sprint("r", i))
		if i == 3 {
			reg.Site = "poison"
		}
		_, errs[i] = env.Service.Register(context.Background(), tok, reg, "", nil)
	}
	wg.Go(func() { register(0) })
	<-store.entered
	for i := 1; i < n; i++ {
		wg.Go(func() { register(i) })
	}
	waitQueued(t, env.Service, n-1)
	close(store.gate)
	wg.Wait()
	for i, err := range errs {
		if got, want := err != nil, i == 3; got != want {
			t.Errorf("Register %d error = %v, want error: %v", i, err, want)
		}
	}
	sizes, _ := store.calls()
	if fmt.Sprint(sizes) != "[1 5 1 1 1 1 1]" {
		t.Errorf("CreateParties batch sizes = %v, want [1 5 1 1 1 1 1]", sizes)
	}
	wantVisits(t, env.Store, n-1)
	if st := env.Service.Stats(); st.BatchesRetried != 1 || st.Failed != 1 {
		t.Errorf("Stats = %+v, want 1 batch retried and 1 failure", st)
	}
}

func TestCancelledCallerStillCommitted(t *testing.T) {
	store := gated(newSQLite(t))
	env := intaketest.New(t, store, intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	var wg sync.WaitGroup
	wg.Go(func() { env.Service.Register(context.Background(), tok, intaketest.Registration("first"), "", nil) })
	<-store.entered
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	wg.Go(func() { _, err = env.Service.Register(ctx, tok, intaketest.Registration("gone"), "k", nil) })
	waitQueued(t, env.Service, 1)
	cancel()
	close(store.gate)
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Register error = %v, want context.Canceled", err)
	}
	if err := env.Service.Close(); err != nil { // drains
		t.Fatal(err)
	}
	wantVisits(t, env.Store, 2)
}

func TestClose(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	if !env.Service.Running() {
		t.Fatal("Running = false after Start")
	}
	if err := env.Service.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := env.Service.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := env.Service.Register(t.Context(), tok, intaketest.Registration("late"), "", nil)
	wantCode(t, err, registry.EUNAVAILABLE, "")
	if env.Service.Running() {
		t.Error("Running = true after Close")
	}
	wantVisits(t, env.Store, 0)
}
