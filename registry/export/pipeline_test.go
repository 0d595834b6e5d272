package export

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestPipeline: results arrive in order whatever the batch boundaries;
// an error of work comes before produce's later error; consume stopping
// early stops the producer; no goroutine outlives the call.
func TestPipeline(t *testing.T) {
	before := runtime.NumGoroutine()
	count := func(n int, failAt int) func(send func(int) bool) error {
		return func(send func(int) bool) error {
			for i := range n {
				if i == failAt {
					return fmt.Errorf("produce failed at %d", i)
				}
				if !send(i) {
					return nil
				}
			}
			return nil
		}
	}
	square := func(bad int) func([]int) ([]int, error) {
		return func(in []int) ([]int, error) {
			out := make([]int, len(in))
			errs := make([]error, len(in))
			forEach(len(in), func(i int) {
				if in[i] == bad {
					errs[i] = fmt.Errorf("work failed at %d", in[i])
				}
				out[i] = in[i] * in[i]
			})
			return out, errors.Join(errs...)
		}
	}
	collect := func(got *[]int, upTo int) func([]int) (bool, error) {
		return func(b []int) (bool, error) {
			for _, v := range b {
				if len(*got) == upTo {
					return false, nil
				}
				*got = append(*got, v)
			}
			return true, nil
		}
	}
	for _, n := range []int{0, 1, batchSize - 1, batchSize, 3*batchSize + 7} {
		var got []int
		if err := pipeline(count(n, -1), square(-1), collect(&got, -1)); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i * i
		}
		if !slices.Equal(got, want) {
			t.Errorf("n=%d: %d results, out of order or wrong", n, len(got))
		}
	}
	var got []int
	err := pipeline(count(5*batchSize, 3*batchSize+1), square(2*batchSize+5), collect(&got, -1))
	if err == nil || err.Error() != fmt.Sprintf("work failed at %d", 2*batchSize+5) {
		t.Errorf("error = %v, want the work error of the earlier item", err)
	}
	if len(got) != 2*batchSize {
		t.Errorf("consumed %d results before the failing batch, want %d", len(got), 2*batchSize)
	}
	got = nil
	err = pipeline(count(batchSize+3, batchSize+2), square(-1), collect(&got, -1))
	if err == nil || err.Error() != fmt.Sprintf("produce failed at %d", batchSize+2) || len(got) != batchSize+2 {
		t.Errorf("produce error = %v after %d results, want it after the %d items sent before it", err, len(got), batchSize+2)
	}
	got = nil
	if err := pipeline(count(1_000_000, -1), square(-1), collect(&got, 10)); err != nil || len(got) != 10 {
		t.Errorf("early stop: %v, %d results", err, len(got))
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the pipelines, %d before", n, before)
	}
}
