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

// hosts is an in-memory base transport whose answer depends on the host;
// it counts the requests each host received.
type hosts struct {
	mu     sync.Mutex
	answer map[string]func(*http.Request) (*http.Response, error)
	count  map[string]int
}

func newHosts() *hosts {
	return &hosts{answer: map[string]func(*http.Request) (*http.Response, error){}, count: map[string]int{}}
}

func (h *hosts) set(host string, f func(*http.Request) (*http.Response, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer[host] = f
}

func (h *hosts) calls(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count[host]
}

func (h *hosts) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.count[r.URL.Host]++
	f := h.answer[r.URL.Host]
	h.mu.Unlock()
	if f == nil {
		return reply(r, 200, "ok"), nil
	}
	return f(r)
}

func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

var threeStrikes = BreakerPolicy{ConsecutiveFailures: 3, OpenTimeout: 10 * time.Second}

func TestBreakerTripsAndFailsFast(t *testing.T) {
	tests := []struct {
		name   string
		answer func(*http.Request) (*http.Response, error)
		trips  bool
	}{
		{"500s trip it", status(500), true},
		{"503s trip it", status(503), true},
		{"429s trip it", status(429), true},
		{"408s trip it", status(408), true},
		{"refused connections trip it", fail(errRefused), true},
		{"404s never trip it", status(404), false},
		{"400s never trip it", status(400), false},
		{"200s never trip it", status(200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := newHosts()
				base.set("a.example", tt.answer)
				c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(threeStrikes))}
				for range 3 {
					_, err := get(t, c, "http://a.example/")
					if err != nil {
						assert.NotErrorIs(t, err, ErrCircuitOpen)
					}
				}
				_, err := get(t, c, "http://a.example/")
				if !tt.trips {
					assert.NotErrorIs(t, err, ErrCircuitOpen)
					assert.Equal(t, 4, base.calls("a.example"))
					return
				}
				require.ErrorIs(t, err, ErrCircuitOpen)
				var coe *CircuitOpenError
				require.ErrorAs(t, err, &coe)
				assert.Equal(t, "http://a.example", coe.Key)
				assert.Equal(t, StateOpen, coe.State)
				assert.Equal(t, 10*time.Second, coe.RetryAfter)
				assert.Contains(t, err.Error(), "a.example is open, next probe in 10s")
				assert.Equal(t, 3, base.calls("a.example"), "fails fast without touching the server")
				status, err := get(t, c, "http://b.example/")
				assert.NoError(t, err, "another host is unaffected")
				assert.Equal(t, 200, status)
			})
		})
	}
}

func TestBreakerRecoversThroughProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(500))
		var changes []string
		p := threeStrikes
		p.OnStateChange = func(key string, from, to State) { changes = append(changes, key+" "+from.String()+"→"+to.String()) }
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p))}
		for range 3 {
			_, _ = get(t, c, "http://a.example/")
		}
		time.Sleep(4 * time.Second)
		_, err := get(t, c, "http://a.example/")
		var coe *CircuitOpenError
		require.ErrorAs(t, err, &coe)
		assert.Equal(t, 6*time.Second, coe.RetryAfter, "the error says when a probe goes through")

		time.Sleep(6*time.Second + time.Millisecond)
		_, err = get(t, c, "http://a.example/") // the probe fails: open again
		assert.NoError(t, err)
		_, err = get(t, c, "http://a.example/")
		assert.ErrorIs(t, err, ErrCircuitOpen)
		assert.Equal(t, 4, base.calls("a.example"))

		base.set("a.example", status(200))
		time.Sleep(10*time.Second + time.Millisecond)
		status, err := get(t, c, "http://a.example/") // the probe succeeds: closed
		require.NoError(t, err)
		assert.Equal(t, 200, status)
		status, err = get(t, c, "http://a.example/")
		require.NoError(t, err)
		assert.Equal(t, 200, status)
		assert.Equal(t, []string{
			"http://a.example closed→open", "http://a.example open→half-open", "http://a.example half-open→open",
			"http://a.example open→half-open", "http://a.example half-open→closed",
		}, changes)
	})
}

