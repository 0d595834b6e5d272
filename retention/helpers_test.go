package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/sqlite"
	"github.com/cityhall/registry/retention"
)

// lockedBuffer is a log sink safe for the Run goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is one registry: a store, a key store, the health office's key
// pair and a purger on an injected clock.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  registry.Store
	keys   *crypto.KeyStore
	sealer *crypto.Sealer
	office []age.Identity
	clock  *intaketest.Clock
	logs   *lockedBuffer
	purger *retention.Purger
}

// opener opens a fresh, empty store for a test and closes it on cleanup.
type opener func(t *testing.T) registry.Store

// openSQLite opens a store in a new SQLite file.
func openSQLite(t *testing.T) registry.Store {
	t.Helper()
	s, _ := openSQLiteAt(t, filepath.Join(t.TempDir(), "registry.db"))
	return s
}

func openSQLiteAt(t *testing.T, path string) (registry.Store, string) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// newEnv returns a registry on the store, with the clock at start.
func newEnv(t *testing.T, store registry.Store, start time.Time) *env {
	t.Helper()
	dir := t.TempDir()
	officeKey := filepath.Join(dir, "office.key")
	recipient, err := crypto.WriteIdentityFile(officeKey, crypto.Hybrid, start)
	if err != nil {
		t.Fatalf("WriteIdentityFile: %v", err)
	}
	office, err := crypto.ReadIdentities(officeKey)
	if err != nil {
		t.Fatalf("ReadIdentities: %v", err)
	}
	recipients, err := crypto.ParseRecipients(strings.NewReader(recipient + "\n"))
	if err != nil {
		t.Fatalf("ParseRecipients: %v", err)
	}
	keys, err := crypto.OpenKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	e := &env{t: t, ctx: context.Background(), store: store, keys: keys, sealer: crypto.NewSealer(recipients),
		office: office, clock: intaketest.NewClock(start), logs: &lockedBuffer{}}
	setStoreClock(store, e.clock.Now)
	e.purger = &retention.Purger{
		Store: store, Keys: keys, Policy: retention.DefaultPolicy(), Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	return e
}

// ensureKeysAt runs EnsureKeys with the clock at t.
func (e *env) ensureKeysAt(t time.Time) []registry.Day {
	e.t.Helper()
	e.clock.Set(t)
	created, _, err := e.purger.EnsureKeys(e.ctx, "dpo:test")
	if err != nil {
		e.t.Fatalf("EnsureKeys at %s: %v", t, err)
	}
	return created
}

// visit is a registered visit with the contact sealed in it.
type visit struct {
	*registry.Visit
	contact *registry.Contact
}

// register seals a contact with the day's public key from the store, as
// intake does, and stores the visit; closed visits are checked out an
// hour later.
func (e *env) register(checkIn time.Time, closed bool) *visit {
	e.t.Helper()
	return e.registerAt("rathaus", checkIn, closed)
}

// registerAt is register for another site.
func (e *env) registerAt(site string, checkIn time.Time, closed bool) *visit {
	e.t.Helper()
	checkIn = checkIn.UTC()
	id := registry.NewVisitID(checkIn)
	c := &registry.Contact{
		Version: registry.ContactVersion, GivenName: "Jürgen", FamilyName: "Müller-" + id[:6],
		Street: "Marktplatz", HouseNumber: "1a", Postcode: "59494", City: "Soest",
		Phone: "+49 2921 1234", Email: "j@example.org", Host: "Bürgerbüro",
		VisitID: id, Site: site, CheckIn: checkIn,
	}
	key, err := e.store.EpochKey(e.ctx, registry.DayOf(checkIn))
	if err != nil {
		e.t.Fatalf("epoch key of %s: %v", registry.DayOf(checkIn), err)
	}
	sealed, err := e.sealer.Seal(c, key.Recipient)
	if err != nil {
		e.t.Fatalf("Seal: %v", err)
	}
	v := &registry.Visit{ID: id, Site: site, Area: "2.OG", CheckIn: checkIn, Epoch: registry.DayOf(checkIn), Sealed: sealed}
	if err := e.store.CreateParties(e.ctx, []*registry.Party{{Actor: registry.TokenActor("intake1"), Visits: []*registry.Visit{v}}}); err != nil {
		e.t.Fatalf("CreateParties: %v", err)
	}
	if closed {
		d := &registry.Departure{ID: id, At: checkIn.Add(time.Hour)}
		if err := e.store.CheckOutVisits(e.ctx, registry.ActorVisitor, []*registry.Departure{d}); err != nil || d.Err != nil {
			e.t.Fatalf("CheckOutVisits: %v, %v", err, d.Err)
		}
	}
	return &visit{Visit: v, contact: c}
}

// purge runs a purge at now and fails the test on error.
func (e *env) purge(now time.Time, o retention.Options) *registry.PurgeReport {
	e.t.Helper()
	e.clock.Set(now)
	r, err := e.purger.Purge(e.ctx, o)
	if err != nil {
		e.t.Fatalf("Purge at %s: %v", now, err)
	}
	return r
}

// find returns the stored visit, or nil when it is gone.
func (e *env) find(id string) *registry.Visit {
	e.t.Helper()
	return findIn(e.t, e.store, id)
}

func findIn(t *testing.T, s registry.Store, id string) *registry.Visit {
	t.Helper()
	v, err := s.FindVisit(context.Background(), id)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil
	} else if err != nil {
		t.Fatalf("FindVisit: %v", err)
	}
	return v
}

// keyFile reports whether the day's private key file exists.
func (e *env) keyFile(d registry.Day) bool {
	e.t.Helper()
	_, err := os.Stat(filepath.Join(e.keys.Dir, "epoch-"+string(d)+".age"))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatalf("stat key file: %v", err)
	}
	return err == nil
}

func (e *env) keyDays() []registry.Day {
	e.t.Helper()
	days, err := e.keys.Days()
	if err != nil {
		e.t.Fatalf("Days: %v", err)
	}
	return days
}

// auditActions returns the actions of the whole audit log.
func (e *env) auditActions() []string {
	e.t.Helper()
	events, err := e.store.AuditEvents(e.ctx, 0, 100000)
	if err != nil {
		e.t.Fatalf("AuditEvents: %v", err)
	}
	actions := make([]string, len(events))
	for i, ev := range events {
		actions[i] = ev.Action
	}
	return actions
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// openContact opens a visit with the key store's identity of its day.
func openContact(keys *crypto.KeyStore, v *registry.Visit, office []age.Identity) (*registry.Contact, error) {
	id, err := keys.Identity(v.Epoch)
	if err != nil {
		return nil, err
	}
	return crypto.Open(v, id, office)
}

// sameContact compares two contacts field by field.
func sameContact(got, want *registry.Contact) error {
	g, w := *got, *want
	if !g.CheckIn.Equal(w.CheckIn) {
		return fmt.Errorf("check-in %s, want %s", g.CheckIn, w.CheckIn)
	}
	g.CheckIn, w.CheckIn = time.Time{}, time.Time{}
	if g != w {
		return fmt.Errorf("contact differs from what was sealed")
	}
	return nil
}

func days(from registry.Day, n int) []registry.Day {
	out := make([]registry.Day, n)
	for i := range out {
		out[i] = from.AddDays(i)
	}
	return out
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// setStoreClock makes the store write its own times (audit events,
// created_at) by the test clock, as a store in production shares the
// host's clock with the purger.
func setStoreClock(s registry.Store, now func() time.Time) {
	switch st := s.(type) {
	case *sqlite.Store:
		st.Now = now
	case *postgres.Store:
		st.Now = now
	}
}
