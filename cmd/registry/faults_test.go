package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/postgres"
	"github.com/cityhall/registry/registry/postgres/pgtest"
	"github.com/cityhall/registry/registry/sqlite"
)

// faultEnv is a real serve binary with its keys, database and token.
type faultEnv struct {
	t      testing.TB
	bin    string
	dir    string
	db     string
	addr   string
	token  string
	env    []string
	serve  *exec.Cmd
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newFaultEnv(t testing.TB, binDir, db string) *faultEnv {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := &faultEnv{t: t, bin: filepath.Join(binDir, "registry"), dir: dir, db: db, addr: addr, stderr: &lockedBuffer{}}
	e.env = append(os.Environ(), "REGISTRY_DB="+db, "REGISTRY_RECIPIENTS="+filepath.Join(dir, "recipients.txt"),
		"REGISTRY_KEYSTORE="+filepath.Join(dir, "keys"), "REGISTRY_AS=faults", "REGISTRY_LISTEN="+addr)
	rcpt := e.run("keygen", "-o", filepath.Join(dir, "office.key"))
	if err := os.WriteFile(filepath.Join(dir, "recipients.txt"), []byte(rcpt), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run("migrate")
	e.run("sites", "add", "rathaus", "--as", "it", "--name", "Rathaus")
	e.token = strings.TrimSpace(e.run("tokens", "create", "--role", "intake"))
	return e
}

func (e *faultEnv) run(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("registry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// start starts serve and waits until it is ready.
func (e *faultEnv) start() {
	e.t.Helper()
	e.serve = exec.Command(e.bin, "serve")
	e.serve.Env = e.env
	e.serve.Stderr = e.stderr
	if err := e.serve.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + e.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("serve did not become ready:\n%s", e.stderr.String())
}

// kill ends serve with SIGKILL and waits for it.
func (e *faultEnv) kill() {
	e.serve.Process.Signal(syscall.SIGKILL)
	e.serve.Wait()
}

// stop ends serve with SIGTERM and waits for it.
func (e *faultEnv) stop() {
	e.serve.Process.Signal(syscall.SIGTERM)
	if err := e.serve.Wait(); err != nil {
		e.t.Errorf("serve ended with %v:\n%s", err, e.stderr.String())
	}
}

var faultClient = &http.Client{Timeout: 10 * time.Second}

// register sends one registration with the idempotency key and returns
// the status and, for 200 and 201, the visit id.
func (e *faultEnv) register(key string) (int, string, http.Header) {
	body := `{"site":"rathaus","given_name":"Erika","family_name":"Mustermann","street":"Heidestraße","house_number":"17",` +
		`"postcode":"51147","city":"Köln","phone":"+49 221 1234567","companions":[{"given_name":"Max","family_name":"Mustermann"}]}`
	req, _ := http.NewRequest("POST", "http://"+e.addr+"/v1/visits", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := faultClient.Do(req)
	if err != nil {
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		ID string `json:"id"`
	}
	if resp.StatusCode == 200 || resp.StatusCode == 201 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Errorf("answer %d %q: %v", resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, out.ID, resp.Header
}

// openStore opens the database in the test process (serve not running).
func (e *faultEnv) openStore() registry.Store {
	e.t.Helper()
	var s registry.Store
	var err error
	if strings.HasPrefix(e.db, "postgres://") {
		s, err = postgres.Open(context.Background(), e.db)
	} else {
		s, err = sqlite.Open(context.Background(), e.db)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// acks records the acknowledged registrations: key → visit id.
type acks struct {
	mu  sync.Mutex
	ids map[string]string
	n   atomic.Int64
}

func (a *acks) record(t *testing.T, key, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.ids[key]; ok && old != id {
		t.Errorf("key %s acknowledged as %s and as %s", key, old, id)
	}
	if _, ok := a.ids[key]; !ok {
		a.n.Add(1)
	}
	a.ids[key] = id
}

// TestCrashUnderLoad kills serve with SIGKILL 20 times while 8 clients
// register households of two, each retrying with its Idempotency-Key
// until it is acknowledged; afterwards every acknowledged registration is
// stored exactly once, on both stores.
func TestCrashUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "registry.db")
			if store == "postgres" {
				db = pgtest.NewDatabase(t)
			}
			e := newFaultEnv(t, bin, db)
			e.start()
			const workers, perWorker, kills = 8, 100, 20
			a := &acks{ids: map[string]string{}}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						key := fmt.Sprintf("w%d-%d", w, i)
						for {
							status, id, _ := e.register(key)
							if status == 200 || status == 201 {
								a.record(t, key, id)
								break
							} else if status != 0 && status != 503 {
								t.Errorf("registration %s: status %d", key, status)
								return
							}
							time.Sleep(10 * time.Millisecond)
						}
					}
				})
			}
			for k := range kills {
				for a.n.Load() < int64((k+1)*workers*perWorker/(kills+1)) {
					time.Sleep(time.Millisecond)
				}
				e.kill()
				e.start()
			}
			wg.Wait()
			e.stop()
			s := e.openStore()
			if got, want := intaketest.CountVisits(t, s), int64(2*workers*perWorker); got != want {
				t.Errorf("stored visits = %d, want %d (every acknowledged household exactly once)", got, want)
			}
			for key, id := range a.ids {
				if _, err := s.FindVisit(context.Background(), id); err != nil {
					t.Errorf("acknowledged visit %s of key %s: %v", id, key, err)
				}
			}
		})
	}
}

