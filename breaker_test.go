package resilient

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(time.Second), WithCircuitBreaker(threeStrikes))}
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

// TestBreakerFailureRatioIgnoresExcluded checks that requests the caller
// cancelled do not dilute FailureRatio: 8 cancelled, then 6 failures, and
// every judged request failed, so the breaker opens.
func TestBreakerFailureRatioIgnoresExcluded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", stall)
		p := BreakerPolicy{FailureRatio: 0.5, MinRequests: 5, ConsecutiveFailures: 1000}
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p))}
		for range 8 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://a.example/", nil)
			_, err := c.Do(req)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded)
		}
		base.set("a.example", status(500))
		for range 6 {
			if _, err := get(t, c, "http://a.example/"); err != nil {
				assert.ErrorIs(t, err, ErrCircuitOpen)
			}
		}
		_, err := get(t, c, "http://a.example/")
		assert.ErrorIs(t, err, ErrCircuitOpen)
		assert.Equal(t, 8+5, base.calls("a.example"), "opened once 5 judged requests had all failed")
	})
}

// TestBreakerFailureRatioCountsJudgedOnly checks the trip rule on counts
// directly: exclusions and requests in flight are not in the ratio.
func TestBreakerFailureRatioCountsJudgedOnly(t *testing.T) {
	p := BreakerPolicy{FailureRatio: 0.5, MinRequests: 4, ConsecutiveFailures: 1000}.normalized()
	trip := p.settings(&hostBreaker{key: "k"}, nil).ReadyToTrip
	for _, tt := range []struct {
		name                                string
		requests, successes, failures, excl uint32
		want                                bool
	}{
		{"all failed, many excluded", 14, 0, 6, 8, true},
		{"half failed, many in flight", 100, 2, 2, 0, true},
		{"below MinRequests judged", 20, 0, 3, 17, false},
		{"ratio not reached", 10, 6, 4, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := trip(gobreaker.Counts{Requests: tt.requests, TotalSuccesses: tt.successes, TotalFailures: tt.failures, TotalExclusions: tt.excl})
			assert.Equal(t, tt.want, got)
		})
	}
	nan := BreakerPolicy{FailureRatio: math.NaN()}.normalized()
	assert.Zero(t, nan.FailureRatio, "NaN means no ratio")
}

// TestBreakerKeysCanonical checks that every spelling of one host and port
// shares a breaker, and that different ones do not.
func TestBreakerKeysCanonical(t *testing.T) {
	s := newBreakerSet(BreakerPolicy{}.normalized(), nil)
	key := func(u string) string {
		req, err := http.NewRequest("GET", u, nil)
		require.NoError(t, err, u)
		return s.key(req).String()
	}
	for want, urls := range map[string][]string{
		"http://example.com": {"http://example.com", "http://example.com:", "http://example.com.",
			"http://example.com:080", "http://example.com:80", "HTTP://EXAMPLE.COM/x", "http://Example.Com.:0080/",
			"http://example.com.:"},
		"https://example.com": {"https://example.com:443", "https://example.com:0443", "https://EXAMPLE.com.:",
			"https://example.com./"},
		"http://example.com:8080": {"http://example.com:8080", "http://example.com:08080", "http://example.com.:8080"},
		"http://example.com:443":  {"http://example.com:443"},
		"https://example.com:80":  {"https://example.com:80"},
		"http://[::1]":            {"http://[::1]", "http://[::1]:80", "http://[::1]:", "http://[::1]:080"},
		"https://[::1]":           {"https://[::1]:443", "https://[::1]"},
		"http://[::1]:8080":       {"http://[::1]:8080"},
		"http://[fe80::ab]":       {"http://[FE80::AB]:80"},
		"http://10.0.0.1":         {"http://10.0.0.1:80"},
		"http://example.com:0":    {"http://example.com:00"},
	} {
		for _, u := range urls {
			assert.Equal(t, want, key(u), u)
		}
	}
}

