//go:build !linux

package main

import "os"

// createUnnamed is a named temporary file where unnamed files are not
// available.
func createUnnamed(dir string) (*os.File, func(string) error, error) {
	return createUnnamedTemp(dir)
}
