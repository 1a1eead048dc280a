package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// throttler is an in-memory host that answers its first request with
// first's status and headers, and 200 after that; it counts per host.
type throttler struct {
	first []string // status, then header pairs
	mu    sync.Mutex
	seen  map[string][]time.Time
}

func (th *throttler) RoundTrip(r *http.Request) (*http.Response, error) {
	th.mu.Lock()
	if th.seen == nil {
		th.seen = map[string][]time.Time{}
	}
	n := len(th.seen[r.URL.Host])
	th.seen[r.URL.Host] = append(th.seen[r.URL.Host], time.Now())
	th.mu.Unlock()
	if n == 0 && r.URL.Host == "api.example" {
		code, _ := strconv.Atoi(th.first[0])
		kv := append([]string(nil), th.first[1:]...)
		for i, v := range kv {
			if v == "now+3" {
				kv[i] = strconv.FormatInt(time.Now().Unix()+3, 10)
			}
		}
		return reply(r, code, "slow down", kv...), nil
	}
	return reply(r, 200, "ok"), nil
}

func (th *throttler) at(host string) []time.Time {
	th.mu.Lock()
	defer th.mu.Unlock()
	return append([]time.Time(nil), th.seen[host]...)
}

// TestGateHoldsOtherCalls: the first throttling answer closes the gate of
// that host; a call made meanwhile waits for it (spread by at most a
// quarter of the closure) instead of being sent into the throttle, and
// other hosts are not held.
func TestGateHoldsOtherCalls(t *testing.T) {
	tests := []struct {
		name  string
		first []string
		shut  time.Duration // how long the gate is closed from 0
	}{
		{"429 Retry-After", []string{"429", "Retry-After", "2"}, 2 * time.Second},
		{"503 Retry-After", []string{"503", "Retry-After", "2"}, 2 * time.Second},
		{"200 RateLimit r=0", []string{"200", "RateLimit", `"default";r=0;t=3`}, 3 * time.Second},
		{"200 RateLimit r=0, window from the policy", []string{"200", "RateLimit", `"burst";r=0`, "RateLimit-Policy", `"burst";q=10;w=4`}, 4 * time.Second},
		{"200 RateLimit dictionary", []string{"200", "RateLimit", `limit=10, remaining=0, reset=2`}, 2 * time.Second},
		{"200 X-RateLimit delta", []string{"200", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "3"}, 3 * time.Second},
		{"200 X-RateLimit epoch", []string{"200", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "now+3"}, 3 * time.Second},
		{"200 quota left: open", []string{"200", "RateLimit", `"default";r=5;t=3`}, 0},
		{"429 without Retry-After: open", []string{"429"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				th := &throttler{first: tt.first}
				// One attempt: the first call hands its answer back at once.
				c := &http.Client{Transport: NewTransport(th, Recommended(), WithRetry(RetryPolicy{MaxAttempts: 1}))}
				resp, err := c.Get("http://api.example/first")
				require.NoError(t, err)
				resp.Body.Close()
				start := time.Now()
				time.Sleep(100 * time.Millisecond)
				_, err = get(t, c, "http://other.example/")
				require.NoError(t, err)
				assert.Equal(t, start.Add(100*time.Millisecond), th.at("other.example")[0], "other hosts are not held")
				_, err = get(t, c, "http://api.example/second")
				require.NoError(t, err)
				seen := th.at("api.example")
				last := seen[len(seen)-1].Sub(start)
				if tt.shut == 0 {
					assert.Equal(t, 100*time.Millisecond, last)
					return
				}
				// After the gate opened, within a quarter of its closure.
				assert.GreaterOrEqual(t, last, tt.shut)
				assert.LessOrEqual(t, last, tt.shut+tt.shut/4)
			})
		})
	}
}

// TestGateFailsFast: a call whose wait for the gate does not fit its
// deadline or MaxRetryAfter fails at once with a *ThrottledError and sends
// nothing; one already under way returns its last response instead.
func TestGateFailsFast(t *testing.T) {
	tests := []struct {
		name    string
		after   string
		opts    []Option
		timeout time.Duration
	}{
		{"longer than MaxRetryAfter", "60", nil, 0},
		{"longer than the caller's deadline", "5", nil, 2 * time.Second},
		{"longer than the total timeout", "5", []Option{WithTotalTimeout(time.Second)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				th := &throttler{first: []string{"429", "Retry-After", tt.after}}
				c := &http.Client{Transport: NewTransport(th, append([]Option{WithRetry(RetryPolicy{MaxAttempts: 1})}, tt.opts...)...)}
				resp, err := c.Get("http://api.example/first")
				require.NoError(t, err, "the 429 is handed back")
				assert.Equal(t, 429, resp.StatusCode)
				resp.Body.Close()
				ctx := context.Background()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/second", nil)
				_, err = c.Do(req)
				assert.Equal(t, start, time.Now(), "at once")
				require.ErrorIs(t, err, ErrThrottled)
				var te *ThrottledError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, "http://api.example", te.Key)
				assert.Greater(t, te.RetryAfter, time.Duration(0))
				var re *RetryError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, 0, re.Attempts)
				assert.Len(t, th.at("api.example"), 1, "nothing sent into the throttle")
			})
		})
	}
}

