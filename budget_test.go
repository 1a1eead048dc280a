package resilient

import (
	"context"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// load drives workers goroutines through a client over base for d of fake
// time, and returns the attempts per call and the share of calls that
// succeeded, counting only the calls that started after skip.
func load(t *testing.T, base http.RoundTripper, p RetryPolicy, workers int, d, skip time.Duration) (perCall, success float64) {
	t.Helper()
	start := time.Now()
	var calls, ok, attempts atomic.Int64
	count := func(_ context.Context, e Event) {
		if e.Kind != EventDone || time.Since(start)-e.Duration < skip {
			return
		}
		calls.Add(1)
		attempts.Add(int64(e.Attempt))
		if e.Err == nil && e.StatusCode == 200 {
			ok.Add(1)
		}
	}
	c := &http.Client{Transport: NewTransport(base, WithRetry(p), WithObserver(count))}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Since(start) < d {
				if resp, err := c.Get("http://api.example/"); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	require.Positive(t, calls.Load())
	return float64(attempts.Load()) / float64(calls.Load()), float64(ok.Load()) / float64(calls.Load())
}

// failing answers after 10 ms; failRate of the answers are 503s, spread
// evenly and deterministically.
func failing(attempts *atomic.Int64, failEvery func(n int64) bool) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n := attempts.Add(1)
		time.Sleep(10 * time.Millisecond)
		if failEvery(n) {
			return reply(r, 503, "down"), nil
		}
		return reply(r, 200, "ok"), nil
	})
}

func TestBudgetUnderTotalOutage(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var attempts atomic.Int64
			base := failing(&attempts, func(int64) bool { return true })
			perCall, _ := load(t, base, RetryPolicy{Budget: RetryBudget{Disabled: disabled}}, 64, 10*time.Second, time.Second)
			t.Logf("budget disabled=%v: %.3f attempts per call", disabled, perCall)
			if disabled {
				assert.InDelta(t, 3.0, perCall, 0.01)
			} else {
				assert.LessOrEqual(t, perCall, 1.25)
			}
		})
	}
}

func TestBudgetUnderPartialFailure(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var attempts atomic.Int64
			base := failing(&attempts, func(n int64) bool { return n%10 < 3 }) // 30 %
			perCall, success := load(t, base, RetryPolicy{Budget: RetryBudget{Disabled: disabled}}, 64, 10*time.Second, time.Second)
			t.Logf("budget disabled=%v: %.3f attempts per call, %.3f succeeded", disabled, perCall, success)
			if disabled {
				return
			}
			// 64 workers make about 5 000 calls a second: the floor adds
			// 1 retry per second, nothing to speak of.
			assert.LessOrEqual(t, perCall, 1+DefaultBudgetRatio+0.01)
			// First attempts succeed 70 % of the time, and the retries the
			// ratio allows (20 % of calls) succeed 70 % of the time too.
			assert.GreaterOrEqual(t, success, 0.7+0.2*0.7-0.02)
		})
	}
}

// TestBudgetQuietClient: a fresh client can still retry one failing call up
// to its MaxAttempts; that is what the floor is for.
func TestBudgetQuietClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 5}))}
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 5, base.attempts())
	})
}

// TestBudgetExhaustedReturnsAtOnce checks that a spent budget ends the call
// without waiting, and says so.
func TestBudgetExhaustedReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503))}
		var exhausted atomic.Int32
		var last Event
		obs := func(_ context.Context, e Event) {
			if e.Kind == EventBudgetExhausted {
				exhausted.Add(1)
			}
			if e.Kind == EventAttempt {
				last = e
			}
		}
		c := &http.Client{Transport: NewTransport(base,
			WithRetry(RetryPolicy{MaxAttempts: 100, Jitter: JitterNone, Budget: RetryBudget{MinPerSecond: 0.5, Window: 10 * time.Second}}),
			WithObserver(obs))}
		start := time.Now()
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 503, resp.StatusCode, "the last response")
		// The floor is 5 retries in the window (0.2 × 1 call adds 0.2).
		assert.Equal(t, 6, base.attempts())
		assert.Equal(t, int32(1), exhausted.Load())
		assert.Zero(t, last.Wait, "no wait is reported for a retry that will not happen")
		assert.Empty(t, last.WaitReason)
		// 100+200+400+800+1600 ms of backoff, then no wait at all.
		assert.Equal(t, 3100*time.Millisecond, time.Since(start))

		// Ten seconds later the window has moved on: retries are back.
		time.Sleep(10 * time.Second)
		resp, err = c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 12, base.attempts())
	})
}

// TestBudgetRefundedForRefusedRetry: a retry refused by an open breaker
// does not spend the budget.
func TestBudgetRefundedForRefusedRetry(t *testing.T) {
	b := newBudget(RetryBudget{MinPerSecond: 0.1, Window: 10 * time.Second}) // a floor of 1
	require.True(t, b.withdraw())
	require.False(t, b.withdraw())
	b.refund()
	assert.True(t, b.withdraw())

	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(503))
		c := &http.Client{Transport: NewTransport(base,
			WithRetry(RetryPolicy{MaxAttempts: 3, Budget: RetryBudget{MinPerSecond: 0.1}}),
			WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1, HalfOpenProbes: 1}))}
		_, _ = get(t, c, "http://a.example/") // trips: no retry, the loop sees it open
		tr := c.Transport.(*Transport).rt.(*callTransport)
		assert.True(t, tr.budget.withdraw(), "no budget was spent on the refused retry")
	})
}

// TestBudgetForgetsOldTraffic: calls made long before a retry do not buy
// a burst of retries now.
func TestBudgetForgetsOldTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(RetryBudget{MinPerSecond: 0.1, Window: 10 * time.Second})
		for range 10_000 {
			b.call()
		}
		time.Sleep(time.Hour)
		n := 0
		for b.withdraw() {
			n++
		}
		// 10 000 calls spread over an hour: about 28 in the last 10 s,
		// so 5 retries by ratio and 1 by the floor.
		assert.Equal(t, 6, n)
	})
}

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
