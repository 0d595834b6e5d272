package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

// Site returns a valid site of the code for tests.
func Site(code string) *registry.Site {
	return &registry.Site{
		Code: code, Name: "Rathaus " + strings.ToUpper(code[:1]) + code[1:], Address: "Markt 1, 50667 Köln",
		Areas: []registry.Area{{Name: "Bürgerbüro", Capacity: 2}, {Name: "Standesamt"}}, Capacity: 5,
		Opens: "08:00", Closes: "18:00", SelfCheckin: true, FullNotice: true,
		Controller: "Stadt Köln, Der Oberbürgermeister, Markt 1, 50667 Köln", DPOContact: "datenschutz@stadt.example",
	}
}

func testSites(t *testing.T, s registry.Store) {
	ctx := context.Background()
	site := Site("rathaus")
	if err := s.PutSite(ctx, "dpo:it", site, true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.PutSite(ctx, "dpo:it", Site("rathaus"), true), registry.ECONFLICT)
	wantCode(t, s.PutSite(ctx, "dpo:it", Site("nirgends"), false), registry.ENOTFOUND)
	bad := Site("rathaus")
	bad.Name, bad.Closes, bad.Areas = "", "25:00", append(bad.Areas, registry.Area{Name: "Standesamt"})
	err := s.PutSite(ctx, "dpo:it", bad, false)
	if fields := registry.ErrorFields(err); len(fields) != 3 {
		t.Errorf("PutSite(bad) fields = %v, want name, areas and closes", fields)
	}
	got, err := s.Site(ctx, "rathaus")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != site.Name || fmt.Sprint(got.Areas) != fmt.Sprint(site.Areas) || got.Closes != "18:00" || !got.SelfCheckin || got.CreatedAt.IsZero() {
		t.Errorf("Site = %+v, want %+v", got, site)
	}
	got.Name, got.SelfCheckin = "Rathaus am Markt", false
	if err := s.PutSite(ctx, "dpo:it", got, false); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSite(ctx, "dpo:it", Site("bauamt"), true); err != nil {
		t.Fatal(err)
	}
	sites, err := s.Sites(ctx)
	if err != nil || len(sites) != 2 || sites[0].Code != "bauamt" || sites[1].Name != "Rathaus am Markt" || sites[1].SelfCheckin {
		t.Errorf("Sites = %v, %v", sites, err)
	}
	if err := s.RemoveSite(ctx, "dpo:it", "bauamt"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RemoveSite(ctx, "dpo:it", "bauamt"), registry.ENOTFOUND)
	_, err = s.Site(ctx, "bauamt")
	wantCode(t, err, registry.ENOTFOUND)
	evs := wantEvents(t, s, registry.AuditSiteChanged, 4)
	for i, want := range []string{"created", "updated", "created", "removed"} {
		if d := details(t, evs[i]); d["change"] != want || evs[i].Actor != "dpo:it" {
			t.Errorf("site event %d = %s by %s, want %s", i, evs[i].Details, evs[i].Actor, want)
		}
	}
}

// User returns a valid desk account of the login for tests.
func User(login string, sites ...string) *registry.User {
	return &registry.User{Login: login, Name: "Frau " + login, Role: registry.UserDesk, Sites: sites, PasswordHash: "$argon2id$test"}
}

