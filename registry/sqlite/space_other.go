//go:build !unix

package sqlite

// freeSpace is unknown here: WriteHealth relies on its probe write alone.
func freeSpace(string) (int64, bool) { return 0, false }
