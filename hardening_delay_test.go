package resilient

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestDelayExtremePolicies checks that no policy, however extreme, gives a
// delay outside [0, MaxDelay]: no overflow into a negative wait.
func TestDelayExtremePolicies(t *testing.T) {
	multipliers := []float64{1000, 1e300, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 1, 1.0000001, 0, -5}
	for _, tt := range []struct {
		name           string
		initial, limit time.Duration
	}{
		{"max delay MaxInt64", 0, math.MaxInt64},
		{"both MaxInt64", math.MaxInt64, math.MaxInt64},
		{"initial 1ns", 1, math.MaxInt64},
		{"initial near max", math.MaxInt64 / 3, math.MaxInt64},
		{"defaults", 0, 0},
		{"negative", -1, -1},
		{"1 s cap", time.Minute, time.Second},
	} {
		for _, m := range multipliers {
			for _, j := range []Jitter{JitterFull, JitterEqual, JitterNone, Jitter(-1), Jitter(42)} {
				p := RetryPolicy{InitialDelay: tt.initial, MaxDelay: tt.limit, Multiplier: m, Jitter: j}.normalized()
				for _, n := range []int{-1, 0, 1, 2, 3, 10, 62, 63, 64, 100, 1 << 20, math.MaxInt} {
					d := p.delay(n)
					if d < 0 || d > p.MaxDelay {
						t.Fatalf("%s, multiplier %v, jitter %d, retry %d: delay %v outside [0, %v]", tt.name, m, j, n, d, p.MaxDelay)
					}
				}
			}
		}
	}
}

// TestDelayMultiplierNormalized checks that a multiplier that cannot grow a
// delay means the default, and that JitterNone reaches the cap exactly.
func TestDelayMultiplierNormalized(t *testing.T) {
	for _, m := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1, 0.5, -2} {
		assert.Equal(t, DefaultMultiplier, RetryPolicy{Multiplier: m}.normalized().Multiplier, m)
	}
	p := RetryPolicy{MaxDelay: math.MaxInt64, Multiplier: 1000, Jitter: JitterNone}.normalized()
	assert.Equal(t, 100*time.Millisecond, p.delay(1))
	assert.Equal(t, 100*time.Second, p.delay(2))
	assert.Equal(t, time.Duration(math.MaxInt64), p.delay(50))
	q := RetryPolicy{InitialDelay: time.Second, MaxDelay: 5 * time.Second, Multiplier: 3, Jitter: JitterNone}.normalized()
	assert.Equal(t, []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second},
		[]time.Duration{q.delay(1), q.delay(2), q.delay(3), q.delay(4)})
}

// FuzzDelay checks the delay bounds over arbitrary policies.
func FuzzDelay(f *testing.F) {
	f.Add(int64(0), int64(math.MaxInt64), 1000.0, 0, 5)
	f.Add(int64(1), int64(1), math.NaN(), 1, 1)
	f.Add(int64(math.MaxInt64), int64(0), math.Inf(1), 2, math.MaxInt)
	f.Add(int64(-1), int64(-1), -1.0, 3, -1)
	f.Fuzz(func(t *testing.T, initial, limit int64, m float64, jitter, n int) {
		p := RetryPolicy{InitialDelay: time.Duration(initial), MaxDelay: time.Duration(limit), Multiplier: m, Jitter: Jitter(jitter)}.normalized()
		d := p.delay(n)
		if d < 0 || d > p.MaxDelay {
			t.Fatalf("delay %v outside [0, %v] for %+v, retry %d", d, p.MaxDelay, p, n)
		}
		if p.Jitter == JitterNone && n >= 1 && d < min(p.InitialDelay, p.MaxDelay) {
			t.Fatalf("delay %v below the initial delay %v", d, p.InitialDelay)
		}
	})
}