func testUsers(t *testing.T, s registry.Store) {
	ctx := context.Background()
	u := User("pforte1", "rathaus", "bauamt")
	u.MustChange = true
	if err := s.CreateUser(ctx, "dpo:it", u); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateUser(ctx, "dpo:it", User("pforte1", "rathaus")), registry.ECONFLICT)
	for _, login := range []string{"Pforte1", "pforte 1", "p", "pfоrte", "1pforte", "pforte\u200b"} {
		if err := s.CreateUser(ctx, "dpo:it", User(login, "rathaus")); registry.ErrorField(err) != "login" {
			t.Errorf("CreateUser(%q) = %v, want EINVALID login", login, err)
		}
	}
	// A name that looks like another account's is refused.
	for _, name := range []string{"Frau pforte1", "FRAU PFORTE1", "Frau pf\u043erte1"} {
		look := User("pforte9", "rathaus")
		look.Name = name
		if err := s.CreateUser(ctx, "dpo:it", look); registry.ErrorField(err) != "name" {
			t.Errorf("CreateUser(name %q, like Frau pforte1) = %v, want EINVALID name", name, err)
		}
	}
	got, err := s.User(ctx, "pforte1")
	if err != nil || got.Name != "Frau pforte1" || fmt.Sprint(got.Sites) != "[rathaus bauamt]" || !got.MustChange || got.Role != registry.UserDesk {
		t.Fatalf("User = %+v, %v", got, err)
	}
	_, err = s.User(ctx, "nobody")
	wantCode(t, err, registry.ENOTFOUND)

	// Failed sign-ins lock the account at the limit; the lock is audited.
	now := t0
	for i := 1; i < registry.MaxFailedSignIns; i++ {
		if u, err := s.RecordSignIn(ctx, "pforte1", false, now); err != nil || u.FailedSignIns != i || u.Locked(now) {
			t.Fatalf("failure %d: %+v, %v", i, u, err)
		}
	}
	locked, err := s.RecordSignIn(ctx, "pforte1", false, now)
	if err != nil || !locked.Locked(now) || locked.Locked(now.Add(registry.LockoutPeriod)) {
		t.Fatalf("after %d failures: locked until %v, %v; want locked for %v", registry.MaxFailedSignIns, locked.LockedUntil, err, registry.LockoutPeriod)
	}
	if ok, err := s.RecordSignIn(ctx, "pforte1", true, now.Add(registry.LockoutPeriod)); err != nil || ok.FailedSignIns != 0 || ok.LockedUntil != nil {
		t.Errorf("good sign-in: %+v, %v; want the failures reset", ok, err)
	}

	// A new password or disabling ends the account's sessions.
	sess := &registry.Session{Hash: []byte("0123456789abcdef0123456789abcdef"), Login: "pforte1", CreatedAt: now, LastSeen: now}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got.PasswordHash, got.MustChange = "$argon2id$new", false
	if err := s.UpdateUser(ctx, "user:pforte1", got, "password"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Session(ctx, sess.Hash)
	wantCode(t, err, registry.ENOTFOUND)
	if err := s.CreateUser(ctx, "dpo:it", User("pforte2", "rathaus")); err != nil {
		t.Fatal(err)
	}
	users, err := s.Users(ctx)
	if err != nil || len(users) != 2 || users[0].Login != "pforte1" || users[0].PasswordHash != "$argon2id$new" {
		t.Errorf("Users = %v, %v", users, err)
	}
	if err := s.RemoveUser(ctx, "dpo:it", "pforte2"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RemoveUser(ctx, "dpo:it", "pforte2"), registry.ENOTFOUND)

	// The log names accounts by commitment only, never by login or name.
	evs := wantEvents(t, s, registry.AuditUserChanged, 5)
	for i, want := range []string{"created", "locked", "updated", "created", "removed"} {
		e := evs[i]
		if d := details(t, e); d["change"] != want || !strings.HasPrefix(e.Subject, "actor:") ||
			strings.Contains(e.Details+e.Subject, "pforte") || strings.Contains(e.Details, "Frau") {
			t.Errorf("account event %d = %s %s, want %s naming the account by commitment only", i, e.Subject, e.Details, want)
		}
	}
	if evs[0].Subject == evs[3].Subject || evs[0].Subject != evs[1].Subject {
		t.Errorf("subjects %s, %s, %s: want one per account", evs[0].Subject, evs[1].Subject, evs[3].Subject)
	}
}

func testSessions(t *testing.T, s registry.Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, "dpo:it", User("pforte1", "rathaus")); err != nil {
		t.Fatal(err)
	}
	_, hash := registry.NewSessionSecret()
	old := &registry.Session{Hash: []byte("old-session-hash-0123456789abcde"), Login: "pforte1", CreatedAt: t0, LastSeen: t0}
	if err := s.CreateSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(registry.SessionIdle)
	sess := &registry.Session{Hash: hash, Login: "pforte1", CreatedAt: later, LastSeen: later}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	// Creating a session deletes the expired ones.
	_, err := s.Session(ctx, old.Hash)
	wantCode(t, err, registry.ENOTFOUND)
	if err := s.TouchSession(ctx, hash, later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, hash)
	if err != nil || !bytes.Equal(got.Hash, hash) || got.Login != "pforte1" || !got.LastSeen.Equal(later.Add(time.Minute)) || !got.CreatedAt.Equal(later) {
		t.Fatalf("Session = %+v, %v", got, err)
	}
	if got.Expired(later.Add(time.Minute+registry.SessionIdle-time.Second)) || !got.Expired(later.Add(time.Minute+registry.SessionIdle)) {
		t.Errorf("session idle rule wrong")
	}
	if err := s.DeleteSession(ctx, hash); err != nil {
		t.Fatal(err)
	}
	_, err = s.Session(ctx, hash)
	wantCode(t, err, registry.ENOTFOUND)
	wantCode(t, s.DeleteSession(ctx, hash), "")
}
