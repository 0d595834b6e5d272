package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
)

// sent is one registration sent over HTTP and what answered it.
type sent struct {
	reg     registry.Registration // as sent; CheckIn nil means "now"
	idemKey string
	answer  created
}

// registerCanaries registers visits over HTTP whose every sealed field
// holds a unique canary, and checks every stored record opens to exactly
// what was sent.
func registerCanaries(t *testing.T, s *testServer) []sent {
	t.Helper()
	var out []sent
	for i := range 4 {
		tag := fmt.Sprintf("Kn%dq7Zx", i)
		reg := registryWithTag(tag)
		if i%2 == 1 { // an explicit check-in, in German time, 20 minutes ago
			at := s.Clock.Now().Add(-20 * time.Minute).In(time.FixedZone("CET", 3600))
			reg.CheckIn = &at
		}
		key := "idem-" + tag + "-secretish"
		r := s.register(t, regJSON(t, reg), key)
		wantStatus(t, r, 201)
		out = append(out, sent{reg: *reg, idemKey: key, answer: r.created(t)})
	}
	for _, x := range out {
		checkStored(t, s, x)
	}
	return out
}

// registryWithTag is a registration with the tag in every sealed field and
// non-ASCII letters, so that UTF-8 survives the round trip.
func registryWithTag(tag string) *registry.Registration {
	return &registry.Registration{
		Site: "rathaus", Area: "Saal 1",
		GivenName: "Zoë" + tag, FamilyName: "Müller-Łukasiewicz" + tag,
		Street: "Straße" + tag, HouseNumber: "12a" + tag, Postcode: "P" + tag, City: "Köln" + tag,
		Phone: fmt.Sprintf("+49 (221) %d%d%d 7788-13", len(tag), tag[2]-'0', tag[2]-'0'), Email: "m." + tag + "@example.org",
		Host: "Frau Dr. " + tag,
	}
}

// checkStored opens the stored record with the epoch and office identities
// and compares it field by field with what was sent.
func checkStored(t *testing.T, s *testServer, x sent) {
	t.Helper()
	v, c, err := s.Open(t, x.answer.ID)
	if err != nil {
		t.Fatalf("open visit %s: %v", x.answer.ID, err)
	}
	wantIn := s.Clock.Now()
	if x.reg.CheckIn != nil {
		wantIn = *x.reg.CheckIn
	}
	r := x.reg
	got := []string{c.GivenName, c.FamilyName, c.Street, c.HouseNumber, c.Postcode, c.City, c.Phone, c.Email, c.Host, c.Appointment, c.VisitID, c.Site, v.Site, v.Area}
	want := []string{r.GivenName, r.FamilyName, r.Street, r.HouseNumber, r.Postcode, r.City, r.Phone, r.Email, r.Host, r.Appointment, x.answer.ID, r.Site, r.Site, r.Area}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("visit %s field %d = %q, want %q", x.answer.ID, i, got[i], want[i])
		}
	}
	for _, tm := range []time.Time{c.CheckIn, v.CheckIn, x.answer.CheckIn} {
		if !tm.Equal(wantIn) {
			t.Errorf("visit %s check-in = %v, want %v", x.answer.ID, tm, wantIn)
		}
	}
	if v.Epoch != registry.DayOf(wantIn) || v.CheckOut != nil {
		t.Errorf("visit %s epoch %s check-out %v, want %s and none", x.answer.ID, v.Epoch, v.CheckOut, registry.DayOf(wantIn))
	}
}

func TestRegisterSQLite(t *testing.T) {
	s, path := newSQLiteServer(t, serverOptions{})
	visits := registerCanaries(t, s)

	t.Run("sealed blob moved to another row", func(t *testing.T) {
		db := rawDB(t, path)
		a, b := visits[0].answer.ID, visits[2].answer.ID // same day, same epoch key
		res, err := db.Exec(`UPDATE visits SET sealed = (SELECT sealed FROM visits WHERE id = ?) WHERE id = ?`, a, b)
		if n, _ := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("swap sealed blob: %v (%d rows)", err, n)
		}
		_, _, err = s.Open(t, b)
		if registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("open of the moved blob: %v, want EINVALID", err)
		}
		if _, _, err := s.Open(t, a); err != nil {
			t.Errorf("open of the original row: %v", err)
		}
	})

	t.Run("no contact data in the database files", func(t *testing.T) {
		var canaries []string
		for _, x := range visits {
			r := x.reg
			canaries = append(canaries, r.GivenName, r.FamilyName, r.Street, r.HouseNumber, r.Postcode, r.City,
				r.Phone, r.Email, r.Host, x.idemKey, x.answer.CheckoutToken)
		}
		canaries = append(canaries, s.intake)
		closeAll(t, s)
		files := readDBFiles(t, path)
		if !bytes.Contains(files, []byte("Saal 1")) {
			t.Fatal("the plaintext area is not in the files either: the scan cannot work")
		}
		for _, c := range canaries {
			if bytes.Contains(files, []byte(c)) {
				t.Errorf("database files contain %q", c)
			}
		}
		for _, c := range canaries {
			if strings.Contains(s.logs.String(), c) {
				t.Errorf("log contains %q", c)
			}
		}
	})
}

// closeAll shuts down the server, the service and the store, so that the
// database files are final.
func closeAll(t *testing.T, s *testServer) {
	t.Helper()
	if err := s.srv.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Service.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.Close(); err != nil {
		t.Fatal(err)
	}
}

// readDBFiles returns the database file, its WAL and its shared-memory file
// (those that exist) concatenated.
func readDBFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestRegisterPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	s := newServer(t, store, serverOptions{})
	visits := registerCanaries(t, s)

	x := visits[0]
	r := s.register(t, regJSON(t, &x.reg), x.idemKey)
	wantStatus(t, r, 200)
	if got := r.created(t); got != x.answer {
		t.Errorf("replay = %+v, want %+v", got, x.answer)
	}
	r = s.do(t, request{method: "POST", path: "/v1/visits/" + x.answer.ID + "/checkout",
		header: hdr("Authorization", "Bearer "+x.answer.CheckoutToken)})
	wantStatus(t, r, 204)
	if v, _, err := s.Open(t, x.answer.ID); err != nil || v.CheckOut == nil {
		t.Errorf("after checkout: %v, %v; want a check-out time", v.CheckOut, err)
	}
	if n := countVisits(t, s); n != int64(len(visits)) {
		t.Errorf("stored visits = %d, want %d", n, len(visits))
	}
}

func countVisits(t *testing.T, s *testServer) int64 {
	t.Helper()
	return intaketest.CountVisits(t, s.Store)
}