func TestGateBoundedAndSwept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(newBreakerSet(BreakerPolicy{}.normalized(), nil), 8)
		for i := range 50 {
			g.close(newRequest("GET", "http://h"+strconv.Itoa(i)+".example/", nil), time.Duration(i+1)*time.Second)
		}
		assert.LessOrEqual(t, g.size(), 8)
		d, _ := g.closedFor(newRequest("GET", "http://h49.example/", nil), false)
		assert.Greater(t, d, 49*time.Second, "the gates that close longest are kept")
		time.Sleep(51 * time.Second)
		d, _ = g.closedFor(newRequest("GET", "http://h49.example/", nil), false)
		assert.Zero(t, d)
		assert.Zero(t, g.size(), "all open again: the map is emptied")
		assert.Zero(t, g.latest.Load())
	})
}

// TestGateOpenCostsOneLoad: while every gate is open, asking allocates
// nothing and reads no clock.
func TestGateOpenCostsOneLoad(t *testing.T) {
	g := newGate(newBreakerSet(BreakerPolicy{}.normalized(), nil), 8)
	req := newRequest("GET", "http://api.example/", nil)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}}
	allocs := testing.AllocsPerRun(100, func() {
		if d, _ := g.closedFor(req, true); d != 0 {
			t.Fatal("closed")
		}
		g.observe(req, resp)
	})
	assert.Zero(t, allocs)
}

// TestGateKeySharedWithBreaker: the gate names hosts as the breaker does,
// custom Key included.
func TestGateKeySharedWithBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				return reply(r, 429, "", "Retry-After", "60"), nil
			}
			return reply(r, 200, "ok"), nil
		})
		tenant := func(r *http.Request) string { return r.Header.Get("X-Tenant") }
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 1}), WithCircuitBreaker(BreakerPolicy{Key: tenant}))}
		send := func(host, who string) error {
			req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
			req.Header.Set("X-Tenant", who)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		require.NoError(t, send("a.example", "t1"))
		assert.True(t, errors.Is(send("b.example", "t1"), ErrThrottled), "same tenant, other host: same key")
		assert.NoError(t, send("a.example", "t2"), "other tenant")
	})
}

// TestGateQuota: RateLimit fields that say a few requests are left let
// that many more go, counted on the client's side (the host's count lags
// behind the requests in flight), then the gate closes until the reset.
func TestGateQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				return reply(r, 200, "ok", "RateLimit", `"default";r=2;t=10`), nil
			}
			return reply(r, 200, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}))}
		start := time.Now()
		for i := range 4 {
			_, err := get(t, c, "http://api.example/")
			require.NoError(t, err)
			if i < 3 {
				assert.Equal(t, start, time.Now(), "call %d goes at once", i+1)
			}
		}
		assert.GreaterOrEqual(t, time.Since(start), 10*time.Second, "the fourth waits for the reset")
		assert.LessOrEqual(t, time.Since(start), 10*time.Second+10*time.Second/4)
	})
}

// BenchmarkGateOpen is what the gate costs a successful call while every
// gate is open: the look before the attempt and the look at the answer.
func BenchmarkGateOpen(b *testing.B) {
	g := newGate(newBreakerSet(BreakerPolicy{}.normalized(), nil), DefaultMaxBreakers)
	req := newRequest("GET", "http://api.example/", nil)
	for _, tt := range []struct {
		name string
		h    http.Header
	}{
		{"no header fields", http.Header{}},
		{"three header fields", http.Header{"Content-Type": {"text/plain"}, "Date": {"x"}, "Content-Length": {"2"}}},
	} {
		resp := &http.Response{StatusCode: 200, Header: tt.h}
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := g.closedFor(req, true); d != 0 {
					b.Fatal("closed")
				}
				g.observe(req, resp)
			}
		})
	}
}
