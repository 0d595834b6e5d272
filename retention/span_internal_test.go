package retention

import (
	"testing"
	"time"
)

func TestSpan(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "-1s"},
		{1500 * time.Millisecond, "2s"},
		{45 * time.Minute, "45m"},
		{7 * fullDay, "7d"},
		{7*fullDay + time.Second, "7d1s"},
		{9*fullDay + 3*time.Hour + 5*time.Minute, "9d3h5m"},
	}
	for _, tt := range tests {
		if got := span(tt.d); got != tt.want {
			t.Errorf("span(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
