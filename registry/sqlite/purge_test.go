package sqlite_test

import (
	"os"
	"testing"

	"github.com/cityhall/registry/registry/storetest"
)

// readFiles returns the contents of the files that exist.
func readFiles(t *testing.T, paths ...string) []byte {
	t.Helper()
	var data []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	return data
}

// TestPurgeErasesBytes checks the guarantee that a purged visit's sealed
// bytes are gone from the database file and its WAL, not only the row.
func TestPurgeErasesBytes(t *testing.T) {
	s := open(t)
	storetest.ErasesBytes(t, s, func(t *testing.T, payloads [][]byte) int {
		return storetest.CountIn(readFiles(t, s.Path(), s.Path()+"-wal", s.Path()+"-shm"), payloads)
	})
}
