package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/cityhall/registry/registry/postgres/pgtest"
)

// TestPostgresFailover kills the primary of a PostgreSQL pair under load
// and promotes its synchronous standby, as an HA manager (Patroni,
// pg_auto_failover) would: serve runs on the multi-host connection string
// (both hosts, target_session_attrs=read-write), 16 clients register with
// retries under their idempotency keys. Every acknowledged registration
// must be on the new primary, none twice, and the audit log must verify.
// It prints how long intake was unavailable and how it answered meanwhile
// (docs/capacity.md records the figures).
func TestPostgresFailover(t *testing.T) {
	primary := pgtest.OwnCluster(t, true)
	standby := primary.Standby()
	dsn := fmt.Sprintf("postgres://registry@127.0.0.1,127.0.0.1/postgres?port=%s,%s&sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.Port(), standby.Port())
	e := newFaultEnv(t, buildBinary(t), dsn)
	e.start()
	defer e.stop()
	srv := e.serve
	stderr := e.stderr

	l := &failoverLoad{url: "http://" + e.addr + "/v1/visits", token: e.token, stop: make(chan struct{}),
		onStuck: func() { srv.Process.Signal(syscall.SIGQUIT); srv.Wait() }} // its goroutines into the log
	l.start(16)
	l.waitAcks(t, 300, 60*time.Second, stderr)
	killed := time.Now()
	primary.Do("kill")
	acksAtKill := l.acks.Load()
	promoteStart := time.Now()
	standby.Do("promote")
	promoted := time.Since(promoteStart)
	l.waitAcks(t, acksAtKill+300, 120*time.Second, stderr)
	l.finish(t, stderr)

	gap, firstAfter := l.gapAfter(killed)
	t.Logf("failover: primary killed with SIGKILL, standby promoted in %v; intake unavailable for %v (the longest time without an acknowledged registration); "+
		"%d acknowledged before the kill, %d in all; answers while unavailable: %v; retries: %d, of them answered as stored before: %d",
		promoted.Round(time.Millisecond), gap.Round(time.Millisecond), acksAtKill, l.acks.Load(), l.statuses(firstAfter), l.retries.Load(), l.replayed.Load())
	if l.acks.Load() < acksAtKill+300 {
		t.Fatalf("only %d registrations acknowledged after the failover", l.acks.Load()-acksAtKill)
	}

	l.checkStored(t, standby.DSN, "failover")
	envNew := append(os.Environ(), "REGISTRY_DB="+standby.DSN)
	verify := exec.Command(e.bin, "audit", "verify")
	verify.Env = envNew
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("audit verify on the new primary: %v\n%s", err, out)
	}
}

