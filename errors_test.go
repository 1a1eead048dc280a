package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorTextsSayThePrefixOnce: an error of the stack says "resilient:"
// once, however many of its errors wrap each other, and holds no part of
// the request's URL beyond scheme and host. The *url.Error that
// http.Client puts around it is the Client's: its text holds the URL as the
// caller gave it, query included, and a RoundTripper cannot change that;
// logs should print the error of the stack's logger (which scrubs it), or
// errors.Unwrap of the *url.Error.
func TestErrorTextsSayThePrefixOnce(t *testing.T) {
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	tests := []struct {
		name string
		opts []Option
		base func(n int, r *http.Request) (*http.Response, error) // n counts from 1
		then func(c *http.Client, req *http.Request)              // before the call under test, if set
		want error
	}{
		{"circuit open", []Option{WithRetry(RetryPolicy{MaxAttempts: 1}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
			func(int, *http.Request) (*http.Response, error) { return nil, errors.New("connection reset by peer") },
			func(c *http.Client, req *http.Request) { _, _ = c.Do(req.Clone(req.Context())) }, ErrCircuitOpen},
		{"throttled", []Option{WithRetry(RetryPolicy{MaxAttempts: 1})},
			func(_ int, r *http.Request) (*http.Response, error) {
				return reply(r, 429, "", "Retry-After", "3600"), nil
			},
			func(c *http.Client, req *http.Request) {
				resp, err := c.Do(req.Clone(req.Context()))
				if err == nil {
					resp.Body.Close()
				}
			}, ErrThrottled},
		{"attempt timeouts", []Option{WithRetry(RetryPolicy{MaxAttempts: 2}), WithAttemptTimeout(time.Second)},
			func(_ int, r *http.Request) (*http.Response, error) { return stall(r) }, nil, context.DeadlineExceeded},
		{"total timeout", []Option{WithRetry(RetryPolicy{}), WithTotalTimeout(time.Second)},
			func(_ int, r *http.Request) (*http.Response, error) { return stall(r) }, nil, context.DeadlineExceeded},
		{"limiter refuses the retry of a failure", []Option{WithRetry(RetryPolicy{MaxAttempts: 2}),
			WithLimiter(limiterFunc(func(r *http.Request) error {
				if r.Header.Get("X-Retry") != "" {
					return &ThrottledError{Err: errors.New("tenant quota spent")}
				}
				r.Header.Set("X-Retry", "1") // the next attempt's request is a copy of this one
				return nil
			}))},
			func(int, *http.Request) (*http.Response, error) { return nil, errors.New("connection reset by peer") }, nil, ErrThrottled},
		{"the caller's Request.Cancel during a retry wait", []Option{WithRetry(RetryPolicy{MaxAttempts: 2})},
			func(_ int, r *http.Request) (*http.Response, error) {
				return reply(r, 503, "", "Retry-After", "5"), nil
			}, nil, nil},
		{"a body that cannot be replayed", []Option{WithRetry(RetryPolicy{MaxAttempts: 2, MaxBufferedBody: 1})},
			func(_ int, r *http.Request) (*http.Response, error) {
				_, _ = io.Copy(io.Discard, r.Body)
				return nil, errors.New("connection reset by peer")
			}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return tt.base(int(n.Add(1)), r)
				})
				c := &http.Client{Transport: NewTransport(base, tt.opts...)}
				raw := "http://api.example/v1/charges?api_key=" + secret
				var body io.Reader
				if tt.name == "a body that cannot be replayed" {
					body = io.NopCloser(strings.NewReader("amount=100")) // no GetBody
				}
				req, err := http.NewRequest("PUT", raw, body)
				require.NoError(t, err)
				if tt.then != nil {
					tt.then(c, req)
				}
				if tt.name == "the caller's Request.Cancel during a retry wait" {
					cancel := make(chan struct{})
					req.Cancel = cancel //lint:ignore SA1019 testing that it is honoured
					go func() { time.Sleep(time.Second); close(cancel) }()
				}
				_, err = c.Do(req)
				require.Error(t, err)
				if tt.want != nil {
					require.ErrorIs(t, err, tt.want)
				}
				var ue *url.Error
				require.ErrorAs(t, err, &ue)
				ours := ue.Err.Error()
				assert.Equal(t, 1, strings.Count(ours, "resilient:"), ours)
				assert.True(t, strings.HasPrefix(ours, "resilient: "), ours)
				assert.NotContains(t, ours, secret)
				assert.NotContains(t, ours, "/v1/charges")
				assert.Contains(t, err.Error(), secret, "the *url.Error is the Client's own text")
			})
		})
	}
}

// TestErrorTextsHoldNoURLOverTheWire: the errors that net/http's transport
// gives the stack, and the stack's own around them, hold no part of the
// request's URL beyond the host: over a real socket, a refused connection
// and a timeout.
func TestErrorTextsHoldNoURLOverTheWire(t *testing.T) {
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer stalled.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	for _, tt := range []struct {
		name string
		url  string
	}{
		{"connection refused", refused.URL},
		{"attempt timeout", stalled.URL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newWireClient(t, WithRetry(RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond}),
				WithAttemptTimeout(50*time.Millisecond))
			_, err := get(t, c, tt.url+"/v1/charges?api_key="+secret)
			require.Error(t, err)
			var ue *url.Error
			require.ErrorAs(t, err, &ue)
			ours := ue.Err.Error()
			assert.NotContains(t, ours, secret)
			assert.NotContains(t, ours, "/v1/charges")
			assert.Equal(t, 1, strings.Count(ours, "resilient:"), ours)
		})
	}
}
