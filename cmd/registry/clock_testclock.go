//go:build registry_testclock

package main

import (
	"os"
	"time"
)

// In binaries built with the registry_testclock tag (only the end-to-end
// tests build them), REGISTRY_TEST_NOW fixes the clock, so that scripts can
// let 29 days pass without waiting. Release builds have no such switch.
var testClock = func() (time.Time, bool) {
	s, ok := os.LookupEnv("REGISTRY_TEST_NOW")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic("REGISTRY_TEST_NOW: " + err.Error())
	}
	return t, true
}