// TestBreakerKeySharedAcrossSpellings checks it through the transport: the
// failures of differently spelled URLs open one breaker.
func TestBreakerKeySharedAcrossSpellings(t *testing.T) {
	down := roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 503, "x"), nil })
	c := &http.Client{Transport: NewTransport(down, WithCircuitBreaker(threeStrikes))}
	for _, u := range []string{"http://example.com:/", "http://example.com./", "http://EXAMPLE.com:080/"} {
		_, err := get(t, c, u)
		require.NoError(t, err)
	}
	_, err := get(t, c, "http://example.com/")
	assert.ErrorIs(t, err, ErrCircuitOpen)
}

// TestBreakerKeyAllocs checks that a URL already in canonical form, with or
// without a port, costs no allocation to key.
func TestBreakerKeyAllocs(t *testing.T) {
	s := newBreakerSet(BreakerPolicy{}.normalized(), nil)
	for _, u := range []string{"http://api.example/v1/items", "https://api.example:8443/", "http://[::1]:8080/"} {
		req, _ := http.NewRequest("GET", u, nil)
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = s.key(req) }), u)
	}
}

// headersThenStall blocks every read until its request's context ends.
type headersThenStall struct{ ctx context.Context }

func (b headersThenStall) Read([]byte) (int, error) { <-b.ctx.Done(); return 0, b.ctx.Err() }
func (headersThenStall) Close() error               { return nil }

// TestBreakerIgnoresBodyStallAfterHeaders documents the decision: the
// breaker judges a host when its headers arrive, so a host that sends
// headers and then stalls every body does not trip it. Each body read fails
// with the attempt's *TimeoutError all the same.
func TestBreakerIgnoresBodyStallAfterHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", func(r *http.Request) (*http.Response, error) {
			resp := reply(r, 200, "")
			resp.Body, resp.ContentLength = headersThenStall{r.Context()}, -1
			return resp, nil
		})
		var mu sync.Mutex
		var transitions []State
		p := threeStrikes
		p.OnStateChange = func(_ string, _, to State) {
			mu.Lock()
			defer mu.Unlock()
			transitions = append(transitions, to)
		}
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(time.Second), WithCircuitBreaker(p))}
		for range 10 {
			resp, err := c.Get("http://a.example/")
			require.NoError(t, err)
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			var te *TimeoutError
			require.True(t, errors.As(err, &te), "%v", err)
			assert.Equal(t, ScopeAttempt, te.Scope)
		}
		resp, err := c.Get("http://a.example/")
		require.NoError(t, err, "the breaker stays closed")
		resp.Body.Close()
		assert.Equal(t, 11, base.calls("a.example"))
		mu.Lock()
		defer mu.Unlock()
		assert.Empty(t, transitions)
	})
}