// TestDatabaseOutage stops the PostgreSQL server (a durable cluster of the
// test's own) for three seconds under load, then freezes it (SIGSTOP: a
// hung database) for seven: every request is answered within seconds, with 503
// and Retry-After while the database is away, none with 500; intake
// recovers by itself; the log says so about once a second, not once per
// request; every acknowledged registration is stored.
func TestDatabaseOutage(t *testing.T) {
	bin := buildBinary(t)
	cluster := pgtest.OwnCluster(t, true) // durable: an immediate stop loses nothing committed
	e := newFaultEnv(t, bin, cluster.DSN)
	e.start()
	a := &acks{ids: map[string]string{}}
	var statuses sync.Map // status → *atomic.Int64
	count := func(s int) {
		v, _ := statuses.LoadOrStore(s, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	var slowest atomic.Int64
	stop := make(chan struct{})
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("k%d", seq.Add(1))
				start := time.Now()
				status, id, h := e.register(key)
				slowest.Store(max(slowest.Load(), int64(time.Since(start))))
				count(status)
				switch status {
				case 200, 201:
					a.record(t, key, id)
				case 503:
					if h.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	waitFor := func(what string, ok func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s\n%s", what, e.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	n := func(s int) int64 {
		v, ok := statuses.Load(s)
		if !ok {
			return 0
		}
		return v.(*atomic.Int64).Load()
	}
	waitFor("first registrations", func() bool { return n(201) > 20 })
	// The freeze outlasts the request timeout (5 s), so that the answers
	// come from the timeout, not from the thawed database.
	for _, fault := range []struct {
		down, up string
		away     time.Duration
	}{{"halt", "resume", 3 * time.Second}, {"freeze", "thaw", 7 * time.Second}} {
		cluster.Do(fault.down)
		before503 := n(503)
		time.Sleep(fault.away)
		if n(503) == before503 {
			t.Errorf("%s: no 503 while the database was away", fault.down)
		}
		cluster.Do(fault.up)
		after := n(201)
		waitFor(fault.up+": intake recovers", func() bool { return n(201) > after+20 })
	}
	close(stop)
	wg.Wait()
	if got := n(500); got != 0 {
		t.Errorf("%d answers were 500", got)
	}
	if n(0) != 0 {
		t.Errorf("%d requests got no answer (connection closed or client timeout)", n(0))
	}
	if d := time.Duration(slowest.Load()); d > 8*time.Second {
		t.Errorf("slowest answer took %v", d)
	}
	e.stop()
	logs := e.stderr.String()
	if lines := strings.Count(logs, "service unavailable"); lines > 30 {
		t.Errorf("%d log lines about the outage for %d 503 answers, want about one a second", lines, n(503))
	}
	t.Logf("statuses: 201=%d 503=%d; slowest %v; outage log lines %d", n(201), n(503), time.Duration(slowest.Load()), strings.Count(logs, "service unavailable"))
	s := e.openStore()
	for key, id := range a.ids {
		if _, err := s.FindVisit(context.Background(), id); err != nil {
			t.Errorf("acknowledged visit %s of key %s: %v", id, key, err)
		}
	}
}

// TestStopWhileDatabaseHangs: SIGTERM while PostgreSQL is frozen ends
// serve within its stop timeout, not when the database resumes; every
// registration acknowledged before is stored, and those in flight were
// not acknowledged and are stored exactly once when retried with their
// keys.
func TestStopWhileDatabaseHangs(t *testing.T) {
	bin := buildBinary(t)
	cluster := pgtest.OwnCluster(t, true)
	e := newFaultEnv(t, bin, cluster.DSN)
	e.env = append(e.env, "REGISTRY_STOP_TIMEOUT=3s")
	e.start()
	a := &acks{ids: map[string]string{}}
	for i := range 10 {
		key := fmt.Sprintf("before-%d", i)
		if status, id, _ := e.register(key); status != 201 {
			t.Fatalf("registration before the freeze: %d", status)
		} else {
			a.record(t, key, id)
		}
	}
	cluster.Do("freeze")
	thawed := false
	defer func() {
		if !thawed {
			cluster.Do("thaw")
		}
	}()
	// Registrations in flight while the database hangs.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if status, id, _ := e.register(fmt.Sprintf("hung-%d", i)); status == 200 || status == 201 {
				t.Errorf("a registration was acknowledged while the database was frozen: %s", id)
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // let them reach the database
	start := time.Now()
	e.serve.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- e.serve.Wait() }()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15 s of SIGTERM while the database hangs\n%s", e.stderr.String())
	}
	took := time.Since(start)
	t.Logf("serve stopped %v after SIGTERM", took.Round(time.Millisecond))
	if !strings.Contains(e.stderr.String(), "stopping without waiting for the database") {
		t.Errorf("the log does not say that serve stopped without the database:\n%s", e.stderr.String())
	}
	wg.Wait()
	cluster.Do("thaw")
	thawed = true
	e.start()
	for i := range 4 {
		key := fmt.Sprintf("hung-%d", i)
		status, id, _ := e.register(key)
		if status != 200 && status != 201 {
			t.Fatalf("retry of %s: %d", key, status)
		}
		a.record(t, key, id)
	}
	e.stop()
	s := e.openStore()
	if got, want := intaketest.CountVisits(t, s), int64(2*len(a.ids)); got != want {
		t.Errorf("stored visits = %d, want %d (each acknowledged household once)", got, want)
	}
	for key, id := range a.ids {
		if _, err := s.FindVisit(context.Background(), id); err != nil {
			t.Errorf("acknowledged visit %s of key %s: %v", id, key, err)
		}
	}
}
