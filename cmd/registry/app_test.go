package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDaysFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"28d", 28 * 24 * time.Hour, false},
		{"0d", 0, false},
		{"12h", 12 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"-1d", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"4 weeks", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d time.Duration
			err := days{&d}.Set(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && d != tt.want) {
				t.Errorf("Set(%q) = %v, %v; want %v, error %v", tt.in, d, err, tt.want, tt.wantErr)
			}
		})
	}
	d := 28 * 24 * time.Hour
	if got := (days{&d}).String(); got != "28d" {
		t.Errorf("String() = %q, want 28d", got)
	}
}

func TestDSNHasPassword(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://registry@db/registry?sslmode=verify-full", false},
		{"postgres://registry:geheim@db/registry", true},
		{"postgres://registry@db/registry?password=geheim", true},
		{"postgres://%zz", true}, // unparsable: refuse rather than guess
	}
	for _, tt := range tests {
		if got := dsnHasPassword(tt.dsn); got != tt.want {
			t.Errorf("dsnHasPassword(%q) = %v, want %v", tt.dsn, got, tt.want)
		}
	}
}

// run executes the CLI in-process with the environment env.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cmd := a.root()
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

func TestPasswordNeverOnTheCommandLine(t *testing.T) {
	_, _, err := run(t, nil, "migrate", "--db", "postgres://registry:geheim@127.0.0.1:1/registry")
	if err == nil || !strings.Contains(err.Error(), "password on the command line") {
		t.Fatalf("migrate with a password in --db = %v; want a refusal", err)
	}
	if strings.Contains(err.Error(), "geheim") {
		t.Errorf("the refusal repeats the password: %v", err)
	}
}

func TestEnvironmentSettings(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"REGISTRY_DB": dir + "/from-env.db", "REGISTRY_OUTPUT": dir + "/never"}
	stdout, _, err := run(t, env, "migrate")
	if err != nil || !strings.Contains(stdout, "from-env.db") {
		t.Fatalf("migrate with REGISTRY_DB = %q, %v; want the database from the environment", stdout, err)
	}
	stdout, _, err = run(t, env, "migrate", "--db", dir+"/from-flag.db")
	if err != nil || !strings.Contains(stdout, "from-flag.db") {
		t.Fatalf("migrate with --db and REGISTRY_DB = %q, %v; want the flag to win", stdout, err)
	}
	// -o is not a setting: REGISTRY_OUTPUT must not fill it in.
	_, _, err = run(t, env, "keygen")
	if err == nil || !strings.Contains(err.Error(), "no output file") {
		t.Errorf("keygen without -o but with REGISTRY_OUTPUT = %v; want 'no output file'", err)
	}
	_, _, err = run(t, map[string]string{"REGISTRY_RETENTION": "four weeks"}, "purge", "--keystore", dir)
	if err == nil || !strings.Contains(err.Error(), "REGISTRY_RETENTION") {
		t.Errorf("purge with a malformed REGISTRY_RETENTION = %v; want an error naming it", err)
	}
}

func TestDPOActor(t *testing.T) {
	if got, err := dpoActor("alice"); err != nil || got != "dpo:alice" {
		t.Errorf(`dpoActor("alice") = %q, %v; want "dpo:alice"`, got, err)
	}
	if got, err := dpoActor("  Frau DSB "); err != nil || got != "dpo:Frau DSB" {
		t.Errorf(`dpoActor("Frau DSB") = %q, %v; want "dpo:Frau DSB"`, got, err)
	}
	for _, bad := range []string{"x:y", "\t", "ali\u200bce", "a\u202eb", "\x1b[31mred"} {
		if _, err := dpoActor(bad); err == nil {
			t.Errorf("dpoActor(%q) succeeded; want an error", bad)
		}
	}
}