// TestBreakerKeysOneHostOneKey: spellings of one host share a breaker;
// different hosts, schemes and ports do not.
func TestBreakerKeysOneHostOneKey(t *testing.T) {
	same := [][]string{
		{"http://example.com", "http://example.com:", "http://example.com.", "http://EXAMPLE.com:80", "http://example.com:080", "HTTP://example.com.:0080/x"},
		{"https://example.com", "https://example.com:443", "https://Example.Com.:0443"},
		{"http://[::1]", "http://[::1]:80", "http://[::1]:"},
		{"http://[fe80::a]:8080", "http://[FE80::A]:8080", "http://[fe80::a]:08080"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:08080"},
	}
	s := newBreakerSet(BreakerPolicy{}.normalized(), nil)
	key := func(raw string) string {
		req, err := http.NewRequest("GET", raw, nil)
		require.NoError(t, err, raw)
		return s.key(req).String()
	}
	seen := map[string]string{}
	for _, group := range same {
		k := key(group[0])
		for _, u := range group[1:] {
			assert.Equal(t, k, key(u), "%s and %s are one host", group[0], u)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("%s and %s are different hosts but share %q", prev, group[0], k)
		}
		seen[k] = group[0]
	}
	assert.NotEqual(t, key("http://example.com:8080"), key("http://example.com"))
	assert.NotEqual(t, key("http://example.com:443"), key("https://example.com"))
	assert.NotEqual(t, key("http://example.com"), key("http://example.org"))
}

// TestBreakerJudgesRetryAfterThatAsksNoWait: a 503 whose Retry-After asks
// for no wait (0, or a date in the past) closes no throttle gate, so it is
// an ordinary 503 to the breaker: a down host that answers only that trips
// it after the usual five failures, and the calls after fail fast.
func TestBreakerJudgesRetryAfterThatAsksNoWait(t *testing.T) {
	for _, after := range []string{"0", "Wed, 21 Oct 2015 07:28:00 GMT"} {
		t.Run(after, func(t *testing.T) {
			var served atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				w.Header().Set("Retry-After", after)
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			c := newWireClient(t, Recommended())
			var open int
			for range 10 {
				code, err := get(t, c, srv.URL)
				switch {
				case errors.Is(err, ErrCircuitOpen):
					open++
				case err != nil:
					t.Fatal(err)
				default:
					assert.Equal(t, http.StatusServiceUnavailable, code)
				}
			}
			assert.Equal(t, int32(DefaultConsecutiveFailures), served.Load(), "3 attempts, then 2, then none")
			assert.Equal(t, 8, open)
		})
	}
}

// TestBreakerIgnoresFailuresOfAttemptsSentBeforeGateClosed: one 429 with
// Retry-After must never open a healthy host's breaker. The gate it
// closes holds every new attempt, so the only attempts that end meanwhile
// are the slow ones already under way: their failures while the gate is
// closed are not judged. Attempts that fail after it opened again, or
// that were sent after it closed, are judged as ever.
func TestBreakerIgnoresFailuresOfAttemptsSentBeforeGateClosed(t *testing.T) {
	tests := []struct {
		name     string
		slow     time.Duration // how long the five slow attempts hang before they time out
		wantOpen bool
	}{
		{"they time out while the gate is closed", time.Second, false},
		{"they time out after it opened again", 3 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					switch r.URL.Path {
					case "/slow":
						return stall(r) // until the attempt timeout
					case "/busy":
						return reply(r, 429, "", "Retry-After", "2"), nil
					}
					return reply(r, 200, "ok"), nil
				})
				var opened atomic.Int32
				p := BreakerPolicy{OnStateChange: func(_ string, _, to State) {
					if to == StateOpen {
						opened.Add(1)
					}
				}}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 1}),
					WithAttemptTimeout(tt.slow), WithCircuitBreaker(p))}
				var wg sync.WaitGroup
				for range DefaultConsecutiveFailures {
					wg.Go(func() {
						_, err := get(t, c, "http://api.example/slow")
						assert.ErrorIs(t, err, context.DeadlineExceeded)
					})
				}
				time.Sleep(100 * time.Millisecond)
				code, err := get(t, c, "http://api.example/busy") // closes the gate until 2.1 s
				require.NoError(t, err)
				assert.Equal(t, 429, code)
				wg.Wait()
				assert.Equal(t, tt.wantOpen, opened.Load() > 0)
				time.Sleep(2 * time.Second)
				code, err = get(t, c, "http://api.example/")
				if tt.wantOpen {
					assert.ErrorIs(t, err, ErrCircuitOpen)
					return
				}
				require.NoError(t, err, "the host is healthy")
				assert.Equal(t, 200, code)
			})
		})
	}
}

