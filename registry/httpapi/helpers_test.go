package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/checks"
	"github.com/cityhall/registry/registry/httpapi"
	"github.com/cityhall/registry/registry/intake/intaketest"
	"github.com/cityhall/registry/registry/sqlite"
)

// testServer is a listening API server over a real store with real keys.
type testServer struct {
	*intaketest.Env
	srv    *httpapi.Server
	url    string
	intake string // secret of an intake token for any site
	logs   *syncBuffer
	// tempDir is the directory of the server's scratch files.
	tempDir string
	scratch *crypto.ScratchDir
}

// The retention policy of test servers.
const (
	testRetention = 28 * 24 * time.Hour
	testMaxStay   = 12 * time.Hour
)

type serverOptions struct {
	noEpochKey bool
	// publicSites are the sites that take self check-ins.
	publicSites []string
	// publicURL is Config.PublicURL.
	publicURL string
	// limits is Config.Limits (nil: the defaults).
	limits *httpapi.Limits
	// readTimeout is Config.ReadTimeout (0: the default).
	readTimeout time.Duration
	// requestTimeout is Config.RequestTimeout (0: the default).
	requestTimeout time.Duration
	// checks is Config.Checks.
	checks func() *checks.Report
	// kind is the kind of the office's and the day keys (zero: hybrid).
	kind crypto.KeyKind
	// accessLog is Config.AccessLog.
	accessLog httpapi.AccessLog
	// sealers is the intake's Sealers (0: the default).
	sealers int
	// logger replaces the test's own (a debug log into s.logs).
	logger *slog.Logger
}

// newSQLiteServer starts a server over a SQLite file in t.TempDir(); it
// returns the server and the file's path.
func newSQLiteServer(t testing.TB, opt serverOptions) (*testServer, string) {
	t.Helper()
	store, path := sqliteStore(t)
	return newServer(t, store, opt), path
}

// sqliteStore opens a store on a fresh file, closed at cleanup.
func sqliteStore(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	store, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store, path
}

// newServer starts a server over store; cleanup shuts it down.
func newServer(t testing.TB, store registry.Store, opt serverOptions) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.logger != nil {
		logger = opt.logger
	}
	env := intaketest.New(t, store, intaketest.Options{NoEpochKey: opt.noEpochKey, Logger: logger, Kind: opt.kind, Sealers: opt.sealers})
	for _, code := range opt.publicSites {
		env.PutSite(t, &registry.Site{Code: code, Name: "Rathaus " + code, SelfCheckin: true})
	}

	tmp := filepath.Join(t.TempDir(), "scratch")
	scratch, err := crypto.OpenScratchDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{
		Addr: "127.0.0.1:0", Store: store, Intake: env.Service, Logger: logger, Now: env.Clock.Now,
		Keys: env.Keys, Instance: env.Instance, Recipients: env.Recipients, Retention: testRetention, MaxStay: testMaxStay, Scratch: scratch,
		Secret: env.Secret, Limits: opt.limits, ReadTimeout: opt.readTimeout, PublicURL: opt.publicURL,
		RequestTimeout: opt.requestTimeout, Checks: opt.checks, AccessLog: opt.accessLog,
	})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	if err := srv.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	secret, _ := env.Token(t, registry.RoleIntake, "")
	return &testServer{Env: env, srv: srv, url: srv.URL(), intake: secret, logs: logs, tempDir: tmp, scratch: scratch}
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	header       http.Header
	body         string
	chunked      bool // send the body without Content-Length
}

// hdr returns a header of name, value pairs; names may repeat.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes the response as a problem document.
func (r *response) problem(t *testing.T) (p struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
	Errors []struct {
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %q)", ct, r.body)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %q: %v", r.body, err)
	}
	if p.Status != r.status || p.Title == "" || p.Type == "" {
		t.Errorf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

// do sends req over the network and checks the headers every response
// carries.
func (s *testServer) do(t *testing.T, req request) *response {
	t.Helper()
	var body io.Reader = strings.NewReader(req.body)
	if req.chunked {
		body = io.MultiReader(body) // hides the length: sent chunked
	}
	r, err := http.NewRequestWithContext(t.Context(), req.method, s.url+req.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.header {
		r.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", req.method, req.path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control = %q, want no-store", req.method, req.path, got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s %s: X-Content-Type-Options = %q, want nosniff", req.method, req.path, got)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: got}
}

// register posts a registration with the intake token.
func (s *testServer) register(t *testing.T, body, idemKey string) *response {
	t.Helper()
	h := hdr("Authorization", "Bearer "+s.intake, "Content-Type", "application/json")
	if idemKey != "" {
		h.Set("Idempotency-Key", idemKey)
	}
	return s.do(t, request{method: "POST", path: "/v1/visits", header: h, body: body})
}

// created is the body of a 201.
type created struct {
	ID            string    `json:"id"`
	CheckoutToken string    `json:"checkout_token"`
	CheckIn       time.Time `json:"check_in"`
}

func (r *response) created(t *testing.T) created {
	t.Helper()
	var c created
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	if !registry.ValidID(c.ID) || !strings.HasPrefix(c.CheckoutToken, "rgc_") {
		t.Errorf("answer %q lacks an id or checkout token", r.body)
	}
	return c
}

// regJSON encodes a registration.
func regJSON(t *testing.T, reg *registry.Registration) string {
	t.Helper()
	b, err := json.Marshal(reg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, r *response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d (body %q)", r.status, want, r.body)
	}
}

// rawDB opens the SQLite file directly, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
