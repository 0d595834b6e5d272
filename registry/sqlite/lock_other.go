//go:build !unix

package sqlite

import "context"

// lockDir does nothing where flock is missing: processes must not start
// their first migration at the same moment there.
func lockDir(context.Context, string) (func(), error) { return func() {}, nil }
