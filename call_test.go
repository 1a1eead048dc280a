package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the call layer (call.go, attempt.go): which failures are the
// host's and which the caller's own, and how a call ends.

// TestSlowUploadIsNotAHostFailure: a body whose producer needs 300 ms under
// a 200 ms attempt timeout fails the call, but neither is retried nor opens
// the breaker of a healthy host.
func TestSlowUploadIsNotAHostFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(200*time.Millisecond),
			WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 5}))}
		for range 5 {
			pr, pw := io.Pipe()
			go trickle(pw, 1, 10, 300*time.Millisecond)
			req, _ := http.NewRequest("PUT", "http://api.example/doc", io.NopCloser(pr))
			start := time.Now()
			_, err := c.Do(req)
			assertTimeout(t, err, ScopeAttempt)
			assert.Equal(t, 200*time.Millisecond, time.Since(start))
			synctest.Wait()
		}
		assert.Equal(t, int32(5), base.attempts.Load(), "one attempt each: the caller's body held it up")
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err, "the host's breaker is still closed")
		resp.Body.Close()
		time.Sleep(time.Second) // let the producers finish
	})
}

// TestSlowUploadIsNotAHostFailureWithoutRetry: TestSlowUploadIsNotAHostFailure
// without the retry layer. WithTimeout + WithCircuitBreaker alone: five
// slow uploads of the caller's must not open a healthy host's breaker.
func TestSlowUploadIsNotAHostFailureWithoutRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(200*time.Millisecond),
			WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 5}))}
		for range 5 {
			pr, pw := io.Pipe()
			go trickle(pw, 1, 10, 300*time.Millisecond)
			req, _ := http.NewRequest("PUT", "http://api.example/doc", io.NopCloser(pr))
			_, err := c.Do(req)
			assertTimeout(t, err, ScopeAttempt)
			synctest.Wait()
		}
		resp, err := c.Get("http://api.example/")
		assert.NoError(t, err, "the host's breaker must still be closed")
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(time.Second) // fake time: lets the producers finish
	})
}

// TestSlowGetBodyUploadIsNotAHostFailure: TestSlowUploadIsNotAHostFailure
// for a body that has GetBody (a slow file or generator body): the breaker must not
// count the caller's slow body against the host, nor retry it.
func TestSlowGetBodyUploadIsNotAHostFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		c := &http.Client{Transport: NewTransport(base, WithAttemptTimeout(200*time.Millisecond),
			WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 5}))}
		var pipes []*io.PipeReader
		slow := func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			pipes = append(pipes, pr)
			go trickle(pw, 1, 10, 300*time.Millisecond)
			return pr, nil
		}
		defer func() {
			for _, pr := range pipes {
				pr.Close()
			}
			time.Sleep(time.Second)
		}()
		for range 5 {
			body, _ := slow()
			req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
			req.GetBody = slow
			_, err := c.Do(req)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, ErrCircuitOpen)
			synctest.Wait()
		}
		assert.Equal(t, int32(5), base.attempts.Load(), "one attempt each: the caller's body held it up")
		resp, err := c.Get("http://api.example/")
		assert.NoError(t, err, "the host's breaker must still be closed")
		if resp != nil {
			resp.Body.Close()
		}
	})
}

// TestLocalErrorsNeverReachTheBreaker: requests that the transport refuses
// before using a connection fail with ErrInvalidRequest (the transport's
// own error wrapped too), count as not sent, are not retried, and do not
// open the breaker for another caller's valid GET.
func TestLocalErrorsNeverReachTheBreaker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	bad := []struct {
		name  string
		build func() *http.Request
	}{
		{"newline in header value", func() *http.Request {
			r, _ := http.NewRequest("GET", srv.URL, nil)
			r.Header.Set("X-Note", "a\nb")
			return r
		}},
		{"bad header name", func() *http.Request {
			r, _ := http.NewRequest("GET", srv.URL, nil)
			r.Header["Bad Name"] = []string{"v"}
			return r
		}},
		{"nil header", func() *http.Request {
			r, _ := http.NewRequest("GET", srv.URL, nil)
			r.Header = nil
			return r
		}},
		{"invalid method", func() *http.Request {
			r, _ := http.NewRequest("GET", srv.URL, nil)
			r.Method = "BAD METHOD"
			return r
		}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			var handed atomic.Int32
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) { handed.Add(1); return tr.RoundTrip(r) })
			for _, opts := range [][]Option{
				{WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
				{WithAttemptTimeout(time.Second), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
				{WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
			} {
				handed.Store(0)
				rt := NewTransport(base, opts...)
				for range 3 {
					_, err := rt.RoundTrip(tt.build())
					require.Error(t, err)
					assert.NotErrorIs(t, err, ErrCircuitOpen)
					if len(opts) > 1 { // the call layer marks it
						assert.ErrorIs(t, err, ErrInvalidRequest)
					}
					var re *RetryError
					if errors.As(err, &re) {
						assert.Equal(t, 0, re.Attempts, "refused by the transport: not sent")
					}
				}
				assert.Equal(t, int32(3), handed.Load(), "one try each, never retried")
				req, _ := http.NewRequest("GET", srv.URL, nil)
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err, "the breaker is still closed")
				resp.Body.Close()
			}
		})
	}
}

