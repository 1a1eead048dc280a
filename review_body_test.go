package resilient

// Regression tests from a hostile review of the hardening (issue 10): each
// names the promise it checks, over real sockets where the wire matters.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reviewBody is a caller's request body without GetBody that counts its
// Close calls (atomically: the transport closes it from its own goroutine).
type reviewBody struct {
	io.Reader
	closes atomic.Int32
	closed chan struct{}
	once   sync.Once
}

func newReviewBody(r io.Reader) *reviewBody {
	return &reviewBody{Reader: r, closed: make(chan struct{})}
}

func (b *reviewBody) Close() error {
	b.closes.Add(1)
	b.once.Do(func() { close(b.closed) })
	return nil
}

// eagerBase answers at once with status, while a goroutine of its own goes
// on reading (and then closes) the request body, as http.Transport's
// writeLoop does when a server answers before it has read the body.
func eagerBase(attempts *atomic.Int32, status int, kv ...string) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		attempts.Add(1)
		if r.Body != nil {
			go func() { _, _ = io.Copy(io.Discard, r.Body); r.Body.Close() }()
		}
		return reply(r, status, "busy", kv...), nil
	}
}

// TestReviewReopenWaitBounded: the server answered 503 before the upload
// was done, and the caller's producer is slow. The retry waits for the
// transport's read of the caller's body under way (recorder.reopen), which
// is bounded only by the caller's context: not by the total timeout, and not
// at all with WithRetry alone, where net/http hands the 503 back at once.
func TestReviewReopenWaitBounded(t *testing.T) {
	tests := []struct {
		name  string
		opts  []Option
		limit time.Duration // the call must end by then
	}{
		{"total timeout", []Option{WithTotalTimeout(time.Second)}, time.Second},
		{"retry alone", nil, time.Second}, // 1 s: generous; a drain is bounded by 10 ms
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var attempts atomic.Int32
				opts := append([]Option{WithRetry(RetryPolicy{InitialDelay: 10 * time.Millisecond, Jitter: JitterNone})}, tt.opts...)
				rt := NewTransport(eagerBase(&attempts, 503), opts...)
				pr, pw := io.Pipe()
				stalled := make(chan struct{})
				go func() {
					_, _ = pw.Write([]byte("first chunk"))
					<-stalled // the producer stalls until the test ends
					pw.Close()
				}()
				defer close(stalled)
				req, _ := http.NewRequest("PUT", "http://api.example/doc", pr)
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				elapsed := time.Since(start)
				if resp != nil {
					resp.Body.Close()
				}
				assert.LessOrEqual(t, elapsed, tt.limit, "the call outlived its bound (err=%v)", err)
				if err == nil {
					assert.Equal(t, 503, resp.StatusCode)
				}
				pr.CloseWithError(errors.New("test over"))
			})
		})
	}
}

// TestReviewSlowUploadNotJudgedWithoutRetry: issue case 1 re-checked
// without the retry layer. WithTimeout + WithCircuitBreaker alone: five
// slow uploads of the caller's must not open a healthy host's breaker.
func TestReviewSlowUploadNotJudgedWithoutRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		c := &http.Client{Transport: NewTransport(base, WithTimeout(200*time.Millisecond),
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

// TestReviewSlowGetBodyUploadNotJudged: issue case 1 re-checked for a body
// that has GetBody (a slow file or generator body): the breaker must not
// count the caller's slow body against the host, nor retry it.
func TestReviewSlowGetBodyUploadNotJudged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		c := &http.Client{Transport: NewTransport(base, WithTimeout(200*time.Millisecond),
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

// errBodyBroke is the error of a caller's body that fails.
var errBodyBroke = errors.New("review: the caller's body broke")

type brokenReader struct{}

func (brokenReader) Read([]byte) (int, error) { return 0, errBodyBroke }

// TestReviewBrokenBodyIsLocalOnTheWire: the caller's body fails (or lies
// about its length) under a real http.Transport. That says nothing about
// the host: not retried, not judged by the breaker, with and without
// GetBody.
func TestReviewBrokenBodyIsLocalOnTheWire(t *testing.T) {
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

// TestReviewStoppedKeepsLargeResponse: the breaker opens while a call
// waits to retry a 503 whose body is larger than maxDrain; the promise is
// that the last response is handed back, not an error about a refused
// attempt.
func TestReviewStoppedKeepsLargeResponse(t *testing.T) {
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
