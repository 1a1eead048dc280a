package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGateLargeQuotaNotCounted: a host that announces a large quota on
// every answer (GitHub's X-RateLimit-Remaining: 4999) keeps the gate on
// its one-load fast path, and the client does not count the quota down
// to a lock-out of its own making while the host says plenty is left.
func TestGateLargeQuotaNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return reply(r, 200, "ok", "X-RateLimit-Remaining", "4999", "X-RateLimit-Reset", "3600"), nil
		})
		rt := NewTransport(base, Recommended())
		c := &http.Client{Transport: rt}
		for range 6000 {
			_, err := get(t, c, "http://api.example/")
			require.NoError(t, err)
		}
		assert.Equal(t, int32(6000), sent.Load())
		assert.Zero(t, rt.(*Transport).rt.(*idempotencyTransport).next.(*callTransport).gate.latest.Load(), "no gate is held")
	})
}

// TestGateGarbageNeverShutsLong: huge, negative, fractional and malformed
// Retry-After and RateLimit values never panic, and never close a gate for
// longer than maxThrottle (plus the spread of the callers).
func TestGateGarbageNeverShutsLong(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		code int
	}{
		{"Retry-After huge", []string{"Retry-After", "99999999999999999999999999999"}, 429},
		{"Retry-After far date", []string{"Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"}, 503},
		{"Retry-After negative", []string{"Retry-After", "-5"}, 429},
		{"Retry-After garbage", []string{"Retry-After", "soon"}, 429},
		{"RateLimit huge t", []string{"RateLimit", `"d";r=0;t=999999999999999`}, 200},
		{"RateLimit negative t", []string{"RateLimit", `"d";r=0;t=-5`}, 200},
		{"RateLimit policy huge w", []string{"RateLimit", `"d";r=0`, "RateLimit-Policy", `"d";q=1;w=999999999999999`}, 200},
		{"X- epoch ms far", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1e300"}, 200},
		{"X- NaN remaining", []string{"X-RateLimit-Remaining", "NaN", "X-RateLimit-Reset", "5"}, 200},
		{"X- negative reset", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "-1e9"}, 200},
		{"X- just under epoch", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "99999999.99"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGate(newBreakerSet(BreakerPolicy{}.normalized(), nil), 8)
				req := newRequest("GET", "http://api.example/", nil)
				g.observe(req, reply(req, tt.code, "", tt.kv...))
				d, _ := g.closedFor(req, false)
				assert.GreaterOrEqual(t, d, time.Duration(0))
				assert.LessOrEqual(t, d, maxThrottle+maxThrottle/4)
				time.Sleep(maxThrottle)
				d, _ = g.closedFor(req, false)
				assert.LessOrEqual(t, d, maxThrottle/4, "open again after maxThrottle, but for the spread")
			})
		})
	}
}

// TestLimiterWaitEndsOnRequestCancel: a closed Request.Cancel ends the
// limiter's wait, as it ends every other wait of the stack; the waiting
// goroutine is gone when the call returns.
func TestLimiterWaitEndsOnRequestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return reply(r, 200, "ok"), nil
		})
		lim := ctxLimiter(func(ctx context.Context) error {
			<-ctx.Done() // a limiter that only knows the context
			return ctx.Err()
		})
		for _, opts := range [][]Option{{WithLimiter(lim)}, {Recommended(), WithLimiter(lim)}} {
			rt := NewTransport(base, opts...)
			cancel := make(chan struct{})
			req := newRequest("GET", "http://api.example/", nil)
			req.Cancel = cancel //lint:ignore SA1019 testing that it is honoured
			go func() { time.Sleep(time.Second); close(cancel) }()
			start := time.Now()
			_, err := rt.RoundTrip(req)
			require.Error(t, err)
			assert.Equal(t, time.Second, time.Since(start))
			assert.False(t, errors.Is(err, ErrThrottled), "the caller gave up: %v", err)
		}
		assert.Zero(t, sent.Load())
	})
}

// ctxLimiter is a Limiter of a function of the context.
type ctxLimiter func(context.Context) error

func (f ctxLimiter) Wait(ctx context.Context, _ *http.Request) error { return f(ctx) }

// TestGateManyHostsBounded: closing the gates of many hosts keeps at most
// max of them, whatever the order of their closures.
func TestGateManyHostsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(newBreakerSet(BreakerPolicy{}.normalized(), nil), 64)
		for i := range 10_000 {
			req := newRequest("GET", "http://h"+strconv.Itoa(i)+".example/", nil)
			g.set(req, time.Duration(10_000-i)*time.Second, int64(i%3))
			assert.LessOrEqual(t, g.size(), 64)
		}
	})
}

// BenchmarkGateQuota is what the gate costs a successful call to a host
// that announces a large quota on every answer, next to one that announces
// none.
func BenchmarkGateQuota(b *testing.B) {
	quota := http.Header{"X-Ratelimit-Remaining": {"4999"}, "X-Ratelimit-Reset": {"3600"}, "Content-Type": {"text/plain"}}
	for _, tt := range []struct {
		name string
		h    http.Header
	}{{"no quota", http.Header{"Content-Type": {"text/plain"}}}, {"large quota", quota}} {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: tt.h, Body: &memBody{n: 2}, Request: r}, nil
		})
		rt := NewTransport(base, Recommended())
		req := newRequest("GET", "http://api.example/v1/items", nil)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