// checkStored checks, in the database at dsn, that every acknowledged
// registration is stored once and that nothing else is, and logs the
// counts under what.
func (l *failoverLoad) checkStored(t *testing.T, dsn, what string) {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, distinct int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*), count(DISTINCT id) FROM visits`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	ids := l.ids()
	missing := 0
	for _, id := range ids {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM visits WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			missing++
		}
	}
	t.Logf("%s: %d acknowledged, %d visits stored, %d lost, %d duplicated", what, len(ids), rows, missing, rows-len(ids))
	if missing != 0 || rows != len(ids) || distinct != rows {
		t.Errorf("%s: %d acknowledged registrations lost, %d visits stored for %d acknowledged (%d distinct)", what, missing, rows, len(ids), distinct)
	}
}

// failoverLoad is clients registering one visitor after another, each
// retrying a registration under the same idempotency key until it is
// acknowledged: 201, or 200 for a retry of one stored before whose answer
// was lost (the API's replay).
type failoverLoad struct {
	url, token string
	client     *http.Client // nil: a plain client with a 10 s timeout
	onStuck    func()       // before a failure for want of acknowledgements (nil: nothing)
	stop       chan struct{}
	wg         sync.WaitGroup
	acks       atomic.Int64
	retries    atomic.Int64
	replayed   atomic.Int64 // retries answered 200: stored before, their answer lost

	mu      sync.Mutex
	acked   map[string]string // idempotency key → visit id
	ackAt   []time.Time
	answers []answer // every failed attempt
}

type answer struct {
	at     time.Time
	status string
}

func (l *failoverLoad) start(clients int) {
	l.acked = map[string]string{}
	c := l.client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	for w := range clients {
		l.wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("failover-%d-%d", w, seq)
				body := fmt.Sprintf(`{"site":"rathaus","given_name":"Erika","family_name":"Lauf%d","street":"Heidestraße","house_number":"%d","postcode":"51147","city":"Köln","phone":"+49 221 1234567"}`, w, seq)
				for {
					status, id, wait := l.post(c, key, body)
					if id != "" {
						l.mu.Lock()
						l.acked[key] = id
						l.ackAt = append(l.ackAt, time.Now())
						l.mu.Unlock()
						l.acks.Add(1)
						break
					}
					l.retries.Add(1)
					l.mu.Lock()
					l.answers = append(l.answers, answer{time.Now(), status})
					l.mu.Unlock()
					time.Sleep(wait) // the client's backoff, as a desk would wait
				}
			}
		})
	}
}

// post sends one attempt: the visit id when acknowledged, otherwise the
// answer and how long to wait (Retry-After, or 100 ms).
func (l *failoverLoad) post(c *http.Client, key, body string) (status, id string, wait time.Duration) {
	req, _ := http.NewRequest("POST", l.url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.Do(req)
	if err != nil {
		return "connection error", "", 100 * time.Millisecond
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 201 || resp.StatusCode == 200 { // 200: the replay of a registration stored before
		var v struct{ ID string }
		json.Unmarshal(b, &v)
		if resp.StatusCode == 200 {
			l.replayed.Add(1)
		}
		return strconv.Itoa(resp.StatusCode), v.ID, 0
	}
	wait = 100 * time.Millisecond
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = min(time.Duration(s)*time.Second, time.Second)
	}
	ra := ""
	if resp.Header.Get("Retry-After") != "" {
		ra = " with Retry-After"
	}
	return strconv.Itoa(resp.StatusCode) + ra, "", wait
}

// waitAcks waits until n registrations are acknowledged; after timeout
// it fails the test with what the clients saw and the server's log.
func (l *failoverLoad) waitAcks(t *testing.T, n int64, timeout time.Duration, log *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for l.acks.Load() < n {
		if time.Now().After(deadline) {
			if l.onStuck != nil {
				l.onStuck()
			}
			t.Fatalf("%d of %d registrations acknowledged after %v; answers: %v\nserver log (end):\n%s",
				l.acks.Load(), n, timeout, l.statuses(time.Now()), tail(log.String(), 20000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finish stops the clients once each has its current registration
// acknowledged, failing the test when that takes longer than a minute.
func (l *failoverLoad) finish(t *testing.T, log *lockedBuffer) {
	t.Helper()
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		if l.onStuck != nil {
			l.onStuck()
		}
		t.Fatalf("the clients' last registrations were not acknowledged within a minute; answers: %v\nserver log (end):\n%s",
			l.statuses(time.Now()), tail(log.String(), 20000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// gapAfter is the longest time without an acknowledgement from the last
// one before t on, and when that gap ended: how long intake was
// unavailable around t.
func (l *failoverLoad) gapAfter(t time.Time) (time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gap time.Duration
	end := t
	prev := time.Time{}
	for _, at := range l.ackAt {
		if !at.Before(t) && !prev.IsZero() && at.Sub(prev) > gap {
			gap, end = at.Sub(prev), at
		}
		prev = at
	}
	return gap, end
}

// statuses counts the failed attempts before until.
func (l *failoverLoad) statuses(until time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for _, a := range l.answers {
		if a.at.Before(until) {
			m[a.status]++
		}
	}
	return m
}

func (l *failoverLoad) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, id := range l.acked {
		ids = append(ids, id)
	}
	return ids
}
