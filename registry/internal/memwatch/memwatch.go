// Package memwatch measures the process's resident memory for the
// benchmarks' memory goals (Linux: /proc/self/status).
package memwatch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RSS returns the process's resident set size in bytes.
func RSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no VmRSS line")
}

// Peak runs work and returns the largest resident set size sampled every
// 10 ms while it ran.
func Peak(work func()) (int64, error) {
	var (
		peak int64
		err  error
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			n, rerr := RSS()
			if rerr != nil {
				err = rerr
				return
			}
			peak = max(peak, n)
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	work()
	close(stop)
	wg.Wait()
	return peak, err
}
