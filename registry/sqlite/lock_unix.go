//go:build unix

package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockDir holds an exclusive flock on the directory of path until unlock is
// called, so that processes opening the database at once set it up (WAL
// mode, migrations) one after the other. It locks the directory, not the database file: closing any
// descriptor of the database file would drop SQLite's own POSIX locks.
func lockDir(ctx context.Context, path string) (unlock func(), err error) {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("lock the database directory: %w", err)
	}
	for {
		err = syscall.Flock(int(dir.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(dir.Fd()), syscall.LOCK_UN); dir.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			dir.Close()
			return nil, fmt.Errorf("lock the database directory: %w", err)
		}
		select {
		case <-ctx.Done():
			dir.Close()
			return nil, fmt.Errorf("lock the database directory: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
