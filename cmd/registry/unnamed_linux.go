package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// createUnnamed opens an unnamed file in dir (O_TMPFILE, mode 0600): it
// has no name until link gives it one, so that a process killed before
// leaves no file at all. A file system without unnamed files falls back to
// a named temporary file.
func createUnnamed(dir string) (*os.File, func(string) error, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
		return createUnnamedTemp(dir)
	} else if err != nil {
		return nil, nil, &os.PathError{Op: "create", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	link := func(path string) error {
		// linkat through /proc needs no privilege (AT_EMPTY_PATH would).
		err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		if err != nil {
			return &os.LinkError{Op: "link", Old: "(unnamed)", New: path, Err: err}
		}
		return nil
	}
	return f, link, nil
}
