package resilient

import (
	"context"
	"crypto/tls"
	"errors"
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

// uploader is an in-memory base transport that treats the request body as
// http.Transport does: it streams the body in a goroutine of its own, gives
// up when the attempt's context ends (the goroutine still closes the body
// when it is done), and then answers with answer.
type uploader struct {
	attempts atomic.Int32
	answer   func(*http.Request) (*http.Response, error)
}

func (u *uploader) RoundTrip(r *http.Request) (*http.Response, error) {
	u.attempts.Add(1)
	if r.Body != nil {
		sent := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, r.Body)
			r.Body.Close()
			sent <- err
		}()
		select {
		case err := <-sent:
			if err != nil {
				return nil, err
			}
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	if u.answer == nil {
		return reply(r, 200, "ok"), nil
	}
	return u.answer(r)
}

// trickle writes n chunks of size bytes into w, one every tick, then closes
// it; it stops early when w's reader is closed.
func trickle(w *io.PipeWriter, n, size int, tick time.Duration) {
	for range n {
		time.Sleep(tick)
		if _, err := w.Write([]byte(strings.Repeat("x", size))); err != nil {
			return
		}
	}
	w.Close()
}

// TestSlowUploadIsNotAHostFailure: a body whose producer needs 300 ms under
// a 200 ms attempt timeout fails the call, but neither is retried nor opens
// the breaker of a healthy host.
func TestSlowUploadIsNotAHostFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &uploader{}
		c := &http.Client{Transport: NewTransport(base, WithTimeout(200*time.Millisecond),
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

// TestUploadRecordedWhileSent: a body without GetBody is replayed exactly
// on a retry, and one whose ContentLength exceeds MaxBufferedBody is sent
// once: its 503 is handed back.
func TestUploadRecordedWhileSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		req, _ := http.NewRequest("PUT", "http://api.example/doc", onlyReader{strings.NewReader("hello")})
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		require.Equal(t, 2, base.attempts())
		assert.Equal(t, "hello", base.calls[0].body)
		assert.Equal(t, "hello", base.calls[1].body)

		base = &script{steps: steps(status(503), status(200))}
		rt = NewTransport(base, WithRetry(RetryPolicy{MaxBufferedBody: 4}))
		req, _ = http.NewRequest("PUT", "http://api.example/doc", onlyReader{strings.NewReader("hello")})
		req.ContentLength = 5
		resp, err = rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 503, resp.StatusCode, "too large to replay: sent once")
		assert.Equal(t, 1, base.attempts())
	})
}

// dripBody sends one byte every tick, n times; it fails when ctx ends and
// stops when closed, like a response body of http.Transport.
type dripBody struct {
	ctx    context.Context
	n      int
	tick   time.Duration
	closed chan struct{}
	once   sync.Once
}

func (b *dripBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	select {
	case <-time.After(b.tick):
	case <-b.closed:
		return 0, errors.New("read on closed body")
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	b.n--
	p[0] = 'x'
	return 1, nil
}

func (b *dripBody) Close() error { b.once.Do(func() { close(b.closed) }); return nil }

// dripping answers status with Retry-After and a body that drips one byte
// every tick for n ticks.
func dripping(status int, retryAfter string, n int, tick time.Duration) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		resp := reply(r, status, "", "Retry-After", retryAfter)
		resp.Body = &dripBody{ctx: r.Context(), n: n, tick: tick, closed: make(chan struct{})}
		resp.ContentLength = -1
		return resp, nil
	}
}

// TestTotalTimeoutHoldsAfterSlowDrain: a 503 whose body drips for 1.5 s is
// drained only while the client waits anyway; the call never outlives the
// total timeout and ends with a real 503, not an unsent attempt's error.
func TestTotalTimeoutHoldsAfterSlowDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(dripping(503, "1", 15, 100*time.Millisecond))}
		c := &http.Client{Transport: NewTransport(base, WithTimeout(1200*time.Millisecond),
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

// TestStalledDrainBoundedWithoutTimeouts: with WithRetry alone, a 503 whose
// body never ends is closed when the wait is over, and the retry goes out.
func TestStalledDrainBoundedWithoutTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(dripping(503, "", 1, time.Hour), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{Jitter: JitterNone}))
		req, _ := http.NewRequest("GET", "http://api.example/", nil)
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, DefaultInitialDelay, time.Since(start))
		synctest.Wait()
	})
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
				{WithTimeout(time.Second), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1})},
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

// TestTLSAlertNotRetried: a server that refuses the client's TLS version
// ("remote error: tls: protocol version not supported") is asked once.
func TestTLSAlertNotRetried(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.MaxVersion = tls.VersionTLS12
	defer tr.CloseIdleConnections()
	var attempts atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { attempts.Add(1); return tr.RoundTrip(r) })
	rt := NewTransport(base, WithRetry(RetryPolicy{}))
	req, _ := http.NewRequest("GET", srv.URL, nil)
	_, err := rt.RoundTrip(req)
	require.ErrorContains(t, err, "remote error")
	assert.Equal(t, int32(1), attempts.Load())
}

// TestCustomIdempotencyHeaderMakesPOSTRetryable: the header configured
// with IdempotencyHeader is what lets the retry layer repeat a POST.
func TestCustomIdempotencyHeaderMakesPOSTRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var keys []string
		base := &script{steps: steps(func(r *http.Request) (*http.Response, error) {
			keys = append(keys, r.Header.Get("X-Request-Id"))
			return reply(r, 503, ""), nil
		}, func(r *http.Request) (*http.Response, error) {
			keys = append(keys, r.Header.Get("X-Request-Id"))
			return reply(r, 200, ""), nil
		})}
		rt := NewTransport(base, WithRetry(RetryPolicy{}), WithIdempotencyKey(IdempotencyHeader("X-Request-Id")))
		req, _ := http.NewRequest("POST", "http://api.example/charges", strings.NewReader("{}"))
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		require.Len(t, keys, 2)
		assert.NotEmpty(t, keys[0])
		assert.Equal(t, keys[0], keys[1])
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

// TestRetryWhenBaseNeverClosesBody: a base that neither reads nor closes
// the body of a failed attempt cannot hang the retry of a recorded body,
// and the retry still sends the whole body.
func TestRetryWhenBaseNeverClosesBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		var got string
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				buf := make([]byte, 3)
				io.ReadFull(r.Body, buf) // reads a part, never closes
				return reply(r, 503, ""), nil
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			got = string(b)
			return reply(r, 200, ""), nil
		})
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		body := &closeCounter{Reader: strings.NewReader("hello world")}
		req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "hello world", got)
		assert.Equal(t, 1, body.closes, "the caller's body is closed once the call is over")
	})
}
