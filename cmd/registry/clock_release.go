//go:build !registry_testclock

package main

import "time"

// testClock is nil in release builds: the clock is the system clock.
var testClock func() (time.Time, bool)
