// Package intaketest builds a complete intake setup for tests: a
// health-office identity and recipients file, an epoch key store with the
// day's key registered in the store, a started intake.Service and a
// settable clock. Everything is real (age keys, files in t.TempDir()); only
// the clock is fake.
package intaketest

import (
	"context"
	"fmt"
	"hash/crc32"
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
	"github.com/cityhall/registry/registry/intake"
)

// Start is the clock's initial time: a Tuesday morning in Central
// European Time, well inside one UTC day.
var Start = time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// NewClock returns a clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Env is a complete intake setup over a store.
type Env struct {
	Store      registry.Store
	Service    *intake.Service
	Keys       *crypto.KeyStore
	Recipients *crypto.Recipients
	Office     []age.Identity     // the health office's identity
	Secret     *crypto.Secret     // the server secret, in the key store directory
	Instance   *crypto.SigningKey // the instance key, in the key store directory
	Clock      *Clock
	Kind       crypto.KeyKind // of the office's and the day keys
}

// Options changes what New sets up.
type Options struct {
	// NoEpochKey leaves today's epoch key out (for readiness and
	// missing-key tests).
	NoEpochKey bool
	// MaxBatch is the service's MaxBatch (0: the default).
	MaxBatch int
	// Sealers is the service's Sealers (0: the default).
	Sealers int
	// Logger is the service's logger (nil: discard).
	Logger *slog.Logger
	// Kind is the kind of the office's and the day keys (the zero value:
	// crypto.Hybrid, as a new installation has).
	Kind crypto.KeyKind
}