// TestBreakerIgnoresThrottlingThatClosesTheGate: a 429 whose rate limit
// fields say no request is left until a reset closes the gate just as one
// with Retry-After does: the host asked for a pause that the gate keeps,
// and a host that keeps its clients to a quota is not failing.
func TestBreakerIgnoresThrottlingThatClosesTheGate(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
	}{
		{"Retry-After", []string{"Retry-After", "1"}},
		{"RateLimit", []string{"RateLimit", `"q";r=0;t=1`}},
		{"X-RateLimit", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: steps(status(429, tt.kv...))}
				c := &http.Client{Transport: NewTransport(s, WithRetry(RetryPolicy{MaxAttempts: 1}),
					WithCircuitBreaker(BreakerPolicy{}))}
				for i := range 2 * DefaultConsecutiveFailures {
					code, err := get(t, c, "http://api.example/")
					require.NoError(t, err, "call %d", i+1)
					assert.Equal(t, 429, code)
				}
			})
		})
	}
}

// TestBreakerTripsOnHostThatOnlyThrottlesOrHangs: a host whose every
// request either hangs until the attempt timeout or is answered 503 with
// Retry-After serves nothing; the throttling answers must not hide the
// timeouts from the breaker for ever.
func TestBreakerTripsOnHostThatOnlyThrottlesOrHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/busy" {
				return reply(r, 503, "", "Retry-After", "2"), nil
			}
			return stall(r)
		})
		var opened atomic.Int32
		p := BreakerPolicy{OnStateChange: func(_ string, _, to State) {
			if to == StateOpen {
				opened.Add(1)
			}
		}}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 1}),
			WithAttemptTimeout(time.Second), WithCircuitBreaker(p))}
		timeouts := 0
		for range 10 { // 50 timeouts, no success
			var wg sync.WaitGroup
			for range DefaultConsecutiveFailures {
				wg.Go(func() { _, _ = get(t, c, "http://api.example/slow") })
			}
			time.Sleep(100 * time.Millisecond)
			_, _ = get(t, c, "http://api.example/busy")
			wg.Wait()
			timeouts += DefaultConsecutiveFailures
			time.Sleep(2 * time.Second)
		}
		assert.NotZero(t, opened.Load(), "%d timeouts in a row and no success, yet the breaker never opened", timeouts)
	})
}

func TestBreakerFailureIfDecidesWhatFails(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		failureIf func(*http.Response, error) bool
		trips     bool
	}{
		{"a 404 counts when FailureIf says so", 404, func(r *http.Response, err error) bool { return err != nil || r.StatusCode >= 400 }, true},
		{"a 500 passes when FailureIf says so", 500, func(r *http.Response, err error) bool { return err != nil || r.StatusCode == 502 }, false},
		{"without FailureIf a 500 counts", 500, nil, true},
		{"without FailureIf a 404 passes", 404, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			url, base := loopbackServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.WriteHeader(tt.code)
			})
			p := threeStrikes
			p.FailureIf = tt.failureIf
			c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p))}
			for range 3 {
				st, err := get(t, c, url)
				require.NoError(t, err)
				assert.Equal(t, tt.code, st)
			}
			_, err := get(t, c, url)
			if tt.trips {
				assert.ErrorIs(t, err, ErrCircuitOpen)
				assert.EqualValues(t, 3, hits.Load())
				return
			}
			assert.NoError(t, err)
			assert.EqualValues(t, 4, hits.Load())
		})
	}
}

// TestBreakerFailureIfJudgesTheHostOnly checks that what is not the
// host's doing never reaches FailureIf and is counted as neither.
func TestBreakerFailureIfJudgesTheHostOnly(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts []Option
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"the caller's cancellation", "http://a.example/stall", nil,
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			}},
		{"a throttling answer the gate takes", "http://a.example/busy", []Option{WithRetry(RetryPolicy{MaxAttempts: 1})}, nil},
		{"a request that never left the process", "ftp://a.example/", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					switch r.URL.Path {
					case "/stall":
						return stall(r)
					case "/busy":
						return reply(r, 429, "", "Retry-After", "1"), nil
					}
					return nil, errors.New("unsupported protocol scheme")
				})
				var asked atomic.Int32
				p := BreakerPolicy{ConsecutiveFailures: 1, FailureIf: func(*http.Response, error) bool { asked.Add(1); return true }}
				c := &http.Client{Transport: NewTransport(base, append(tt.opts, WithCircuitBreaker(p))...)}
				for range 3 {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if tt.ctx != nil {
						ctx, cancel = tt.ctx()
					}
					req, _ := http.NewRequestWithContext(ctx, "GET", tt.url, nil)
					resp, err := c.Do(req)
					if err == nil {
						resp.Body.Close()
					}
					cancel()
					assert.NotErrorIs(t, err, ErrCircuitOpen)
					time.Sleep(time.Second) // past the gate's closure
				}
				assert.Zero(t, asked.Load())
				_, counts := BreakersOf(c).State(HostKey(newRequest("GET", tt.url, nil)))
				assert.Zero(t, counts.TotalFailures+counts.TotalSuccesses)
			})
		})
	}
}

func TestBreakerSlowCallCountsAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/slow" || r.URL.Path == "/slow404" {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
					return nil, r.Context().Err()
				}
			}
			if r.URL.Path == "/slow404" {
				return reply(r, 404, ""), nil
			}
			return reply(r, 200, "ok"), nil
		})
		p := threeStrikes
		p.SlowCall = 1500 * time.Millisecond
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p))}
		ctl := BreakersOf(c)
		steps := []struct {
			path         string
			cancelAfter  time.Duration
			wantFailures uint32 // consecutive, after the step
		}{
			{"/slow", 0, 1},
			{"/slow404", 0, 2},        // a success by status, too slow all the same
			{"/fast", 0, 0},           // a quick success breaks the run
			{"/slow", time.Second, 0}, // the caller gave up: neither
			{"/slow", 0, 1},
			{"/slow", 0, 2},
		}
		for i, s := range steps {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if s.cancelAfter > 0 {
				ctx, cancel = context.WithTimeout(ctx, s.cancelAfter)
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://a.example"+s.path, nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			cancel()
			_, counts := ctl.State("http://a.example")
			assert.Equal(t, s.wantFailures, counts.ConsecutiveFailures, "step %d: %s", i, s.path)
		}
		_, _ = get(t, c, "http://a.example/slow")
		_, err := get(t, c, "http://a.example/fast")
		assert.ErrorIs(t, err, ErrCircuitOpen, "three slow calls in a row open the breaker")
	})
}

// BenchmarkBreakerJudgedByPolicy measures a successful request through a
// closed breaker whose policy has FailureIf and SlowCall, next to one
// with neither: the predicate and the clock reads add no allocation.
func BenchmarkBreakerJudgedByPolicy(b *testing.B) {
	p := BreakerPolicy{FailureIf: func(r *http.Response, err error) bool { return err != nil || r.StatusCode >= 500 }, SlowCall: time.Second}
	roundTrips(b, []stack{
		{"default", NewTransport(memTransport{}, WithCircuitBreaker(BreakerPolicy{}))},
		{"failureIf+slowCall", NewTransport(memTransport{}, WithCircuitBreaker(p))},
	}, newRequest("GET", "http://api.example/v1/items", nil), nil, false)
}

func TestIsHostFailureIsTheDefaultRule(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   bool
	}{
		{0, errReset, true},
		{200, nil, false},
		{404, nil, false},
		{408, nil, true},
		{429, nil, true},
		{500, nil, true},
		{501, nil, true},
		{503, nil, true},
	}
	for _, tt := range tests {
		var resp *http.Response
		if tt.err == nil {
			resp = &http.Response{StatusCode: tt.status}
		}
		assert.Equal(t, tt.want, IsHostFailure(resp, tt.err), "%d %v", tt.status, tt.err)
		req, _ := http.NewRequest(http.MethodGet, "http://api.test/", nil)
		assert.Equal(t, tt.want, outcome(req, resp, tt.err) == errFailure, "the breaker's own rule: %d %v", tt.status, tt.err)
	}
	assert.False(t, IsHostFailure(nil, nil))
}
