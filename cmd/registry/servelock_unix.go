//go:build unix

package main

import (
	"os"
	"syscall"

	"github.com/cityhall/registry/registry"
)

// serveLock marks a SQLite database as served: serve holds a shared lock
// on DB.serving for its lifetime, restore takes it exclusively. The lock
// goes with the process, however it ends.
func serveLock(db string, exclusive bool) (release func(), err error) {
	f, err := os.OpenFile(db+".serving", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, registry.Errorf(registry.ECONFLICT, "serve runs on the database %s", db)
		}
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
