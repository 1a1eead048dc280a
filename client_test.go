package resilient

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewIsPlainWithoutOptions(t *testing.T) {
	c := New()
	tr, ok := c.Transport.(*Transport)
	require.True(t, ok)
	base, ok := tr.rt.(*http.Transport)
	require.True(t, ok, "no layer without an option")
	assert.NotSame(t, http.DefaultTransport, base, "a clone, not the shared default")
	assert.Zero(t, c.Timeout)
}

func TestOptionsSelectLayers(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want []string
	}{
		{"none", nil, []string{"base"}},
		{"retry only", []Option{WithRetry(RetryPolicy{})}, []string{"retry", "base"}},
		{"timeouts only", []Option{WithTotalTimeout(time.Second), WithAttemptTimeout(time.Second)}, []string{"total", "attempt", "base"}},
		{"order of options does not matter", []Option{WithAttemptTimeout(time.Second), WithRetry(RetryPolicy{}), WithTotalTimeout(time.Second)}, []string{"total", "retry", "attempt", "base"}},
		{"recommended", []Option{Recommended()}, []string{"idempotency", "total", "retry", "attempt", "breaker", "base"}},
		{"recommended minus the attempt timeout", []Option{Recommended(), WithAttemptTimeout(0)}, []string{"idempotency", "total", "retry", "breaker", "base"}},
		{"logger alone: a single attempt, observed", []Option{WithLogger(slog.New(slog.DiscardHandler))}, []string{"base"}},
		{"breaker alone does not retry", []Option{WithCircuitBreaker(BreakerPolicy{})}, []string{"breaker", "base"}},
		{"fallback outermost", []Option{WithCircuitBreaker(BreakerPolicy{}), WithFallback(func(*http.Request, error) (*http.Response, error) { return nil, nil }), WithRetry(RetryPolicy{})}, []string{"fallback", "retry", "breaker", "base"}},
		{"nil fallback", []Option{WithFallback(nil)}, []string{"base"}},
		{"negative timeouts leave the layers out", []Option{WithAttemptTimeout(-time.Second), WithTotalTimeout(-1)}, []string{"base"}},
		{"nil option ignored", []Option{nil}, []string{"base"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })
			rt := NewTransport(base, tt.opts...).(*Transport)
			assert.Equal(t, tt.want, layers(rt.rt))
		})
	}
}

// layers lists the stack from the outside in.
func layers(rt http.RoundTripper) []string {
	var out []string
	for {
		switch l := rt.(type) {
		case *callTransport:
			if l.total != nil {
				out = append(out, "total")
			}
			if l.retry != nil {
				out = append(out, "retry")
			}
			if l.attempt != nil {
				out = append(out, "attempt")
			}
			rt = l.next
		case *breakerTransport:
			out = append(out, "breaker")
			rt = l.next
		case *idempotencyTransport:
			out = append(out, "idempotency")
			rt = l.next
		case *fallbackTransport:
			out = append(out, "fallback")
			rt = l.next
		default:
			return append(out, "base")
		}
	}
}

func TestRecommendedValues(t *testing.T) {
	call := NewTransport(roundTripFunc(nil), Recommended()).(*Transport).rt.(*idempotencyTransport).next.(*callTransport)
	assert.Equal(t, RecommendedTotalTimeout, call.total.after)
	assert.Equal(t, RecommendedTimeout, call.attempt.after)
	assert.Equal(t, DefaultMaxAttempts, call.retry.MaxAttempts)
}

func TestWrap(t *testing.T) {
	jar, _ := cookiejar.New(nil)
	redirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 200, "ok"), nil })
	existing := &http.Client{Transport: base, Jar: jar, CheckRedirect: redirect, Timeout: 7 * time.Second}

	c := Wrap(existing, WithRetry(RetryPolicy{}))
	assert.NotSame(t, existing, c)
	assert.Same(t, jar, c.Jar)
	assert.NotNil(t, c.CheckRedirect)
	assert.Equal(t, 7*time.Second, c.Timeout)
	assert.NotNil(t, existing.Transport.(roundTripFunc), "existing untouched")
	assert.Equal(t, []string{"retry", "base"}, layers(c.Transport.(*Transport).rt))

	for _, e := range []*http.Client{nil, {}} {
		c := Wrap(e)
		assert.Same(t, http.DefaultTransport, c.Transport.(*Transport).base)
	}
	assert.Same(t, http.DefaultTransport, NewTransport(nil).(*Transport).base)
}

// idleCounter is a base transport that counts CloseIdleConnections.
type idleCounter struct {
	roundTripFunc
	n int
}

func (c *idleCounter) CloseIdleConnections() { c.n++ }

