package ratelimit

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resilient-go/resilient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is an in-memory host that records when each request came, by
// host; synctest bubbles need one (a real socket never lets time advance).
type clock struct {
	mu   sync.Mutex
	seen map[string][]time.Duration
	zero time.Time
}

func (c *clock) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.seen[r.URL.Host] = append(c.seen[r.URL.Host], time.Since(c.zero))
	c.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
}

func TestWithRateLimit(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		hosts     []string // one call each, in order, all at once from one goroutine
		want      map[string][]time.Duration
	}{
		{"paced after the burst", 10, 2, []string{"a", "a", "a", "a"},
			map[string][]time.Duration{"a": {0, 0, ms(100), ms(200)}}},
		{"each host on its own", 10, 1, []string{"a", "b", "a", "b"},
			map[string][]time.Duration{"a": {0, ms(100)}, "b": {0, ms(100)}}},
		{"zero rate: no limit", 0, 1, []string{"a", "a", "a"},
			map[string][]time.Duration{"a": {0, 0, 0}}},
		{"NaN rate: no limit", math.NaN(), 1, []string{"a", "a"},
			map[string][]time.Duration{"a": {0, 0}}},
		{"burst below 1 means 1", 10, -5, []string{"a", "a"},
			map[string][]time.Duration{"a": {0, ms(100)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &clock{seen: map[string][]time.Duration{}, zero: time.Now()}
				c := &http.Client{Transport: resilient.NewTransport(base, WithRateLimit(tt.perSecond, tt.burst))}
				for _, h := range tt.hosts {
					resp, err := c.Get("http://" + h + ".example/")
					require.NoError(t, err)
					resp.Body.Close()
				}
				want := map[string][]time.Duration{}
				for h, at := range tt.want {
					want[h+".example"] = at
				}
				assert.Equal(t, want, base.seen)
			})
		})
	}
}

// TestRateLimitDeadline: a wait that does not fit the call's deadline
// fails at once with ErrThrottled and the wait it needed; nothing is sent,
// and the token is given back.
func TestRateLimitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &clock{seen: map[string][]time.Duration{}, zero: time.Now()}
		c := &http.Client{Transport: resilient.NewTransport(base, resilient.Recommended(), WithRateLimit(1, 1))}
		resp, err := c.Get("http://a.example/")
		require.NoError(t, err)
		resp.Body.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://a.example/", nil)
		start := time.Now()
		_, err = c.Do(req)
		assert.Equal(t, start, time.Now(), "at once")
		require.ErrorIs(t, err, resilient.ErrThrottled)
		var te *resilient.ThrottledError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "http://a.example", te.Key)
		assert.Equal(t, time.Second, te.RetryAfter)
		assert.Len(t, base.seen["a.example"], 1)

		resp, err = c.Get("http://a.example/") // no deadline: waits its turn
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []time.Duration{0, time.Second}, base.seen["a.example"], "the refused call took no token")
	})
}

// TestRateLimitCancel: the caller's cancellation ends the wait.
func TestRateLimitCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 1)
		req, _ := http.NewRequest("GET", "http://a.example/", nil)
		require.NoError(t, l.Wait(context.Background(), req))
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		assert.ErrorIs(t, l.Wait(ctx, req), context.Canceled)
	})
}

func TestRateLimitBounded(t *testing.T) {
	l := New(1, 1)
	l.max = 8
	for i := range 100 {
		req, _ := http.NewRequest("GET", "http://h"+strconv.Itoa(i)+".example/", nil)
		require.NoError(t, l.Wait(context.Background(), req))
	}
	assert.LessOrEqual(t, len(l.m), 8)
}

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