// New sets up an Env over store and starts its service; t.Cleanup closes
// the service (not the store, which belongs to the caller). A store
// wrapper that overrides CreateParties (a fault injector) is fine.
func New(t testing.TB, store registry.Store, opt Options) *Env {
	t.Helper()
	dir := t.TempDir()
	rcpt, err := crypto.WriteIdentityFile(filepath.Join(dir, "office.key"), opt.Kind, Start)
	if err != nil {
		t.Fatalf("write office identity: %v", err)
	}
	office, err := crypto.ReadIdentities(filepath.Join(dir, "office.key"))
	if err != nil {
		t.Fatalf("read office identity: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recipients.txt"), []byte("# test office\n"+rcpt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := crypto.ReadRecipients(filepath.Join(dir, "recipients.txt"))
	if err != nil {
		t.Fatalf("read recipients: %v", err)
	}
	keys, err := crypto.OpenKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatalf("open key store: %v", err)
	}
	secret, err := crypto.CreateSecretFile(filepath.Join(keys.Dir, crypto.SecretFileName), Start)
	if err != nil {
		t.Fatalf("create server secret: %v", err)
	}
	instance, err := keys.InstanceKey(Start)
	if err != nil {
		t.Fatalf("InstanceKey: %v", err)
	}
	e := &Env{Store: store, Keys: keys, Kind: opt.Kind, Recipients: rs, Office: office, Secret: secret, Instance: instance, Clock: &Clock{t: Start}}
	// The store writes its own times (audit events, created_at) by the
	// test clock, as a store in production shares the host's clock.
	if c, ok := store.(interface{ SetClock(func() time.Time) }); ok {
		c.SetClock(e.Clock.Now)
	}
	if !opt.NoEpochKey {
		e.AddEpochKey(t, registry.DayOf(Start))
	}
	for _, code := range Sites {
		e.PutSite(t, &registry.Site{Code: code, Name: strings.ToUpper(code[:1]) + code[1:]})
	}
	e.Service = intake.New(store, crypto.NewSealer(rs), secret, opt.Logger)
	e.Service.Now = e.Clock.Now
	e.Service.MaxBatch = opt.MaxBatch
	e.Service.Sealers = opt.Sealers
	e.Service.Start(context.Background())
	t.Cleanup(func() { e.Service.Close() })
	return e
}

// Sites are the sites New configures: without areas, so that any area
// goes, and without opening hours.
var Sites = []string{"rathaus", "bauamt", "stadthaus", "bibliothek", "schwimmbad"}

// PutSite stores the site (creating or replacing it) and makes the
// service forget the sites it read.
func (e *Env) PutSite(t testing.TB, site *registry.Site) {
	t.Helper()
	_, err := e.Store.Site(context.Background(), site.Code)
	create := registry.ErrorCode(err) == registry.ENOTFOUND
	if err := e.Store.PutSite(context.Background(), registry.ActorSystem, site, create); err != nil {
		t.Fatalf("put site %s: %v", site.Code, err)
	}
	if e.Service != nil {
		e.Service.ForgetSites()
	}
}

// AddEpochKey creates the day's key in the key store and adds its public
// half to the store.
func (e *Env) AddEpochKey(t testing.TB, day registry.Day) {
	t.Helper()
	k, err := e.Keys.Create(day, e.Kind, e.Clock.Now())
	if err != nil {
		t.Fatalf("create epoch key: %v", err)
	}
	if err := e.Store.AddEpochKeys(context.Background(), registry.ActorSystem, []*registry.EpochKey{k}); err != nil {
		t.Fatalf("add epoch key: %v", err)
	}
}

// Token creates a token of the role (bound to site unless "") and returns
// its secret and record.
func (e *Env) Token(t testing.TB, role registry.Role, site string) (string, *registry.Token) {
	t.Helper()
	return e.OfficeToken(t, role, site, "")
}

// OfficeToken is Token with the token's office (health-office tokens).
func (e *Env) OfficeToken(t testing.TB, role registry.Role, site, office string) (string, *registry.Token) {
	t.Helper()
	secret, tok := registry.NewToken(role, site, "test", e.Clock.Now())
	tok.Office = office
	if err := e.Store.CreateToken(context.Background(), registry.ActorSystem, tok); err != nil {
		t.Fatalf("create token: %v", err)
	}
	return secret, tok
}

// Open reads the stored visit id and removes both layers with the day's
// epoch identity and the office identity, checking the binding.
func (e *Env) Open(t testing.TB, id string) (*registry.Visit, *registry.Contact, error) {
	t.Helper()
	v, err := e.Store.FindVisit(context.Background(), id)
	if err != nil {
		t.Fatalf("find visit: %v", err)
	}
	epoch, err := e.Keys.Identity(v.Epoch)
	if err != nil {
		t.Fatalf("epoch identity of %s: %v", v.Epoch, err)
	}
	c, err := crypto.Open(v, epoch, e.Office)
	return v, c, err
}

// CountVisits returns the number of stored visits, through a dry-run purge
// (which counts what remains and changes nothing), so that it works on
// every store.
func CountVisits(t testing.TB, store registry.Store) int64 {
	t.Helper()
	rep, err := store.Purge(context.Background(), registry.ActorSystem, registry.PurgePlan{
		Now: Start, Cutoff: time.Unix(1, 0), DryRun: true,
	})
	if err != nil {
		t.Fatalf("count visits: %v", err)
	}
	return rep.VisitsRemaining
}

// Registration returns a valid registration whose every sealed field holds
// a value unique to tag (letters and digits, at most 10), so that tests can
// find, or miss, it in raw database files. Site and area are plaintext
// columns by design and hold no tag.
func Registration(tag string) *registry.Registration {
	return &registry.Registration{
		Site:        "rathaus",
		Area:        "Saal 1",
		GivenName:   "Given" + tag,
		FamilyName:  "Family" + tag,
		Street:      "Street" + tag,
		HouseNumber: "12" + tag,
		Postcode:    "PC" + tag,
		City:        "City" + tag,
		Phone:       fmt.Sprintf("+49 170 %08d", crc32.ChecksumIEEE([]byte(tag))%100_000_000),
		Email:       "mail" + tag + "@example.org",
		Host:        "Host" + tag,
	}
}