func TestCloseIdleConnectionsForwarded(t *testing.T) {
	base := &idleCounter{}
	c := New(Recommended())
	c.Transport = NewTransport(base, Recommended())
	c.CloseIdleConnections()
	assert.Equal(t, 1, base.n)
	// Each layer alone forwards too.
	for _, m := range []Middleware{Retry(RetryPolicy{}), AttemptTimeout(time.Second), TotalTimeout(time.Second),
		CircuitBreaker(BreakerPolicy{}), IdempotencyKey()} {
		m(base).(interface{ CloseIdleConnections() }).CloseIdleConnections()
	}
	assert.Equal(t, 6, base.n)
}

// TestCallerRequestNotMutated runs a request through every layer and
// retries, then compares it with what it was.
func TestCallerRequestNotMutated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503), fail(errReset), status(200))}
		rt := NewTransport(base, Recommended())
		req, _ := http.NewRequest("PUT", "http://user:pw@api.example/x?q=1", onlyReader{strings.NewReader("body")})
		req.Header.Set("X-Test", "1")
		before := *req
		beforeURL := *req.URL
		beforeHeader := req.Header.Clone()
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 3, base.attempts())
		assert.Equal(t, beforeURL, *req.URL)
		assert.Equal(t, beforeHeader, req.Header)
		assert.Equal(t, before.Body, req.Body)
		assert.Nil(t, req.GetBody)
		assert.Equal(t, before.Context(), req.Context())
	})
}

// TestConcurrentUse sends many calls at once through one client.
func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]int{}
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			seen[r.URL.Path]++
			n := seen[r.URL.Path]
			mu.Unlock()
			if n == 1 {
				return reply(r, 503, "busy"), nil
			}
			return reply(r, 200, r.URL.Path), nil
		})
		// Every path fails once: a breaker with the default threshold would
		// rightly open and the retry budget would rightly run out, so this
		// test raises the one and turns off the other.
		c := &http.Client{Transport: NewTransport(base, Recommended(),
			WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1000}),
			WithRetry(RetryPolicy{Budget: RetryBudget{Disabled: true}}))}
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				u := &url.URL{Scheme: "http", Host: "api.example", Path: "/" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "/" + time.Duration(i).String()}
				resp, err := c.Get(u.String())
				if assert.NoError(t, err) {
					assert.Equal(t, 200, resp.StatusCode)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
	})
}

func TestWrapTwiceMergesIntoOneStack(t *testing.T) {
	var sent atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sent.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	retry := WithRetry(RetryPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond})

	tests := []struct {
		name string
		c    func() *http.Client
		want int32
	}{
		{"wrap of a wrapped client", func() *http.Client { return Wrap(Wrap(srv.Client(), retry), retry) }, 3},
		{"new transport over a transport", func() *http.Client {
			return &http.Client{Transport: NewTransport(NewTransport(srv.Client().Transport, retry), retry)}
		}, 3},
		{"later options override earlier ones", func() *http.Client {
			return Wrap(Wrap(srv.Client(), retry), WithRetry(RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}))
		}, 2},
		{"a nil *Transport is no transport", func() *http.Client {
			return Wrap(&http.Client{Transport: (*Transport)(nil)}, retry)
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent.Store(0)
			resp, err := tt.c().Get(srv.URL)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, tt.want, sent.Load(), "requests sent for one call")
		})
	}
}

func TestWrapTwiceKeepsTheFirstTransportIntact(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 200, "ok"), nil })
	first := NewTransport(base, WithRetry(RetryPolicy{})).(*Transport)
	layersBefore := layers(first.rt)
	second := NewTransport(first, WithAttemptTimeout(time.Second)).(*Transport)
	assert.Equal(t, layersBefore, layers(first.rt), "the first Transport is not changed")
	assert.Equal(t, []string{"retry", "attempt", "base"}, layers(second.rt), "one stack, the options of both")
	assert.Len(t, first.opts, 1, "the first Transport's options are not appended to")
}

// TestZeroTransportUsesDefault: the zero Transport sends through
// http.DefaultTransport instead of panicking.
func TestZeroTransportUsesDefault(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	var tr Transport
	c := &http.Client{Transport: &tr}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	tr.CloseIdleConnections()
}

// TestWrapTwiceUsesTheOptionsTheFirstWasBuiltWith: a second wrap merges
// the options that built the first Transport, not whatever the caller's
// slice holds later: the Transport keeps its own copy.
func TestWrapTwiceUsesTheOptionsTheFirstWasBuiltWith(t *testing.T) {
	var sent atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return reply(r, 503, "down"), nil
	})
	opts := []Option{WithRetry(RetryPolicy{MaxAttempts: 1})}
	first := NewTransport(base, opts...)
	opts[0] = WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: func() backoff.BackOff { return &backoff.ZeroBackOff{} }})
	second := NewTransport(first)
	resp, err := second.RoundTrip(newRequest(http.MethodGet, "http://api.example/", nil))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, int32(1), sent.Load(), "the first Transport was built for one attempt")
}
