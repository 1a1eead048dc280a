package bench

import (
	"testing"
	"time"
)

// TestHedging is a short run of scenario 8, to keep it compiling and sane.
func TestHedging(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	for _, s := range HedgeStacks[:2] {
		r := Hedging(s, 4, time.Second)
		t.Logf("%s: %d calls, p50 %v, p99 %v, %.1f %% extra requests", s.Name, r.Calls, r.P50, r.P99, 100*r.Extra())
		if r.Calls == 0 {
			t.Errorf("%s: no call succeeded", s.Name)
		}
	}
}

// TestThrottle is a short run of scenario 9.
func TestThrottle(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	for _, s := range Stacks[1:3] {
		r := Throttle(s, 50, 16, 1500*time.Millisecond, false)
		t.Logf("%s: %d × 200 (%.1f/s), %d × 429", s.Name, r.OK, r.PerSecond, r.Throttled)
		if r.OK == 0 {
			t.Errorf("%s: no call succeeded", s.Name)
		}
	}
}
