package resilient

import (
	"context"
	"errors"
	"io"
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
				c := &http.Client{Transport: NewTransport(slowServer(tt.headerDelay, tt.tick, tt.chunks...), WithAttemptTimeout(time.Second))}
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

// TestAttemptTimeoutRetried checks that a stalled attempt is cut and retried.
func TestAttemptTimeoutRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(stall, status(200))}
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(time.Second), WithRetry(RetryPolicy{Jitter: JitterNone}))}
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
			WithAttemptTimeout(time.Second), WithTotalTimeout(2500*time.Millisecond),
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
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(time.Minute), WithRetry(RetryPolicy{}))}
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
		rt := NewTransport(base, WithAttemptTimeout(time.Hour), WithTotalTimeout(time.Hour))
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
	resp, err := NewTransport(base, WithAttemptTimeout(time.Second)).RoundTrip(httptestRequest())
	require.NoError(t, err)
	assert.Equal(t, http.NoBody, resp.Body)
}

func httptestRequest() *http.Request {
	req, _ := http.NewRequest("GET", "http://api.example/", nil)
	return req
}

// TestUploadStopsAtTotalTimeout: a body that trickles 100 B every 20 ms is
// sent within the call's deadline, not buffered past it.
func TestUploadStopsAtTotalTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		rt := NewTransport(base, WithTotalTimeout(300*time.Millisecond), WithRetry(RetryPolicy{}))
		pr, pw := io.Pipe()
		go trickle(pw, 250, 100, 20*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "PUT", "http://api.example/doc", io.NopCloser(pr))
		start := time.Now()
		_, err := rt.RoundTrip(req)
		assertTimeout(t, err, ScopeTotal)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		assert.Equal(t, int32(1), base.attempts.Load())
		pr.Close() // the caller's producer learns it is not read any more
		time.Sleep(time.Second)
	})
}

// TestTotalTimeoutHoldsAfterSlowDrain: a 503 whose body drips for 1.5 s is
// drained only while the client waits anyway; the call never outlives the
// total timeout and ends with a real 503, not an unsent attempt's error.
func TestTotalTimeoutHoldsAfterSlowDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(dripping(503, "1", 15, 100*time.Millisecond))}
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(1200*time.Millisecond),
			WithTotalTimeout(1500*time.Millisecond), WithRetry(RetryPolicy{}))}
		start := time.Now()
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, time.Second, time.Since(start), "one wait of 1 s; the second 503 asks for more than is left")
		assert.Equal(t, 2, base.attempts())
		_, err = io.ReadAll(resp.Body)
		assertTimeout(t, err, ScopeTotal)
		resp.Body.Close()
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
		synctest.Wait()
	})
}

// TestTotalTimeoutNeverOverrun: whatever the host does, the call
// ends by its total timeout (fake time, so exactly), with a response or an
// error, never both, and the response's body ends by then too.
func TestTotalTimeoutNeverOverrun(t *testing.T) {
	const total = 1500 * time.Millisecond
	tests := []struct {
		name string
		step func(*http.Request) (*http.Response, error)
		body func() io.Reader
	}{
		{"stalled headers", stall, nil},
		{"503, Retry-After 1, dripping body", dripping(503, "1", 15, 100*time.Millisecond), nil},
		{"503, Retry-After just under the rest", dripping(503, "1", 1, time.Millisecond), nil},
		{"503 whose body never ends", dripping(503, "", 1, time.Hour), nil},
		{"200 whose body never ends", dripping(200, "", 1, time.Hour), nil},
		{"429, Retry-After 0", status(429, "Retry-After", "0"), nil},
		{"reset", fail(errors.New("connection reset by peer")), nil},
		{"upload trickles, 503", status(503), func() io.Reader {
			pr, pw := io.Pipe()
			go trickle(pw, 200, 10, 20*time.Millisecond)
			return pr
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var body io.Reader
				if tt.body != nil {
					body = tt.body()
				}
				rt := NewTransport(&uploader{answer: tt.step}, WithAttemptTimeout(time.Second), WithTotalTimeout(total),
					WithRetry(RetryPolicy{MaxAttempts: 5, InitialDelay: 50 * time.Millisecond}))
				req, _ := http.NewRequest("PUT", "http://api.example/", body)
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				assert.True(t, (resp == nil) != (err == nil), "response XOR error")
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				assert.LessOrEqual(t, time.Since(start), total)
				if pr, ok := body.(*io.PipeReader); ok {
					pr.Close()
				}
				time.Sleep(time.Hour) // fake: lets producers and drips end
			})
		})
	}
}

func TestWithTimeoutIsTheAttemptTimeout(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 200, "ok"), nil })
	old := NewTransport(base, WithTimeout(time.Second)).(*Transport)
	renamed := NewTransport(base, WithAttemptTimeout(time.Second)).(*Transport)
	assert.Equal(t, layers(renamed.rt), layers(old.rt))
	assert.Equal(t, []string{"attempt", "base"}, layers(old.rt))
}
