package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCheckpointOffTheCommitPath checks that commits never copy the WAL
// into the database file, however large it grows, and that the background
// checkpoint does, on its own connection, with the frames readable.
func TestCheckpointOffTheCommitPath(t *testing.T) {
	defer func(d time.Duration) { checkpointInterval = d }(checkpointInterval)
	checkpointInterval = time.Hour // only when the test asks
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.DB().GetContext(ctx, &auto, "PRAGMA wal_autocheckpoint"); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	// Clear what the migrations left in the WAL.
	ran := make(chan struct{})
	s.ckpt.now <- ran
	<-ran
	before := fileSize(t, path)

	// 1,500 records of 3,600 bytes (a hybrid record's size), in batches
	// as intake commits them: beyond SQLite's automatic checkpoint at
	// 1,000 pages, which ran inside the commit that crossed it.
	checkIn := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var ids []string
	for b := range 30 {
		var parties []*registry.Party
		for i := range 50 {
			sealed := make([]byte, 3600)
			rand.Read(sealed)
			at := checkIn.Add(time.Duration(b*50+i) * time.Second)
			v := &registry.Visit{ID: registry.NewVisitID(at), Site: "rathaus", CheckIn: at, Epoch: registry.DayOf(at), Sealed: sealed, CreatedAt: at}
			ids = append(ids, v.ID)
			parties = append(parties, &registry.Party{Actor: "token:intake", Visits: []*registry.Visit{v},
				Key: &registry.IdempotencyKey{Hash: []byte(fmt.Sprint("key-", b, "-", i)), RequestMAC: []byte("mac"), CheckIn: at, Visits: 1}})
		}
		if err := s.CreateParties(ctx, parties); err != nil {
			t.Fatal(err)
		}
	}
	if got := fileSize(t, path); got != before {
		t.Fatalf("the database file changed from %d to %d bytes: a commit checkpointed", before, got)
	}
	if wal := fileSize(t, path+"-wal"); wal < 1500*3600 {
		t.Fatalf("WAL holds %d bytes, want the 1,500 records", wal)
	}

	ran = make(chan struct{})
	s.ckpt.now <- ran
	<-ran
	if got := fileSize(t, path); got < before+1500*3600 {
		t.Fatalf("after the background checkpoint the database file holds %d bytes (was %d); want the 1,500 records in it", got, before)
	}
	for _, id := range []string{ids[0], ids[len(ids)-1]} {
		if _, err := s.FindVisit(ctx, id); err != nil {
			t.Fatalf("FindVisit(%s) after the checkpoint: %v", id, err)
		}
	}
}
