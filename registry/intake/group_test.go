package intake_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake"
	"github.com/cityhall/registry/registry/intake/intaketest"
)

// family returns companions with names unique to tag; the second has a
// phone of their own, the others share the registrant's address and phone.
func family(tag string, n int) []intake.Companion {
	out := make([]intake.Companion, n)
	for i := range out {
		out[i] = intake.Companion{GivenName: fmt.Sprintf("Kid%d%s", i, tag), FamilyName: "Family" + tag}
		if i == 1 {
			out[i].Phone = "+49 151 7654321"
			out[i].Email = "kid@example.org"
		}
	}
	return out
}

func TestRegisterGroup(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	reg := intaketest.Registration("fam")
	companions := family("fam", 2)
	res, err := env.Service.RegisterGroup(t.Context(), tok, reg, companions, "", nil)
	if err != nil {
		t.Fatalf("RegisterGroup: %v", err)
	}
	if len(res.Companions) != 2 || res.Replayed {
		t.Fatalf("result has %d companions, replayed %v; want 2, false", len(res.Companions), res.Replayed)
	}
	wantVisits(t, env.Store, 3)
	members := append([]intake.Stored{res.Stored}, res.Companions...)
	for i, m := range members {
		v, c, err := env.Open(t, m.Visit.ID)
		if err != nil {
			t.Fatalf("open visit %d: %v", i, err)
		}
		want := reg.Contact(m.Visit.ID) // the registrant, bound to this visit
		if i > 0 {
			co := companions[i-1]
			want.GivenName, want.FamilyName, want.Email = co.GivenName, co.FamilyName, co.Email
			if co.Phone != "" {
				want.Phone = co.Phone
			}
		}
		if *c != *want {
			t.Errorf("visit %d opens to another contact than person %d", i, i)
		}
		if v.Site != reg.Site || v.Area != reg.Area || !v.CheckIn.Equal(*reg.CheckIn) {
			t.Errorf("visit %d: site %q area %q check-in %v, want the registrant's", i, v.Site, v.Area, v.CheckIn)
		}
	}
	env.Clock.Add(time.Hour)
	if err := env.Service.CheckOut(t.Context(), res.Companions[1].Visit.ID, res.Companions[1].CheckoutToken, nil); err != nil {
		t.Fatalf("check out a companion with its own token: %v", err)
	}
	err = env.Service.CheckOut(t.Context(), res.Companions[0].Visit.ID, res.CheckoutToken, nil)
	wantCode(t, err, registry.EUNAUTHORIZED, "")
}

func TestRegisterGroupRefuses(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	tests := []struct {
		name  string
		edit  func([]intake.Companion) []intake.Companion
		field string
	}{
		{"missing family name", func(cs []intake.Companion) []intake.Companion { cs[1].FamilyName = " "; return cs }, "companions/1/family_name"},
		{"bad phone", func(cs []intake.Companion) []intake.Companion { cs[0].Phone = "call me"; return cs }, "companions/0/phone"},
		{"bad email", func(cs []intake.Companion) []intake.Companion { cs[1].Email = "nope"; return cs }, "companions/1/email"},
		{"too long postcode", func(cs []intake.Companion) []intake.Companion { cs[0].Postcode = "1234567890123"; return cs }, "companions/0/postcode"},
		{"ten companions", func([]intake.Companion) []intake.Companion { return family("ten", intake.MaxCompanions+1) }, "companions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Service.RegisterGroup(t.Context(), tok, intaketest.Registration("bad"), tt.edit(family("bad", 2)), "k-"+tt.name, []byte(tt.name))
			wantCode(t, err, registry.EINVALID, tt.field)
			if bytes.Contains([]byte(registry.ErrorMessage(err)), []byte("call me")) {
				t.Errorf("message %q echoes the value", registry.ErrorMessage(err))
			}
		})
	}
	wantVisits(t, env.Store, 0)
	t.Run("nine companions", func(t *testing.T) {
		res, err := env.Service.RegisterGroup(t.Context(), tok, intaketest.Registration("nine"), family("nine", intake.MaxCompanions), "", nil)
		if err != nil || len(res.Companions) != intake.MaxCompanions {
			t.Fatalf("RegisterGroup = %v; want %d companions", err, intake.MaxCompanions)
		}
		wantVisits(t, env.Store, 1+intake.MaxCompanions)
	})
}