// TestBreakerStopsRetries checks that retrying ends at once when the
// breaker opens: no wait for an attempt it would refuse.
func TestBreakerStopsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(503))
		c := &http.Client{Transport: NewTransport(base,
			WithRetry(RetryPolicy{MaxAttempts: 10, Jitter: JitterNone, InitialDelay: time.Second}),
			WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 2}))}
		start := time.Now()
		status, err := get(t, c, "http://a.example/")
		require.NoError(t, err, "the last response comes back")
		assert.Equal(t, 503, status)
		assert.Equal(t, 2, base.calls("a.example"))
		assert.Equal(t, time.Second, time.Since(start), "one wait, before the second attempt; none after it tripped")

		// A new call meets the open breaker: refused at once, not retried.
		start = time.Now()
		_, err = get(t, c, "http://a.example/")
		assert.ErrorIs(t, err, ErrCircuitOpen)
		var re *RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 0, re.Attempts, "a refused attempt was never sent")
		assert.Equal(t, time.Duration(0), time.Since(start))
		assert.Equal(t, 2, base.calls("a.example"))
	})
}

func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", stall)
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(threeStrikes))}
		for range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://a.example/", nil)
			_, err := c.Do(req)
			cancel()
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, ErrCircuitOpen)
		}
		assert.Equal(t, 5, base.calls("a.example"))
	})
}

func TestBreakerCountsAttemptTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", stall)
		c := &http.Client{Transport: NewTransport(base, WithTimeout(time.Second), WithCircuitBreaker(threeStrikes))}
		for range 3 {
			_, err := get(t, c, "http://a.example/")
			assertTimeout(t, err, ScopeAttempt)
		}
		_, err := get(t, c, "http://a.example/")
		assert.ErrorIs(t, err, ErrCircuitOpen)
	})
}

func TestBreakerFailureRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		var n atomic.Int32
		base.set("a.example", func(r *http.Request) (*http.Response, error) {
			if n.Add(1)%5 == 0 { // 20 % failures, never 5 in a row
				return reply(r, 500, "x"), nil
			}
			return reply(r, 200, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(BreakerPolicy{FailureRatio: 0.1, MinRequests: 20}))}
		var tripped int
		for i := range 40 {
			if _, err := get(t, c, "http://a.example/"); errors.Is(err, ErrCircuitOpen) {
				tripped = i
				break
			}
		}
		assert.Equal(t, 20, tripped, "judged once the window holds MinRequests")
	})
}

// TestBreakerHalfOpenProbes checks that a half-open breaker admits only its
// probes; other callers fail fast meanwhile.
func TestBreakerHalfOpenProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(500))
		p := threeStrikes
		p.HalfOpenProbes = 2
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p))}
		for range 3 {
			_, _ = get(t, c, "http://a.example/")
		}
		time.Sleep(11 * time.Second)
		release := make(chan struct{})
		base.set("a.example", func(r *http.Request) (*http.Response, error) {
			<-release
			return reply(r, 200, "ok"), nil
		})
		var wg sync.WaitGroup
		var ok, refused atomic.Int32
		for range 10 {
			wg.Go(func() {
				_, err := get(t, c, "http://a.example/")
				var coe *CircuitOpenError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &coe) && coe.State == StateHalfOpen:
					refused.Add(1)
				default:
					t.Errorf("unexpected %v", err)
				}
			})
		}
		synctest.Wait() // every caller is either refused or blocked in a probe
		close(release)
		wg.Wait()
		assert.Equal(t, int32(2), ok.Load())
		assert.Equal(t, int32(8), refused.Load())
	})
}

func TestBreakerFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(503))
		var seen []error
		fallback := func(req *http.Request, err error) (*http.Response, error) {
			seen = append(seen, err)
			return reply(req, 200, "cached"), nil
		}
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(threeStrikes), WithFallback(fallback))}
		for range 3 {
			status, err := get(t, c, "http://a.example/")
			require.NoError(t, err)
			assert.Equal(t, 503, status, "a response is never replaced")
		}
		assert.Empty(t, seen)
		resp, err := c.Get("http://a.example/")
		require.NoError(t, err)
		body := readAll(t, resp)
		assert.Equal(t, "cached", body)
		require.Len(t, seen, 1)
		assert.ErrorIs(t, seen[0], ErrCircuitOpen)

		// A fallback response without a body gets http.NoBody.
		rt := NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 1}),
			WithFallback(func(*http.Request, error) (*http.Response, error) { return &http.Response{StatusCode: 204}, nil }))
		base.set("c.example", fail(errReset))
		req, _ := http.NewRequest("GET", "http://c.example/", nil)
		fresp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, http.NoBody, fresp.Body)

		// A fallback that returns nothing keeps the error.
		c2 := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}),
			WithFallback(func(*http.Request, error) (*http.Response, error) { return nil, nil }))}
		base.set("b.example", fail(errReset))
		_, err = get(t, c2, "http://b.example/")
		assert.ErrorIs(t, err, errReset.Err)
	})
}

// TestBreakerSetBounded calls 100 000 hosts: the breakers kept stay bounded.
func TestBreakerSetBounded(t *testing.T) {
	base := newHosts()
	b := newBreaker(base, BreakerPolicy{MaxBreakers: 1000}, nil)
	for i := range 100_000 {
		req, _ := http.NewRequest("GET", "http://h"+strconv.Itoa(i)+".example/", nil)
		resp, err := b.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.LessOrEqual(t, b.set.size(), 1000)
	}
	assert.Equal(t, newBreaker(base, BreakerPolicy{}, nil).set.p.MaxBreakers, DefaultMaxBreakers)
}

// TestBreakerSetKeepsOpenBreakers checks that eviction drops closed
// breakers before an open one.
func TestBreakerSetKeepsOpenBreakers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("down.example", status(500))
		b := newBreaker(base, BreakerPolicy{MaxBreakers: 10, ConsecutiveFailures: 1}, nil)
		send := func(host string) error {
			req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
			resp, err := b.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			return err
		}
		require.NoError(t, send("down.example"))
		for i := range 100 {
			time.Sleep(time.Millisecond)
			require.NoError(t, send("h"+strconv.Itoa(i)+".example"))
		}
		assert.ErrorIs(t, send("down.example"), ErrCircuitOpen, "the open breaker survived")
	})
}

func TestBreakerKeys(t *testing.T) {
	s := newBreakerSet(BreakerPolicy{}.normalized(), nil)
	key := func(u string) string {
		req, _ := http.NewRequest("GET", u, nil)
		return s.key(req).String()
	}
	assert.Equal(t, "https://api.example", key("https://API.example:443/x"))
	assert.Equal(t, "http://api.example", key("http://api.example:80/y"))
	assert.Equal(t, "http://api.example:8080", key("http://api.example:8080/"))
	assert.NotEqual(t, key("http://api.example/"), key("https://api.example/"))
	custom := newBreakerSet(BreakerPolicy{Key: func(r *http.Request) string { return r.URL.Path }}.normalized(), nil)
	req, _ := http.NewRequest("GET", "http://x.example/tenant-1", nil)
	assert.Equal(t, "/tenant-1", custom.key(req).String())
}

// TestBreakerConcurrent drives 1 000 goroutines through the transitions.
func TestBreakerConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		recovered := time.Now().Add(2 * time.Second) // down for the first two seconds
		base.set("a.example", func(r *http.Request) (*http.Response, error) {
			if time.Now().Before(recovered) {
				return reply(r, 500, "x"), nil
			}
			return reply(r, 200, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, Recommended(), WithCircuitBreaker(BreakerPolicy{OpenTimeout: time.Second, HalfOpenProbes: 3}))}
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 5 * time.Millisecond)
				resp, err := c.Get("http://a.example/")
				if err == nil {
					resp.Body.Close()
				} else if !errors.Is(err, ErrCircuitOpen) {
					t.Errorf("unexpected %v", err)
				}
			})
		}
		wg.Wait()
		status, err := get(t, c, "http://a.example/")
		require.NoError(t, err)
		assert.Equal(t, 200, status, "closed again in the end")
	})
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b := make([]byte, 0, 64)
	buf := make([]byte, 64)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return string(b)
		}
	}
}
