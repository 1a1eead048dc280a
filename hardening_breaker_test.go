package resilient

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		c := &http.Client{Transport: NewTransport(base, WithTimeout(time.Second), WithCircuitBreaker(p))}
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
