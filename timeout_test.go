package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowBody sends its chunks one per tick, and fails when ctx is done first.
type slowBody struct {
	ctx    context.Context
	chunks []string
	tick   time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.chunks) == 0 {
		return 0, io.EOF
	}
	select {
	case <-time.After(b.tick):
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	n := copy(p, b.chunks[0])
	b.chunks = b.chunks[1:]
	return n, nil
}

func (b *slowBody) Close() error { return nil }

// slowServer answers after headerDelay with a body of chunks, one per tick.
func slowServer(headerDelay, tick time.Duration, chunks ...string) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		select {
		case <-time.After(headerDelay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		resp := reply(r, 200, "")
		resp.Body = &slowBody{ctx: r.Context(), chunks: chunks, tick: tick}
		return resp, nil
	})
}

func TestAttemptTimeout(t *testing.T) {
	tests := []struct {
		name        string
		headerDelay time.Duration
		tick        time.Duration
		chunks      []string
		wantBody    string
		wantErrAt   string // "headers", "body" or ""
	}{
		{"headers and body in time", 100 * time.Millisecond, 100 * time.Millisecond, []string{"a", "b", "c"}, "abc", ""},
		{"body read after RoundTrip returned, in time", 0, 300 * time.Millisecond, []string{"a", "b", "c"}, "abc", ""},
		{"headers stall", 2 * time.Second, 0, nil, "", "headers"},
		{"body stalls", 100 * time.Millisecond, 600 * time.Millisecond, []string{"a", "b", "c"}, "a", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &http.Client{Transport: NewTransport(slowServer(tt.headerDelay, tt.tick, tt.chunks...), WithTimeout(time.Second))}
				resp, err := c.Get("http://api.example/")
				if tt.wantErrAt == "headers" {
					assertTimeout(t, err, ScopeAttempt)
					return
				}
				require.NoError(t, err)
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				assert.Equal(t, tt.wantBody, string(body))
				if tt.wantErrAt == "body" {
					assertTimeout(t, err, ScopeAttempt)
				} else {
					assert.NoError(t, err)
				}
			})
		})
	}
}

func assertTimeout(t *testing.T, err error, scope TimeoutScope) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, scope, te.Scope)
}

// TestAttemptTimeoutRetried checks that a stalled attempt is cut and retried.
func TestAttemptTimeoutRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(stall, status(200))}
		c := &http.Client{Transport: NewTransport(base, WithTimeout(time.Second), WithRetry(RetryPolicy{Jitter: JitterNone}))}
		start := time.Now()
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 2, base.attempts())
		assert.Equal(t, time.Second+100*time.Millisecond, time.Since(start))
	})
}

// TestTotalTimeout checks that the total timeout bounds all attempts and
// waits, and is not retried.
func TestTotalTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(stall)}
		c := &http.Client{Transport: NewTransport(base,
			WithTimeout(time.Second), WithTotalTimeout(2500*time.Millisecond),
			WithRetry(RetryPolicy{MaxAttempts: 10, Jitter: JitterNone}))}
		start := time.Now()
		_, err := c.Get("http://api.example/")
		assertTimeout(t, err, ScopeTotal)
		assert.Equal(t, 2500*time.Millisecond, time.Since(start))
		// 1 s, wait 100 ms, 1 s, wait 200 ms, then 200 ms into the third attempt.
		assert.Equal(t, 3, base.attempts())
	})
}

// TestTotalTimeoutCoversBody checks that the final body read is bounded too.
func TestTotalTimeoutCoversBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &http.Client{Transport: NewTransport(slowServer(0, time.Second, "a", "b", "c"), WithTotalTimeout(2500*time.Millisecond))}
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		assert.Equal(t, "ab", string(body))
		assertTimeout(t, err, ScopeTotal)
	})
}

// TestCallerDeadlineIsNotOurs checks that the caller's own deadline is
// reported as it is, not as a timeout of the stack.
func TestCallerDeadlineIsNotOurs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(stall)}
		c := &http.Client{Transport: NewTransport(base, WithTimeout(time.Minute), WithRetry(RetryPolicy{}))}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/", nil)
		_, err := c.Do(req)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var te *TimeoutError
		assert.False(t, errors.As(err, &te))
		assert.Equal(t, 1, base.attempts())
	})
}

// TestTimeoutReleasedOnClose checks that closing the body early releases
// the timer (goleak and synctest would report a leak otherwise) and that a
// body read to EOF releases it too.
func TestTimeoutReleasedOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return reply(r, 200, strings.Repeat("x", 10)), nil
		})
		rt := NewTransport(base, WithTimeout(time.Hour), WithTotalTimeout(time.Hour))
		for _, readAll := range []bool{true, false} {
			req, _ := http.NewRequest("GET", "http://api.example/", nil)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			if readAll {
				_, _ = io.ReadAll(resp.Body)
				assert.ErrorIs(t, resp.Request.Context().Err(), context.Canceled, "released at EOF")
			}
			resp.Body.Close()
			assert.ErrorIs(t, resp.Request.Context().Err(), context.Canceled)
		}
	})
}

// TestTimeoutNoBody checks that a response without a body is passed as is.
func TestTimeoutNoBody(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp := reply(r, 204, "")
		resp.Body = http.NoBody
		return resp, nil
	})
	resp, err := NewTransport(base, WithTimeout(time.Second)).RoundTrip(httptestRequest())
	require.NoError(t, err)
	assert.Equal(t, http.NoBody, resp.Body)
}

func httptestRequest() *http.Request {
	req, _ := http.NewRequest("GET", "http://api.example/", nil)
	return req
}