// TestLocalErrorsOnTheWire: requests that http.Transport refuses
// before it uses a connection are local, over a real http.Transport: one
// attempt, no breaker judgement, the body closed once.
func TestLocalErrorsOnTheWire(t *testing.T) {
	url, base := loopbackServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name    string
		prepare func(*http.Request)
	}{
		{"NUL in header value", func(r *http.Request) { r.Header.Set("X", "a\x00b") }},
		{"invalid trailer name", func(r *http.Request) { r.Trailer = http.Header{"Bad Name": nil} }},
		{"unsupported scheme", func(r *http.Request) { r.URL.Scheme = "ftp" }},
		{"no host", func(r *http.Request) { r.URL.Host = ""; r.Host = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			counted := roundTripFunc(func(r *http.Request) (*http.Response, error) { attempts.Add(1); return base.RoundTrip(r) })
			rt := NewTransport(counted, WithRetry(fastRetry), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
			body := newCallerBody(strings.NewReader("hello"))
			req, _ := http.NewRequest("PUT", url, body)
			tt.prepare(req)
			resp, err := rt.RoundTrip(req)
			require.Error(t, err)
			assert.Nil(t, resp)
			assert.LessOrEqual(t, attempts.Load(), int32(1), "a local error is not retried: %v", err)
			assert.Equal(t, int32(1), body.closes.Load())
			req, _ = http.NewRequest("GET", url, nil)
			resp, err = rt.RoundTrip(req)
			assert.NoError(t, err, "the breaker must not have judged a local error")
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
}

// errBodyBroke is the error of a caller's body that fails.
var errBodyBroke = errors.New("test: the caller's body broke")

type brokenReader struct{}

func (brokenReader) Read([]byte) (int, error) { return 0, errBodyBroke }

// TestBrokenCallerBodyIsLocalOnTheWire: the caller's body fails (or lies
// about its length) under a real http.Transport. That says nothing about
// the host: not retried, not judged by the breaker, with and without
// GetBody.
func TestBrokenCallerBodyIsLocalOnTheWire(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	tests := []struct {
		name  string
		build func() *http.Request
	}{
		{"failing body, no GetBody", func() *http.Request {
			r, _ := http.NewRequest("PUT", srv.URL, onlyReader{brokenReader{}})
			return r
		}},
		{"failing body with GetBody", func() *http.Request {
			r, _ := http.NewRequest("PUT", srv.URL, onlyReader{brokenReader{}})
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(brokenReader{}), nil }
			return r
		}},
		{"short body, no GetBody", func() *http.Request {
			r, _ := http.NewRequest("PUT", srv.URL, onlyReader{strings.NewReader("12345")})
			r.ContentLength = 10
			return r
		}},
		// An in-memory body (io.WriterTo, as http.NewRequest makes them) is
		// not watched, so that transports copy it without a buffer: a wrong
		// ContentLength on one is the one local mistake left to the host's
		// account.
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			var attempts atomic.Int32
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) { attempts.Add(1); return tr.RoundTrip(r) })
			rt := NewTransport(base, WithRetry(fastRetry), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
			_, err := rt.RoundTrip(tt.build())
			require.Error(t, err)
			assert.Equal(t, int32(1), attempts.Load(), "the caller's broken body is not retried: %v", err)
			req, _ := http.NewRequest("GET", srv.URL, nil)
			resp, err := rt.RoundTrip(req)
			assert.NoError(t, err, "the breaker must not have judged the caller's body")
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
}

// TestRefusedRetryReturnsLastResponse: when the breaker opens during a
// wait, the call ends with the 503 it had, whole, and one attempt counted.
func TestRefusedRetryReturnsLastResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No Retry-After: it would close the throttle gate of the host
		// (gate.go) and hold /b until /a's retry.
		base := &script{steps: steps(func(r *http.Request) (*http.Response, error) {
			return reply(r, 503, "busy"), nil
		})}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{InitialDelay: time.Second, Jitter: JitterNone}),
			WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 2}))}
		got := make(chan *http.Response, 1)
		go func() {
			resp, err := c.Get("http://api.example/a")
			assert.NoError(t, err)
			got <- resp
		}()
		time.Sleep(500 * time.Millisecond)
		_, err := get(t, c, "http://api.example/b") // the second failure opens the breaker
		require.NoError(t, err)
		resp := <-got
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "busy", readAll(t, resp))
		assert.Equal(t, 2, base.attempts(), "the retry of /a was refused, not sent")
	})
}

