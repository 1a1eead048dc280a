package resilient

import (
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBudgetTinyWindowClamped checks that a Window too short to be cut in
// buckets means the 10 ms minimum instead of a division by zero.
func TestBudgetTinyWindowClamped(t *testing.T) {
	for _, tt := range []struct {
		window, want time.Duration
	}{
		{time.Nanosecond, minBudgetWindow},
		{5 * time.Nanosecond, minBudgetWindow},
		{budgetBuckets - 1, minBudgetWindow},
		{time.Millisecond, minBudgetWindow},
		{minBudgetWindow - 1, minBudgetWindow},
		{minBudgetWindow, minBudgetWindow},
		{time.Second, time.Second},
		{0, DefaultBudgetWindow},
		{-time.Second, DefaultBudgetWindow},
		{math.MaxInt64, math.MaxInt64},
	} {
		t.Run(tt.window.String(), func(t *testing.T) {
			b := newBudget(RetryBudget{Window: tt.window})
			assert.Equal(t, tt.want, b.window)
			assert.Positive(t, b.width)
			for range 3 {
				b.call()
				b.withdraw()
			}
		})
	}
}

// TestBudgetTinyWindowThroughTransport sends calls through a client whose
// budget window is 5 ns: nothing panics, and the floor of the 10 ms window
// (10 retries at 1 000 per second) lets retries through.
func TestBudgetTinyWindowThroughTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{Budget: RetryBudget{Window: 5 * time.Nanosecond, MinPerSecond: 1000}}))}
		for range 5 {
			resp, err := c.Get("http://api.example/")
			require.NoError(t, err)
			resp.Body.Close()
			time.Sleep(time.Second)
		}
		assert.Equal(t, 15, base.attempts(), "every call used its 3 attempts")
	})
}

// TestBudgetNonFiniteMeansDefault checks that NaN and infinite ratios and
// floors mean the defaults.
func TestBudgetNonFiniteMeansDefault(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0} {
		b := newBudget(RetryBudget{Ratio: v, MinPerSecond: v})
		assert.Equal(t, DefaultBudgetRatio, b.ratio, v)
		assert.Equal(t, DefaultBudgetMinPerSecond*DefaultBudgetWindow.Seconds(), b.floor, v)
	}
}
