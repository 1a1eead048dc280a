package resilient

import (
	"context"
	"errors"
	"io"
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

// TestThrottledThroughURLError: a call refused by the gate fails through
// http.Client with an error that is ErrThrottled and a *ThrottledError.
func TestThrottledThroughURLError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				return reply(r, 429, "", "Retry-After", "3600"), nil
			}
			return reply(r, 200, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, Recommended())}
		code, err := get(t, c, "http://api.example/")
		require.NoError(t, err)
		assert.Equal(t, 429, code)
		_, err = get(t, c, "http://api.example/")
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrThrottled)
		var te *ThrottledError
		require.True(t, errors.As(err, &te))
		assert.Equal(t, "http://api.example", te.Key)
		assert.InDelta(t, float64(time.Hour), float64(te.RetryAfter), float64(16*time.Minute))
	})
}

// quotaHost is an in-memory host with a quota of requests, as a real one
// counts it: each request it serves uses one, every answer says how many
// are left in the IETF RateLimit field, and a request over the quota is
// answered 429. It reads each request body whole before it answers, after
// delay.
type quotaHost struct {
	delay  time.Duration
	status func(*http.Request) int // nil: 200

	mu   sync.Mutex
	left int
	sent int
}

func (h *quotaHost) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent++
	if h.left == 0 {
		return reply(r, 429, "", "RateLimit", `"q";r=0;t=60`), nil
	}
	h.left--
	code := 200
	if h.status != nil {
		code = h.status(r)
	}
	return reply(r, code, "", "RateLimit", `"q";r=`+strconv.Itoa(h.left)+`;t=60`), nil
}

func (h *quotaHost) state() (left, sent int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.left, h.sent
}

// byteByByte is a request body without GetBody that yields one byte every
// 10 ms, n times.
type byteByByte struct{ n int }

func (b *byteByByte) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(10 * time.Millisecond)
	b.n--
	return copy(p, "x"), nil
}

func (*byteByByte) Close() error { return nil }

// TestGateSpendsQuotaOnlyForSentAttempts: a quota the host announced is
// spent only by the requests actually sent. A hedge timer that fires but
// sends no hedge (the body is not recorded whole yet, or the budget is
// spent), and an attempt that the limiter or the breaker refuses, take
// nothing of it: the client holds its calls back only once the host has
// no request left.
func TestGateSpendsQuotaOnlyForSentAttempts(t *testing.T) {
	refuse := limiterFunc(func(r *http.Request) error {
		if r.Header.Get("X-Refuse") != "" {
			return &ThrottledError{}
		}
		return nil
	})
	tests := []struct {
		name  string
		host  *quotaHost
		opts  []Option
		spend func(t *testing.T, c *http.Client)
		sent  int // requests the host served during spend
	}{
		{"hedge timer while the body is recorded", &quotaHost{left: 4},
			[]Option{WithIdempotencyKey(), WithHedging(HedgePolicy{Delay: 3 * time.Millisecond})},
			func(t *testing.T, c *http.Client) {
				req, _ := http.NewRequest("POST", "http://api.example/pay", &byteByByte{n: 10})
				resp, err := c.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, 200, resp.StatusCode)
			}, 1},
		{"hedge timer with the budget spent", &quotaHost{left: 4, delay: 100 * time.Millisecond},
			[]Option{WithHedging(HedgePolicy{Delay: time.Millisecond}),
				WithRetry(RetryPolicy{MaxRetryAfter: time.Second, Budget: RetryBudget{Ratio: 1e-9, MinPerSecond: 1e-9}})},
			func(t *testing.T, c *http.Client) {
				code, err := get(t, c, "http://api.example/")
				require.NoError(t, err)
				assert.Equal(t, 200, code)
			}, 1},
		{"the limiter refuses", &quotaHost{left: 4}, []Option{WithLimiter(refuse)},
			func(t *testing.T, c *http.Client) {
				req, _ := http.NewRequest("GET", "http://api.example/", nil)
				req.Header.Set("X-Refuse", "1")
				_, err := c.Do(req)
				require.ErrorIs(t, err, ErrThrottled)
			}, 0},
		{"the breaker refuses", &quotaHost{left: 5, status: func(r *http.Request) int {
			if r.URL.Path == "/fail" {
				return 500
			}
			return 200
		}}, nil,
			func(t *testing.T, c *http.Client) {
				code, err := get(t, c, "http://api.example/fail")
				require.NoError(t, err)
				assert.Equal(t, 500, code)
				_, err = get(t, c, "http://api.example/")
				require.ErrorIs(t, err, ErrCircuitOpen)
				time.Sleep(time.Second + time.Millisecond) // the breaker lets a probe through
			}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := append([]Option{WithRetry(RetryPolicy{MaxRetryAfter: time.Second}),
					WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1, OpenTimeout: time.Second})}, tt.opts...)
				c := &http.Client{Transport: NewTransport(tt.host, opts...)}
				_, err := get(t, c, "http://api.example/") // announces the quota
				require.NoError(t, err)
				left, _ := tt.host.state()
				tt.spend(t, c)
				after, sent := tt.host.state()
				require.Equal(t, left-tt.sent, after, "requests sent while spending")
				for range after {
					code, err := get(t, c, "http://api.example/")
					require.NoError(t, err, "the host has requests left")
					assert.Equal(t, 200, code)
				}
				_, err = get(t, c, "http://api.example/")
				assert.ErrorIs(t, err, ErrThrottled, "none left: held back")
				_, total := tt.host.state()
				assert.Equal(t, sent+after, total, "nothing sent over the quota")
			})
		})
	}
}

