package sqlite

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// checkpointInterval is how often the background checkpoint runs. At the
// intake ceiling (about 2,000 hybrid records a second) the WAL grows by
// about 8 MB a second in between.
var checkpointInterval = time.Second

// checkpointer copies committed WAL frames into the database file on a
// connection of its own, so that the writer's commits never do it. SQLite's
// automatic checkpoint (every 1,000 pages) runs inside the commit that
// crosses the mark: with records of 3.6 KB that is every few hundred
// visits, a write and an fsync of the database file on intake's one
// serial path. The writer connection has wal_autocheckpoint=0; a PASSIVE
// checkpoint neither waits for nor blocks the writer and readers. A
// checkpoint only moves frames that are already committed and synced, so
// none of this changes what survives a crash.
type checkpointer struct {
	// mu admits one checkpoint of this process at a time: SQLite answers
	// SQLITE_BUSY at once, without the busy timeout, to a checkpoint that
	// finds another one running (the purge's truncating one included).
	mu   sync.Mutex
	db   *sqlx.DB
	stop chan struct{}
	done chan struct{}
	// now asks the loop for a checkpoint at once (tests); the loop closes
	// the channel it receives when that checkpoint has run.
	now  chan chan struct{}
	once sync.Once
	err  error
}

// startCheckpointer opens the checkpoint connection and starts the loop.
func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := openPool(ctx, path, true)
	if err != nil {
		return nil, err
	}
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{}), now: make(chan chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// A failed or partial checkpoint leaves the frames in the WAL,
			// where they are as durable; the next tick tries again.
			c.checkpoint(context.Background(), c.db, "PASSIVE")
		case ran := <-c.now:
			c.checkpoint(context.Background(), c.db, "PASSIVE")
			close(ran)
		}
	}
}

// checkpoint runs PRAGMA wal_checkpoint(mode) on db and returns whether a
// reader or writer kept it from completing, and the frames in the WAL and
// checkpointed.
func (c *checkpointer) checkpoint(ctx context.Context, db *sqlx.DB, mode string) (busy bool, log, done int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &log, &done); err != nil {
		return false, 0, 0, fmt.Errorf("checkpoint wal: %w", err)
	}
	return b != 0, log, done, nil
}

// close stops the loop and closes the connection; later calls return the
// first one's error.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.err = c.db.Close()
	})
	return c.err
}