func TestRegisterGroupIdempotency(t *testing.T) {
	env := intaketest.New(t, newSQLite(t), intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	register := func(key, body string, n int) (*intake.Result, error) {
		return env.Service.RegisterGroup(t.Context(), tok, intaketest.Registration("idem"), family("idem", n), key, []byte(body))
	}
	first, err := register("g-1", "group body", 2)
	if err != nil {
		t.Fatalf("first RegisterGroup: %v", err)
	}
	single, err := register("s-1", "single body", 0)
	if err != nil {
		t.Fatalf("single Register: %v", err)
	}
	env.Clock.Add(time.Minute)

	t.Run("replay", func(t *testing.T) {
		again, err := register("g-1", "group body", 2)
		if err != nil {
			t.Fatalf("replayed RegisterGroup: %v", err)
		}
		if !again.Replayed || fmt.Sprint(tokens(again)) != fmt.Sprint(tokens(first)) {
			t.Errorf("replay = %v replayed=%v, want %v replayed=true", tokens(again), again.Replayed, tokens(first))
		}
	})
	refusals := []struct {
		name, key, body string
		n               int
	}{
		{"group key, other body", "g-1", "other body", 2},
		{"group key, larger group", "g-1", "larger body", 4},
		{"single key, now a group", "s-1", "group now", 3},
		{"group key, now single", "g-1", "single now", 0},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := register(tt.key, tt.body, tt.n)
			wantCode(t, err, registry.ECONFLICT, "")
		})
	}
	wantVisits(t, env.Store, 4)
	if single.Visit.ID == first.Visit.ID {
		t.Error("two keys gave one visit id")
	}
}

// tokens lists the ids and checkout tokens of a result.
func tokens(r *intake.Result) []string {
	out := []string{r.Visit.ID, r.CheckoutToken}
	for _, c := range r.Companions {
		out = append(out, c.Visit.ID, c.CheckoutToken)
	}
	return out
}

// TestGroupCommitsAtomically queues, behind a held transaction, a family
// one of whose companions the store refuses, a single visitor and another
// family: the batch fails, and the retry stores each registration alone,
// each family in one transaction: nothing of the first family is stored,
// everything of the others is.
func TestGroupCommitsAtomically(t *testing.T) {
	store := gated(newSQLite(t))
	env := intaketest.New(t, store, intaketest.Options{})
	_, tok := env.Token(t, registry.RoleIntake, "")
	poison := env.Secret.KeyedVisitID(intaketest.Start, tok.ID, "badfam", 2)
	store.fail = func(v *registry.Visit) bool { return v.ID == poison }
	var wg sync.WaitGroup
	errs := make([]error, 4)
	register := func(i int, key string, n int) {
		wg.Go(func() {
			_, errs[i] = env.Service.RegisterGroup(context.Background(), tok, intaketest.Registration(key), family(key, n), key, []byte(key))
		})
	}
	register(0, "first", 0)
	<-store.entered
	register(1, "badfam", 2)
	waitQueued(t, env.Service, 1)
	register(2, "single", 0)
	waitQueued(t, env.Service, 2)
	register(3, "goodfam", 1)
	waitQueued(t, env.Service, 3)
	close(store.gate)
	wg.Wait()
	for i, err := range errs {
		if got, want := err != nil, i == 1; got != want {
			t.Errorf("registration %d error = %v, want error: %v", i, err, want)
		}
	}
	sizes, _ := store.calls()
	if got, want := fmt.Sprint(sizes), "[1 6 3 1 2]"; got != want {
		t.Errorf("CreateParties batch sizes = %s, want %s", got, want)
	}
	wantVisits(t, env.Store, 4)
	if st := env.Service.Stats(); st.Registered != 4 || st.Failed != 1 || st.BatchesRetried != 1 {
		t.Errorf("Stats = %+v, want 4 registered, 1 failed, 1 batch retried", st)
	}
}

// TestBatchKeepsGroupsWhole checks that a group that would overflow
// MaxBatch starts the next batch instead of being split.
func TestBatchKeepsGroupsWhole(t *testing.T) {
	store := gated(newSQLite(t))
	env := intaketest.New(t, store, intaketest.Options{MaxBatch: 4})
	_, tok := env.Token(t, registry.RoleIntake, "")
	var wg sync.WaitGroup
	register := func(tag string, n int) {
		wg.Go(func() {
			if _, err := env.Service.RegisterGroup(context.Background(), tok, intaketest.Registration(tag), family(tag, n), "", nil); err != nil {
				t.Errorf("RegisterGroup %s: %v", tag, err)
			}
		})
	}
	register("a", 0)
	<-store.entered
	register("b", 2)
	waitQueued(t, env.Service, 1)
	register("c", 2)
	waitQueued(t, env.Service, 2)
	register("d", 0)
	waitQueued(t, env.Service, 3)
	close(store.gate)
	wg.Wait()
	sizes, _ := store.calls()
	if got, want := fmt.Sprint(sizes), "[1 3 4]"; got != want {
		t.Errorf("CreateParties batch sizes = %s, want %s", got, want)
	}
	wantVisits(t, env.Store, 8)
}

// BenchmarkRegisterFamily measures registrations of a family of three
// (registrant and two companions) by 8 concurrent callers on a SQLite
// file: three sealings and one keyed look-up per registration, the three
// visits in one commit.
func BenchmarkRegisterFamily(b *testing.B) {
	env := intaketest.New(b, newSQLite(b), intaketest.Options{})
	_, tok := env.Token(b, registry.RoleIntake, "")
	var n atomic.Int64
	b.SetParallelism(max(1, 8/ncpu()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			tag := fmt.Sprint("f", i)
			if _, err := env.Service.RegisterGroup(context.Background(), tok, intaketest.Registration(tag), family(tag, 2), "k"+tag, []byte(tag)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "families/s")
	b.ReportMetric(float64(3*b.N)/b.Elapsed().Seconds(), "visits/s")
}