// TestGateSpreadsWaitersWithinTheirLimits: the host's wait is what is
// compared with MaxRetryAfter and the deadline; the random spread of the
// waiters comes after, within what is left of them. With Retry-After: 1
// and MaxRetryAfter: 1s, every waiting caller goes at 1 s; with more room,
// they are spread over at most a quarter of the closure, never past it.
func TestGateSpreadsWaitersWithinTheirLimits(t *testing.T) {
	tests := []struct {
		name     string
		maxAfter time.Duration
		timeout  time.Duration // the callers' own, 0: none
		latest   time.Duration // the last a caller may be sent, from the 429
	}{
		{"MaxRetryAfter equal to the wait", time.Second, 0, time.Second},
		{"MaxRetryAfter a little longer", 1100 * time.Millisecond, 0, 1100 * time.Millisecond},
		{"deadline a little longer", time.Minute, 1100 * time.Millisecond, 1100 * time.Millisecond},
		{"room for the whole spread", time.Minute, 0, time.Second + time.Second/4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				th := &throttler{first: []string{"429", "Retry-After", "1"}}
				c := &http.Client{Transport: NewTransport(th, WithRetry(RetryPolicy{MaxAttempts: 1, MaxRetryAfter: tt.maxAfter}))}
				start := time.Now()
				code, err := get(t, c, "http://api.example/")
				require.NoError(t, err)
				require.Equal(t, 429, code)
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						ctx := context.Background()
						if tt.timeout > 0 {
							var cancel context.CancelFunc
							ctx, cancel = context.WithTimeout(ctx, tt.timeout)
							defer cancel()
						}
						req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/", nil)
						resp, err := c.Do(req)
						if assert.NoError(t, err, "the host's wait fits") {
							resp.Body.Close()
						}
					})
				}
				wg.Wait()
				seen := th.at("api.example")
				require.Len(t, seen, 9)
				for _, at := range seen[1:] {
					assert.GreaterOrEqual(t, at.Sub(start), time.Second)
					assert.LessOrEqual(t, at.Sub(start), tt.latest)
				}
			})
		})
	}
}

