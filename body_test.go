package resilient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetryReplaysBodies checks that every attempt sends the whole body,
// whatever kind of body the caller gave.
func TestRetryReplaysBodies(t *testing.T) {
	payload := strings.Repeat("0123456789", 100)
	tests := []struct {
		name     string
		body     func() io.Reader
		limit    int64
		attempts int
	}{
		{"GetBody from strings.Reader", func() io.Reader { return strings.NewReader(payload) }, 0, 3},
		{"GetBody from bytes.Buffer", func() io.Reader { return bytes.NewBufferString(payload) }, 0, 3},
		{"no GetBody, buffered", func() io.Reader { return onlyReader{strings.NewReader(payload)} }, 0, 3},
		{"no GetBody, exactly the limit", func() io.Reader { return onlyReader{strings.NewReader(payload)} }, int64(len(payload)), 3},
		{"no GetBody, over the limit: sent once", func() io.Reader { return onlyReader{strings.NewReader(payload)} }, int64(len(payload) - 1), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: steps(status(503))}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxBufferedBody: tt.limit}))}
				req, _ := http.NewRequest("PUT", "http://api.example/doc", tt.body())
				resp, err := c.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, tt.attempts, base.attempts())
				for i, call := range base.calls {
					assert.Equal(t, payload, call.body, "attempt %d body", i+1)
				}
			})
		})
	}
}

// TestRetryClosesCallerBody checks that the caller's body is closed exactly
// as the base transport would close it, including when it was buffered.
func TestRetryClosesCallerBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		body := &closeCounter{Reader: strings.NewReader("abc")}
		req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 2, base.attempts())
		assert.GreaterOrEqual(t, body.closes, 1)
		assert.Equal(t, []string{"abc", "abc"}, []string{base.calls[0].body, base.calls[1].body})
	})
}

// failingReader fails after some bytes.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	f.n--
	p[0] = 'x'
	return 1, nil
}

// TestRetryUnreadableBody checks that a body that fails while it is sent
// ends the call with that error: it is the caller's, so it is not retried
// and the breaker does not hold it against the host.
func TestRetryUnreadableBody(t *testing.T) {
	for range 2 { // a breaker of one failure would open on the first
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			defer r.Body.Close()
			if _, err := io.ReadAll(r.Body); err != nil {
				return nil, err // as http.Transport reports a failing body
			}
			return reply(r, 200, "ok"), nil
		})
		var attempts atomic.Int32
		counted := roundTripFunc(func(r *http.Request) (*http.Response, error) { attempts.Add(1); return base(r) })
		rt := NewTransport(counted, WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
		body := &closeCounter{Reader: &failingReader{n: 3}}
		req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorContains(t, err, "disk on fire")
		assert.NotErrorIs(t, err, ErrCircuitOpen)
		assert.Equal(t, int32(1), attempts.Load())
		assert.Equal(t, 1, body.closes)
	}
}

// TestRetryGetBodyFails checks that a retry whose body cannot be produced
// again is not sent empty: the last outcome is returned.
func TestRetryGetBodyFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(fail(errReset), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		req, _ := http.NewRequest("PUT", "http://api.example/doc", strings.NewReader("abc"))
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, ErrBodyNotReplayable)
		assert.ErrorContains(t, err, "connection reset")
		assert.Equal(t, 1, base.attempts())
	})
}

// TestGetBodyFailureKeepsResponse: a 503 is retried but GetBody then
// fails. The call hands back the 503 whole (stopped keeps it), not
// ErrBodyNotReplayable, which is for a retry due after a transport error,
// as its doc says.
func TestGetBodyFailureKeepsResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		req, _ := http.NewRequest("PUT", "http://api.example/doc", strings.NewReader("x"))
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, http.StatusText(http.StatusServiceUnavailable), readAll(t, resp))
		assert.Equal(t, 1, base.attempts())

		base = &script{steps: steps(fail(errors.New("connection reset by peer")))}
		rt = NewTransport(base, WithRetry(RetryPolicy{}))
		req, _ = http.NewRequest("PUT", "http://api.example/doc", strings.NewReader("x"))
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
		_, err = rt.RoundTrip(req)
		assert.ErrorIs(t, err, ErrBodyNotReplayable)
	})
}

// TestCallerBodyClosedOnceOnEveryPath: on every path, sent or not, the caller's
// body is closed exactly once and before the call's goroutines are gone.
func TestCallerBodyClosedOnceOnEveryPath(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		steps   []func(*http.Request) (*http.Response, error)
		prepare func(*http.Request)
	}{
		{"200 at once", []Option{Recommended()}, steps(status(200)), nil},
		{"503 then 200", []Option{Recommended()}, steps(status(503), status(200)), nil},
		{"503 every time", []Option{Recommended()}, steps(status(503)), nil},
		{"reset every time", []Option{Recommended()}, steps(fail(errors.New("reset"))), nil},
		{"over MaxBufferedBody", []Option{WithRetry(RetryPolicy{MaxBufferedBody: 3})}, steps(status(503), status(200)), nil},
		{"invalid header", []Option{Recommended()}, steps(status(200)), func(r *http.Request) { r.Header.Set("X", "a\nb") }},
		{"invalid idempotency key", []Option{Recommended()}, steps(status(200)), func(r *http.Request) {
			r.Header.Set("Idempotency-Key", strings.Repeat("k", 300))
		}},
		{"breaker open", []Option{WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
			steps(status(500)), nil},
		{"timeout layers only", []Option{WithAttemptTimeout(time.Second), WithTotalTimeout(2 * time.Second)}, steps(status(503)), nil},
		{"caller cancelled", []Option{Recommended()}, steps(status(503, "Retry-After", "5")), func(r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), time.Second)
			_ = cancel
			*r = *r.WithContext(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := NewTransport(&script{steps: tt.steps}, tt.opts...)
				for i := range 3 { // the third call meets an open breaker in "breaker open"
					body := newCallerBody(strings.NewReader("hello"))
					req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
					if tt.prepare != nil {
						tt.prepare(req)
					}
					resp, err := rt.RoundTrip(req)
					if resp != nil {
						resp.Body.Close()
					}
					_ = err
					synctest.Wait()
					assert.Equal(t, int32(1), body.closes.Load(), "call %d: the caller's body closed exactly once", i+1)
				}
			})
		})
	}
}