// TestRequestCancelIsTheCallersCancellation: a closed Request.Cancel is not
// retried and not held against the host, and it ends a wait.
func TestRequestCancelIsTheCallersCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(fail(errors.New("net/http: request canceled")))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
		cancel := make(chan struct{})
		close(cancel)
		req, _ := http.NewRequest("GET", "http://api.example/", nil)
		//lint:ignore SA1019 the deprecated field is what is tested
		req.Cancel = cancel
		_, err := rt.RoundTrip(req)
		require.Error(t, err)
		assert.Equal(t, 1, base.attempts())
		_, err = rt.RoundTrip(req)
		assert.NotErrorIs(t, err, ErrCircuitOpen)

		// Closed during the wait before a retry: the call ends then.
		base = &script{steps: steps(status(503, "Retry-After", "10"))}
		rt = NewTransport(base, WithRetry(RetryPolicy{}))
		cancel = make(chan struct{})
		req, _ = http.NewRequest("GET", "http://api.example/", nil)
		//lint:ignore SA1019 the deprecated field is what is tested
		req.Cancel = cancel
		time.AfterFunc(time.Second, func() { close(cancel) })
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, errRequestCanceled)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

// TestNilResponseFromBase: a base that returns (nil, nil) yields
// ErrNilResponse, not a panic, and is neither retried nor judged.
func TestNilResponseFromBase(t *testing.T) {
	var attempts atomic.Int32
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { attempts.Add(1); return nil, nil })
	for _, opts := range [][]Option{
		nil,
		{Recommended()},
		{WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
	} {
		attempts.Store(0)
		rt := NewTransport(base, opts...)
		for range 2 {
			req, _ := http.NewRequest("GET", "http://api.example/", nil)
			resp, err := rt.RoundTrip(req)
			assert.Nil(t, resp)
			if len(opts) > 0 {
				assert.ErrorIs(t, err, ErrNilResponse)
			}
		}
		if len(opts) > 0 {
			assert.Equal(t, int32(2), attempts.Load(), "one attempt per call, none refused")
		}
	}
	// A nil Body becomes http.NoBody.
	rt := NewTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 204, Request: r}, nil
	}), WithRetry(RetryPolicy{}))
	req, _ := http.NewRequest("GET", "http://api.example/", nil)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.NoBody, resp.Body)
}

// TestRefusedRetryKeepsLargeResponse: the breaker opens while a call
// waits to retry a 503 whose body is larger than maxDrain; the promise is
// that the last response is handed back, not an error about a refused
// attempt.
func TestRefusedRetryKeepsLargeResponse(t *testing.T) {
	for _, size := range []int{100, maxDrain, maxDrain + 1, 256 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				big := strings.Repeat("e", size)
				base := &script{steps: steps(func(r *http.Request) (*http.Response, error) { return reply(r, 503, big), nil })}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{InitialDelay: time.Second, Jitter: JitterNone}),
					WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 2}))}
				got := make(chan error, 1)
				go func() {
					resp, err := c.Get("http://api.example/a")
					if err == nil {
						if resp.StatusCode != 503 || readAll(t, resp) != big {
							err = fmt.Errorf("status %d or body changed", resp.StatusCode)
						}
					}
					got <- err
				}()
				time.Sleep(500 * time.Millisecond)
				_, err := get(t, c, "http://api.example/b") // opens the breaker
				require.NoError(t, err)
				assert.NoError(t, <-got, "the 503 of /a is lost")
			})
		})
	}
}

// TestAttemptsCountsSentOnly: RetryError.Attempts counts the attempts
// that were sent, on every way a call can stop.
func TestAttemptsCountsSentOnly(t *testing.T) {
	reset := fail(errors.New("connection reset by peer"))
	tests := []struct {
		name  string
		opts  []Option
		steps []func(*http.Request) (*http.Response, error)
		calls int // calls before the one checked
		want  int
	}{
		{"all sent", []Option{WithRetry(RetryPolicy{})}, steps(reset), 0, 3},
		{"breaker opens on the 2nd", []Option{WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 2})}, steps(reset), 0, 2},
		{"breaker open from the start", []Option{WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})}, steps(reset), 1, 0},
		{"total timeout during the wait", []Option{WithRetry(RetryPolicy{InitialDelay: time.Second, Jitter: JitterNone}), WithTotalTimeout(1500 * time.Millisecond)}, steps(reset), 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: tt.steps}
				rt := NewTransport(base, tt.opts...)
				for range tt.calls {
					req, _ := http.NewRequest("GET", "http://api.example/", nil)
					_, _ = rt.RoundTrip(req)
				}
				before := base.attempts()
				req, _ := http.NewRequest("GET", "http://api.example/", nil)
				_, err := rt.RoundTrip(req)
				var re *RetryError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tt.want, re.Attempts)
				assert.Equal(t, base.attempts()-before, re.Attempts, "Attempts is what the base saw")
			})
		})
	}
}
