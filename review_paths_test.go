package resilient

// Regression tests from a hostile review of the hardening (issue 10): each
// names the promise it checks, over real sockets where the wire matters.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReviewGetBodyFailureKeepsResponse: a 503 is retried but GetBody then
// fails. The call hands back the 503 whole (stopped keeps it), not
// ErrBodyNotReplayable, although ErrBodyNotReplayable's doc says it is
// returned "when a retry was due but the request body could not be
// produced again": the doc should say "after a transport error".
func TestReviewGetBodyFailureKeepsResponse(t *testing.T) {
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

// TestReviewTotalTimeoutNeverOverrun: whatever the host does, the call
// ends by its total timeout (fake time, so exactly), with a response or an
// error, never both, and the response's body ends by then too.
func TestReviewTotalTimeoutNeverOverrun(t *testing.T) {
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
				rt := NewTransport(&uploader{answer: tt.step}, WithTimeout(time.Second), WithTotalTimeout(total),
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

// TestReviewCallerBodyClosedOnce: on every path, sent or not, the caller's
// body is closed exactly once and before the call's goroutines are gone.
func TestReviewCallerBodyClosedOnce(t *testing.T) {
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
		{"timeout layers only", []Option{WithTimeout(time.Second), WithTotalTimeout(2 * time.Second)}, steps(status(503)), nil},
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
					body := newReviewBody(strings.NewReader("hello"))
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

// TestReviewLocalErrorsOnTheWire: requests that http.Transport refuses
// before it uses a connection are local, over a real http.Transport: one
// attempt, no breaker judgement, the body closed once.
func TestReviewLocalErrorsOnTheWire(t *testing.T) {
	url, base := reviewServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
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
			body := newReviewBody(strings.NewReader("hello"))
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

// snapshot is what a caller can see of its request.
type snapshot struct {
	method, url, host string
	header            http.Header
	body              io.ReadCloser
	getBody           bool
	contentLength     int64
	ctx               context.Context
	trailer           http.Header
}

func snap(r *http.Request) snapshot {
	return snapshot{r.Method, r.URL.String(), r.Host, r.Header.Clone(), r.Body, r.GetBody != nil, r.ContentLength, r.Context(), r.Trailer.Clone()}
}

// TestReviewWireRedirectsAndRequestUntouched: through http.Client and the
// recommended stack, 307 and 308 redirects of a PUT/POST whose body has no
// GetBody (net/http hands the redirect back: it cannot resend the body)
// or has one (followed, the body re-sent whole), after a retried 503. The
// caller's request is never changed and its body is closed once.
func TestReviewWireRedirectsAndRequestUntouched(t *testing.T) {
	want := payload(100 << 10)
	tests := []struct {
		name       string
		method     string
		code       int
		getBody    bool
		wantStatus int
		// closes: net/http's Client itself closes the first body again
		// when it follows a redirect (client.go, req.closeBody), with or
		// without this package.
		closes int32
	}{
		{"307 PUT, no GetBody", "PUT", 307, false, 307, 1},
		{"308 POST, no GetBody", "POST", 308, false, 308, 1},
		{"307 PUT, GetBody", "PUT", 307, true, 200, 2},
		{"308 POST, GetBody", "POST", 308, true, 200, 2},
	}
	for _, p := range protos {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				var n atomic.Int32
				var mu sync.Mutex
				var keys, sums []string
				url, base := reviewServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					mu.Lock()
					keys = append(keys, r.Header.Get("Idempotency-Key"))
					sums = append(sums, sum(b))
					mu.Unlock()
					switch {
					case r.URL.Path == "/b":
						_, _ = io.WriteString(w, "ok")
					case n.Add(1) == 1:
						w.WriteHeader(503)
					default:
						w.Header().Set("Location", "/b")
						w.WriteHeader(tt.code)
					}
				})
				c := &http.Client{Transport: NewTransport(base, Recommended(), WithRetry(fastRetry))}
				var body io.ReadCloser
				rb := newReviewBody(bytes.NewReader(want))
				body = rb
				req, _ := http.NewRequest(tt.method, url+"/a", body)
				req.Header.Set("X-Caller", "v")
				if tt.getBody {
					req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(want)), nil }
					req.ContentLength = int64(len(want))
				}
				before := snap(req)
				resp, err := c.Do(req)
				require.NoError(t, err)
				readAll(t, resp)
				assert.Equal(t, tt.wantStatus, resp.StatusCode)
				assert.Equal(t, before, snap(req), "the caller's request is unchanged")
				mu.Lock()
				for i, s := range sums {
					assert.Equal(t, sum(want), s, "request %d carried the whole body", i+1)
				}
				require.NotEmpty(t, keys)
				for _, k := range keys {
					assert.Equal(t, keys[0], k, "one idempotency key for the call, redirects included")
				}
				mu.Unlock()
				select {
				case <-rb.closed:
				case <-time.After(10 * time.Second):
					t.Fatal("the caller's body was never closed")
				}
				base.(*http.Transport).CloseIdleConnections()
				assert.Equal(t, tt.closes, rb.closes.Load(), "closed as often as net/http alone closes it")
			})
		}
	}
}

// TestReviewWireConcurrentCalls: many calls at once through one client, over
// HTTP/1.1 and HTTP/2, with recorded bodies, retries and a breaker: each
// call's body reaches the server whole, under the race detector.
func TestReviewWireConcurrentCalls(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			var seen sync.Map
			url, base := reviewServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if _, again := seen.LoadOrStore(r.Header.Get("X-Sum"), true); !again {
					w.WriteHeader(503) // the first attempt of every call
					return
				}
				if sum(b) != r.Header.Get("X-Sum") {
					w.WriteHeader(400)
				}
			})
			c := &http.Client{Transport: NewTransport(base, Recommended(), WithRetry(RetryPolicy{
				MaxAttempts: 6, InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Budget: RetryBudget{Disabled: true}}),
				WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1000}))}
			var wg sync.WaitGroup
			for i := range 32 {
				wg.Go(func() {
					body := payload(1<<10 + i*997)
					req, _ := http.NewRequest("PUT", url, newReviewBody(bytes.NewReader(body)))
					req.Header.Set("X-Sum", sum(body))
					resp, err := c.Do(req)
					if !assert.NoError(t, err) {
						return
					}
					readAll(t, resp)
					assert.Equal(t, 200, resp.StatusCode)
				})
			}
			wg.Wait()
		})
	}
}

// TestReviewBreakerKeysShared: spellings of one host share a breaker;
// different hosts, schemes and ports do not.
func TestReviewBreakerKeysShared(t *testing.T) {
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

// TestReviewAttemptsCountsSentOnly: RetryError.Attempts counts the attempts
// that were sent, on every way a call can stop.
func TestReviewAttemptsCountsSentOnly(t *testing.T) {
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