// TestGateRecheckedAfterLimiterWait: the gate is looked at again after the
// limiter's wait, for an attempt and for a hedge: another call's 429 that
// closed it meanwhile holds the attempt until it opens, and refuses the
// hedge, instead of either being sent into the throttle.
func TestGateRecheckedAfterLimiterWait(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		held   int           // which Wait of /held the limiter holds for 1 s
		sent   int           // requests to /held
		notBef time.Duration // the last of them is sent no sooner
	}{
		{"an attempt", nil, 1, 1, 5*time.Second + 100*time.Millisecond},
		{"a hedge", []Option{WithHedging(HedgePolicy{Delay: 10 * time.Millisecond})}, 2, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu   sync.Mutex
					seen []time.Duration // when /held was sent
				)
				start := time.Now()
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					switch r.URL.Path {
					case "/busy":
						return reply(r, 429, "", "Retry-After", "5"), nil
					case "/held":
						mu.Lock()
						seen = append(seen, time.Since(start))
						mu.Unlock()
						time.Sleep(2 * time.Second) // slow enough to be hedged
					}
					return reply(r, 200, "ok"), nil
				})
				var waits atomic.Int32
				lim := limiterFunc(func(r *http.Request) error {
					if r.URL.Path == "/held" && int(waits.Add(1)) == tt.held {
						time.Sleep(time.Second)
					}
					return nil
				})
				opts := append([]Option{WithRetry(RetryPolicy{MaxAttempts: 2}), WithLimiter(lim)}, tt.opts...)
				c := &http.Client{Transport: NewTransport(base, opts...)}
				done := make(chan struct{})
				go func() {
					defer close(done)
					code, err := get(t, c, "http://api.example/held")
					assert.NoError(t, err)
					assert.Equal(t, 200, code)
				}()
				time.Sleep(100 * time.Millisecond)
				code, err := get(t, c, "http://api.example/busy") // closes the gate until 5.1 s
				require.NoError(t, err)
				assert.Equal(t, 429, code)
				<-done
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, seen, tt.sent, "nothing sent into the throttle")
				assert.GreaterOrEqual(t, seen[len(seen)-1], tt.notBef)
			})
		})
	}
}

// TestGateCountedQuotaTakesTheHostsNewerReset: once the client has counted
// a host's quota down to 0, the host's own answers still count: one that
// says its quota resets sooner opens the gate then, with no request left
// or a few; one that says later keeps it closed longer.
func TestGateCountedQuotaTakesTheHostsNewerReset(t *testing.T) {
	tests := []struct {
		name    string
		third   string        // the RateLimit field of the answer to the quota's last request
		opensAt time.Duration // 0: the next call does not fit MaxRetryAfter
	}{
		{"no request left, sooner", `"q";r=0;t=5`, 5 * time.Second},
		{"a new window, sooner", `"q";r=3;t=5`, 5 * time.Second},
		{"no request left, later", `"q";r=0;t=90`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: steps(
					status(200, "RateLimit", `"q";r=2;t=60`),
					status(200, "RateLimit", `"q";r=1;t=60`),
					status(200, "RateLimit", tt.third),
					status(200))}
				c := &http.Client{Transport: NewTransport(s, WithRetry(RetryPolicy{}))}
				start := time.Now()
				for range 3 { // the last two spend the counted quota
					_, err := get(t, c, "http://api.example/")
					require.NoError(t, err)
				}
				require.Equal(t, start, time.Now())
				_, err := get(t, c, "http://api.example/")
				if tt.opensAt == 0 {
					assert.ErrorIs(t, err, ErrThrottled)
					assert.Equal(t, 3, s.attempts())
					return
				}
				require.NoError(t, err)
				assert.Equal(t, 4, s.attempts())
				waited := time.Since(start)
				assert.GreaterOrEqual(t, waited, tt.opensAt)
				assert.LessOrEqual(t, waited, tt.opensAt+tt.opensAt/4)
			})
		})
	}
}

// TestGateRefundNeverExceedsTheHostsCount: a refund gives back the request
// that an unsent attempt took of a counted quota; when the host has said
// since that fewer are left (a count that never included the unsent
// attempt), the host's word stands and the refund must not raise it.
func TestGateRefundNeverExceedsTheHostsCount(t *testing.T) {
	g := newGate(newBreakerSet(BreakerPolicy{}.normalized(), nil), 10)
	req := newRequest(http.MethodGet, "http://api.example/", nil)
	g.set(req, time.Minute, 5)
	_, _, _, took := g.look(req, true) // an attempt takes one, then is refused
	require.NotZero(t, took)
	g.set(req, time.Minute, 1) // another call's answer: 1 left
	g.refund(req, took)
	sent := 0
	for range 10 {
		wait, _, _, tk := g.look(req, true)
		if wait > 0 || tk == 0 {
			break
		}
		sent++
	}
	assert.Equal(t, 1, sent, "the host said 1 request is left")
}
