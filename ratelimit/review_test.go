package ratelimit

import (
	"context"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resilient-go/resilient"
)

// TestNilAndZeroLimiterSetNoLimit: a nil *Limiter (given to WithLimiter
// as an interface, so not removed) and the zero Limiter let every request
// through instead of panicking.
func TestNilAndZeroLimiterSetNoLimit(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://a.example/", nil)
	for name, l := range map[string]*Limiter{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			for range 3 {
				require.NoError(t, l.Wait(context.Background(), req))
			}
			rt := resilient.NewTransport(&clock{seen: map[string][]time.Duration{}}, resilient.WithLimiter(l))
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
		})
	}
}

// TestTinyAndHugeRates: a rate so small that the next token is centuries
// away fails at once within a deadline (no overflow to a negative wait),
// and waits for the context without one; a huge burst is fine.
func TestTinyAndHugeRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://a.example/", nil)
		for _, rate := range []float64{1e-300, math.SmallestNonzeroFloat64, 1e-9} {
			l := New(rate, 1)
			require.NoError(t, l.Wait(context.Background(), req), "the burst")
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			start := time.Now()
			err := l.Wait(ctx, req)
			cancel()
			assert.Equal(t, start, time.Now(), "at once")
			require.ErrorIs(t, err, resilient.ErrThrottled)
			var te *resilient.ThrottledError
			require.ErrorAs(t, err, &te)
			assert.Greater(t, te.RetryAfter, time.Hour)

			ctx, cancel = context.WithCancel(context.Background())
			go func() { time.Sleep(time.Second); cancel() }()
			assert.ErrorIs(t, l.Wait(ctx, req), context.Canceled)
		}
		l := New(1, math.MaxInt)
		for range 1000 {
			require.NoError(t, l.Wait(context.Background(), req))
		}
	})
}

// TestRateLimitWaitEndsOnRequestCancel: through the resilient stack, a
// closed Request.Cancel ends the wait for a token.
func TestRateLimitWaitEndsOnRequestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &clock{seen: map[string][]time.Duration{}, zero: time.Now()}
		c := &http.Client{Transport: resilient.NewTransport(base, WithRateLimit(0.001, 1))}
		resp, err := c.Get("http://a.example/")
		require.NoError(t, err)
		resp.Body.Close()
		req2, _ := http.NewRequest("GET", "http://a.example/", nil)
		cancel2 := make(chan struct{})
		req2.Cancel = cancel2 //lint:ignore SA1019 as above
		go func() { time.Sleep(time.Second); close(cancel2) }()
		start := time.Now()
		_, err = c.Transport.RoundTrip(req2)
		require.Error(t, err)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Len(t, base.seen["a.example"], 1, "not sent")
	})
}
