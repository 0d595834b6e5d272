package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorNamesCorruption: doctor on a damaged SQLite file names the
// damage and points to the restore procedure, for a file with damaged
// pages and for one that is no database at all.
func TestDoctorNamesCorruption(t *testing.T) {
	bin := buildBinary(t)
	for _, tt := range []struct {
		name   string
		offset int64
		check  string
	}{
		{"damaged pages", 2 * 4096, "FAIL  integrity"},
		{"not a database", 0, "FAIL  database"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newFaultEnv(t, bin, filepath.Join(t.TempDir(), "registry.db"))
			for i := range 50 { // pages of tables and indexes to damage
				e.run("tokens", "create", "--role", "intake", "--label", "Pforte "+strings.Repeat("x", i))
			}
			f, err := os.OpenFile(e.db, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte(strings.Repeat("\xff", 3*4096)), tt.offset); err != nil {
				t.Fatal(err)
			}
			f.Close()
			cmd := exec.Command(e.bin, "doctor")
			cmd.Env = e.env
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("doctor exit: %v, want status 2", err)
			}
			text := string(out)
			if !strings.Contains(text, tt.check+" ") || !strings.Contains(text, "The database file is damaged") ||
				!strings.Contains(text, "fix: stop serve, keep the damaged file for analysis, restore the latest backup (docs/operations.md: Backups)") {
				t.Errorf("doctor on a damaged file:\n%s", text)
			}
			if strings.Contains(text, "Internal error") {
				t.Errorf("doctor says only Internal error:\n%s", text)
			}
		})
	}
}
