package export

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// pipeline overlaps the three steps of streaming records, so that the
// serial ones no longer leave the cores idle while the parallel one waits
// for them: produce reads items and sends them (on a goroutine of its
// own), work turns a batch of batchSize items into results (on GOMAXPROCS
// goroutines: it calls forEach), and consume takes the results in order
// on the caller's goroutine. While consume handles one batch, work runs on
// the next and produce reads the one after; at most five batches are held
// at once.
//
// pipeline returns the first error in the order of the items: an error of
// work or consume for a batch comes before produce's error, which ends
// the items. When consume returns false or an error, or work fails, the
// other steps stop (send returns false: produce must then return). It
// returns only after its goroutines ended.
func pipeline[In, Out any](produce func(send func(In) bool) error, work func([]In) (Out, error), consume func(Out) (bool, error)) error {
	type result struct {
		out Out
		err error
	}
	stop := make(chan struct{})
	batches := make(chan []In, 1)
	results := make(chan result, 1)
	var produceErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(batches)
		batch := make([]In, 0, batchSize)
		pass := func() bool {
			select {
			case batches <- batch:
				batch = make([]In, 0, batchSize)
				return true
			case <-stop:
				return false
			}
		}
		produceErr = produce(func(v In) bool {
			if batch = append(batch, v); len(batch) < batchSize {
				return true
			}
			return pass()
		})
		if len(batch) > 0 { // sent before any error of produce: theirs come first
			pass()
		}
	})
	wg.Go(func() {
		defer close(results)
		for b := range batches {
			out, err := work(b)
			select {
			case results <- result{out, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	})
	var err error
	for r := range results {
		if r.err != nil {
			err = r.err
			break
		}
		ok, cerr := consume(r.out)
		if cerr != nil || !ok {
			err = cerr
			break
		}
	}
	close(stop)
	wg.Wait()
	if err == nil {
		err = produceErr
	}
	return err
}

// forEach calls f(i) for every i in [0, n) on up to GOMAXPROCS goroutines
// and returns when all calls have returned. The age operations per record
// are CPU-bound and independent.
func forEach(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}
