package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cityhall/registry/registry/postgres/pgtest"
	"github.com/lib/pq"
)

// TestScripts runs the end-to-end scripts in testdata/script against the
// real registry binary, built once with the test clock switch
// (REGISTRY_TEST_NOW), on SQLite and on PostgreSQL.
func TestScripts(t *testing.T) {
	bin := buildBinary(t)
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			server := ""
			if store == "postgres" {
				server = pgtest.DSN(t) // skips or fails here, in the test's goroutine
			}
			testscript.Run(t, testscript.Params{
				Dir:   "testdata/script",
				Setup: func(env *testscript.Env) error { return setupScript(env, bin, server) },
				Cmds:  map[string]func(*testscript.TestScript, bool, []string){"http": cmdHTTP, "waitready": cmdWaitReady, "setenvre": cmdSetenvRE, "replace": cmdReplace, "pgaside": cmdPgAside},
				// [sqlite] and [postgres] guard the steps of one store.
				Condition: func(cond string) (bool, error) {
					switch cond {
					case "sqlite", "postgres":
						return cond == store, nil
					}
					return false, fmt.Errorf("unknown condition %q", cond)
				},
			})
		})
	}
}

// binary is the registry binary with the test clock switch, built once for
// every test of the package (TestMain removes it).
var binary struct {
	once sync.Once
	dir  string
	err  error
}

// buildBinary returns the directory of the binary, building it on first use.
func buildBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "registry-bin-")
		if binary.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "registry_testclock", "-o", filepath.Join(binary.dir, "registry"), ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("build registry: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.dir
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(rawDecryptEnv); spec != "" {
		os.Exit(rawDecryptMain(spec)) // BenchmarkExportDecrypt's baseline process
	}
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// setupScript prepares a script's environment: the binary in PATH, a
// database (a fresh PostgreSQL database on server, or a SQLite file when
// server is ""), and a free address.
func setupScript(env *testscript.Env, binDir, server string) error {
	env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
	db := filepath.Join(env.WorkDir, "data", "registry.db")
	if server != "" {
		dsn, drop, err := pgtest.CreateDatabase(server)
		if err != nil {
			return err
		}
		env.Defer(func() {
			if err := drop(); err != nil {
				env.T().Log(err)
			}
		})
		db = dsn
		env.Setenv("REGISTRY_TEST_PG_SERVER", server)
	}
	env.Setenv("REGISTRY_DB", db)
	env.Setenv("REGISTRY_AS", "script")
	// Free addresses for the scripts' servers: $ADDR, $ADDR2, $ADDR3.
	for _, name := range []string{"ADDR", "ADDR2", "ADDR3"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		env.Setenv(name, l.Addr().String())
	}
	return nil
}

// scriptClient bounds every request of a script, so that a hung server
// fails the test instead of stalling it.
var scriptClient = &http.Client{Timeout: 30 * time.Second}

// cmdHTTP: http METHOD URL TOKEN|- [BODYFILE|-] [OUTFILE]
// sends a request with the bearer token (read from the file TOKEN when it
// exists, else TOKEN itself) and a JSON body read from BODYFILE, prints
// "HTTP <status>" and the body (or writes the body to OUTFILE).
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: http METHOD URL TOKEN|- [[expand:]BODYFILE|-] [OUTFILE] (no !: assert on the printed status)")
	}
	var body io.Reader
	if len(args) > 3 && args[3] != "-" {
		// expand: fills $NAME in the body from the script's environment
		// (a code printed earlier); other bodies are sent as written.
		if name, ok := strings.CutPrefix(args[3], "expand:"); ok {
			body = strings.NewReader(os.Expand(ts.ReadFile(name), ts.Getenv))
		} else {
			body = strings.NewReader(ts.ReadFile(args[3]))
		}
	}
	req, err := http.NewRequest(args[0], args[1], body)
	ts.Check(err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token := args[2]; token != "-" {
		if _, err := os.Stat(ts.MkAbs(token)); err == nil {
			token = ts.ReadFile(token)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	}
	if key := ts.Getenv("IDEMPOTENCY_KEY"); key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := scriptClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n", resp.StatusCode)
	if len(args) > 4 {
		ts.Check(os.WriteFile(ts.MkAbs(args[4]), b, 0o600))
		return
	}
	ts.Stdout().Write(b)
}

// cmdWaitReady: waitready URL polls URL until it answers 200 (10 s at most).
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := scriptClient.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("%s did not become ready", args[0])
}

// cmdSetenvRE: setenvre NAME REGEXP FILE sets NAME to the first submatch of
// REGEXP in FILE (use "stdout" after cp stdout FILE).
func cmdSetenvRE(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: setenvre NAME REGEXP FILE")
	}
	m := regexp.MustCompile(args[1]).FindStringSubmatch(ts.ReadFile(args[2]))
	if m == nil || len(m) < 2 {
		ts.Fatalf("%s: no match for %s", args[2], args[1])
	}
	ts.Setenv(args[0], string(bytes.TrimSpace([]byte(m[1]))))
}

// cmdReplace replaces the first OLD in FILE with NEW (a tampered file):
// replace FILE OLD NEW.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 || neg {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	data := ts.ReadFile(args[0])
	if !strings.Contains(data, args[1]) {
		ts.Fatalf("%s holds no %q", args[0], args[1])
	}
	if err := os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Replace(data, args[1], args[2], 1)), 0o644); err != nil {
		ts.Fatalf("%v", err)
	}
}

// cmdPgAside keeps the script's PostgreSQL database aside, as a DBA does
// before a restore: renamed to NAME_aside (dropped when the script ends),
// and an empty NAME created in its place: pgaside.
func cmdPgAside(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 0 || neg {
		ts.Fatalf("usage: pgaside")
	}
	server, dsn := ts.Getenv("REGISTRY_TEST_PG_SERVER"), ts.Getenv("REGISTRY_DB")
	u, err := url.Parse(dsn)
	if server == "" || err != nil {
		ts.Fatalf("pgaside needs the script's PostgreSQL database")
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("postgres", server)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer admin.Close()
	for _, q := range []string{"ALTER DATABASE " + pq.QuoteIdentifier(name) + " RENAME TO " + pq.QuoteIdentifier(name+"_aside"),
		"CREATE DATABASE " + pq.QuoteIdentifier(name)} {
		if _, err := admin.Exec(q); err != nil {
			ts.Fatalf("%s: %v", q, err)
		}
	}
	ts.Defer(func() {
		if a, err := sql.Open("postgres", server); err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name+"_aside") + " WITH (FORCE)")
			a.Close()
		}
	})
}
