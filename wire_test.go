package resilient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run against real loopback servers that misbehave on purpose,
// outside synctest bubbles; the waits are kept at a millisecond.

// flaky serves the handlers in turn, then the last one again, and counts
// requests and connections.
// Handlers that stall end when the client goes away or when the test ends.
type flaky struct {
	handlers []http.HandlerFunc
	requests atomic.Int32
	conns    atomic.Int32
	arrived  chan struct{} // one value per request, if not full
}

func (f *flaky) start(t *testing.T) *httptest.Server {
	f.arrived = make(chan struct{}, 100)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.requests.Add(1)) - 1
		select {
		case f.arrived <- struct{}{}:
		default:
		}
		f.handlers[min(n, len(f.handlers)-1)](w, r)
	}))
	ctx, stop := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(stop) // runs first: releases stalled handlers
	return srv
}

func code(status int, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	}
}

// reset closes the connection with a TCP RST before answering.
func reset(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// stallHeaders never answers until the client goes away.
func stallHeaders(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
	<-r.Context().Done()
}

// stallBody sends the headers and a first chunk, then stalls.
func stallBody(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(200)
	_, _ = io.WriteString(w, "first")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func newWireClient(t *testing.T, opts ...Option) *http.Client {
	c := New(opts...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestWire(t *testing.T) {
	tests := []struct {
		name     string
		handlers []http.HandlerFunc
		method   string
		want     int // requests the server saw
		status   int // 0 when an error is expected
		check    func(t *testing.T, err error)
	}{
		{"503 then 200", []http.HandlerFunc{code(503), code(200)}, "GET", 2, 200, nil},
		{"Retry-After seconds", []http.HandlerFunc{code(503, "Retry-After", "0"), code(200)}, "GET", 2, 200, nil},
		{"Retry-After date", []http.HandlerFunc{code(429, "Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"), code(200)}, "GET", 2, 200, nil},
		{"404 at once", []http.HandlerFunc{code(404)}, "GET", 1, 404, nil},
		{"reset then 200", []http.HandlerFunc{reset, code(200)}, "GET", 2, 200, nil},
		{"reset every time", []http.HandlerFunc{reset}, "GET", 3, 0, func(t *testing.T, err error) {
			var re *RetryError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, 3, re.Attempts)
		}},
		{"POST reset not retried", []http.HandlerFunc{reset, code(200)}, "POST", 1, 0, nil},
		{"POST 503 not retried", []http.HandlerFunc{code(503), code(200)}, "POST", 1, 503, nil},
		{"stalled headers cut and retried", []http.HandlerFunc{stallHeaders, code(200)}, "GET", 2, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{handlers: tt.handlers}
			srv := f.start(t)
			c := newWireClient(t, WithAttemptTimeout(200*time.Millisecond), WithRetry(fastRetry))
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader("payload"))
			resp, err := c.Do(req)
			if tt.status != 0 {
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, tt.status, resp.StatusCode)
				assert.Equal(t, http.StatusText(tt.status), string(body))
			} else {
				require.Error(t, err)
				if tt.check != nil {
					tt.check(t, err)
				}
			}
			assert.Equal(t, int32(tt.want), f.requests.Load())
		})
	}
}

// TestWireConnectionReuse checks that retried responses are drained, so
// that 4 sequential attempts use a single keep-alive connection.
func TestWireConnectionReuse(t *testing.T) {
	big := strings.Repeat("e", 32<<10) // error pages are not always small
	f := &flaky{handlers: []http.HandlerFunc{
		func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503); _, _ = io.WriteString(w, big) },
		func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502); _, _ = io.WriteString(w, big) },
		code(500),
		code(200),
	}}
	srv := f.start(t)
	// net/http returns a drained connection to its pool from another
	// goroutine; a 20 ms backoff leaves it time to, so that the count of
	// connections measures the draining and not that race.
	c := newWireClient(t, WithRetry(RetryPolicy{MaxAttempts: 4, InitialDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Jitter: JitterNone}))
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, int32(4), f.requests.Load())
	assert.Equal(t, int32(1), f.conns.Load(), "one TCP connection for all attempts")
}

// TestWireStalledBody checks that a body that stalls past the attempt
// timeout fails the read with a timeout, after the part that arrived.
func TestWireStalledBody(t *testing.T) {
	f := &flaky{handlers: []http.HandlerFunc{stallBody}}
	srv := f.start(t)
	c := newWireClient(t, WithAttemptTimeout(100*time.Millisecond))
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	assert.Equal(t, "first", string(body))
	assertTimeout(t, err, ScopeAttempt)
}

// TestWireRefused checks a server that is not there: POST is retried since
// nothing was sent, and the error still says ECONNREFUSED.
func TestWireRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c := newWireClient(t, WithRetry(fastRetry))
	resp, err := c.Post("http://"+addr+"/charge", "application/json", strings.NewReader("{}"))
	assert.Nil(t, resp)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	var re *RetryError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.Attempts, "a refused POST never reached the server")
}

// TestWireBodiesReplayed checks that the server receives the whole body on
// every attempt, over the wire.
func TestWireBodiesReplayed(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		n := len(got)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	c := newWireClient(t, WithRetry(fastRetry))
	payload := strings.Repeat("p", 100<<10)
	req, _ := http.NewRequest("PUT", srv.URL, onlyReader{strings.NewReader(payload)})
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, []string{payload, payload, payload}, got)
}

// TestWireCallerCancel checks that cancelling a stalled call returns
// context.Canceled and is not retried.
func TestWireCallerCancel(t *testing.T) {
	f := &flaky{handlers: []http.HandlerFunc{stallHeaders}}
	srv := f.start(t)
	c := newWireClient(t, WithRetry(fastRetry))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-f.arrived
	cancel()
	err := <-done
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Equal(t, int32(1), f.requests.Load())
}

// TestWireConnReusedAfterRetried503: a retried 503 with a small body
// is drained during the wait, so the retry reuses its connection, even
// with a 1 ms backoff, under every combination of timeouts.
func TestWireConnReusedAfterRetried503(t *testing.T) {
	stacks := []struct {
		name string
		opts []Option
	}{
		{"retry alone", []Option{WithRetry(fastRetry)}},
		{"retry + timeouts", []Option{WithRetry(fastRetry), WithAttemptTimeout(5 * time.Second), WithTotalTimeout(10 * time.Second)}},
		{"recommended", []Option{Recommended(), WithRetry(fastRetry)}},
		{"retry-after 0", []Option{Recommended(), WithRetry(fastRetry)}},
		{"body trickles during the wait", []Option{Recommended(), WithRetry(RetryPolicy{InitialDelay: 100 * time.Millisecond, Jitter: JitterNone})}},
	}
	for _, p := range protos {
		for _, st := range stacks {
			t.Run(p.name+"/"+st.name, func(t *testing.T) {
				var n atomic.Int32
				url, base := loopbackServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1) == 1 {
						if st.name == "retry-after 0" {
							w.Header().Set("Retry-After", "0")
						}
						w.WriteHeader(503)
						_, _ = io.WriteString(w, "busy")
						if st.name == "body trickles during the wait" {
							for range 3 {
								w.(http.Flusher).Flush()
								time.Sleep(10 * time.Millisecond) // the server is slow on purpose
								_, _ = io.WriteString(w, "busy")
							}
						}
						return
					}
					_, _ = io.WriteString(w, "ok")
				})
				var mu sync.Mutex
				var reused []bool
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
					mu.Lock()
					reused = append(reused, i.Reused)
					mu.Unlock()
				}})
				c := &http.Client{Transport: NewTransport(base, st.opts...)}
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := c.Do(req)
				require.NoError(t, err)
				assert.Equal(t, "ok", readAll(t, resp))
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, reused, 2)
				assert.True(t, reused[1], "the retry reuses the drained connection")
			})
		}
	}
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// payload returns n bytes that differ from one offset to the next.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestWireRecordedBodyReplayedExactly: a body without GetBody is
// recorded while it streams and replayed byte for byte, when the server
// answered before reading it (over HTTP/1.1 the server then drops the
// connection mid-upload), when it reset the connection mid-upload, and
// when the body comes from a pipe. The caller's body is closed exactly once.
func TestWireRecordedBodyReplayedExactly(t *testing.T) {
	const size = 600 << 10 // more than net/http's server discards, less than MaxBufferedBody
	want := payload(size)
	early := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503); _, _ = io.WriteString(w, "busy") }
	resetAfter4K := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(io.Discard, r.Body, 4<<10)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	readHalf := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(io.Discard, r.Body, size/2)
		w.WriteHeader(503)
	}
	tests := []struct {
		name  string
		h2    bool
		first http.HandlerFunc
		pipe  bool
	}{
		{"h1 early 503", false, early, false},
		{"h1 early 503, pipe", false, early, true},
		{"h1 503 after half", false, readHalf, false},
		{"h1 reset mid-upload", false, resetAfter4K, false},
		{"h1 reset mid-upload, pipe", false, resetAfter4K, true},
		{"h2 early 503", true, early, false},
		{"h2 early 503, pipe", true, early, true},
		{"h2 503 after half", true, readHalf, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			var mu sync.Mutex
			var got []string
			url, base := loopbackServer(t, tt.h2, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					tt.first(w, r)
					return
				}
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, sum(b))
				mu.Unlock()
				_, _ = io.WriteString(w, "ok")
			})
			var src io.Reader = bytes.NewReader(want)
			if tt.pipe {
				pr, pw := io.Pipe()
				go func() {
					for off := 0; off < size; off += 16 << 10 {
						if _, err := pw.Write(want[off:min(off+16<<10, size)]); err != nil {
							return
						}
					}
					pw.Close()
				}()
				src = pr
			}
			body := newCallerBody(src)
			c := &http.Client{Transport: NewTransport(base, WithRetry(fastRetry), WithAttemptTimeout(10*time.Second))}
			req, _ := http.NewRequest("PUT", url, body)
			resp, err := c.Do(req)
			require.NoError(t, err)
			assert.Equal(t, "ok", readAll(t, resp))
			mu.Lock()
			assert.Equal(t, []string{sum(want)}, got, "the retry sent the whole body, byte for byte")
			mu.Unlock()
			select {
			case <-body.closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the caller's body was never closed")
			}
			base.(*http.Transport).CloseIdleConnections()
			assert.Equal(t, int32(1), body.closes.Load(), "closed exactly once")
		})
	}
}

// TestWireSlowUploadNotJudged: TestSlowUploadIsNotAHostFailure over a real
// http.Transport. Over HTTP/1.1 its RoundTrip returns only once its write
// loop is done with the body (mapRoundTripError waits for writeLoopDone),
// that is after the slow producer's Read returned: the recorder is no
// longer "reading" when the breaker judges the attempt, yet the caller's
// slow body must not open a healthy host's breaker. HTTP/2 returns at the
// deadline while its writer still reads, so it is judged local there.
func TestWireSlowUploadNotJudged(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			url, base := loopbackServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			})
			rt := NewTransport(base, WithAttemptTimeout(100*time.Millisecond), WithRetry(fastRetry),
				WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
			pr, pw := io.Pipe()
			time.AfterFunc(300*time.Millisecond, func() { _, _ = pw.Write([]byte("late")); pw.Close() })
			req, _ := http.NewRequest("PUT", url, pr)
			resp, err := rt.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			assert.NotErrorIs(t, err, ErrCircuitOpen, "the slow upload opened the breaker")
			req, _ = http.NewRequest("GET", url, nil)
			resp, err = rt.RoundTrip(req)
			// Under a loaded machine the GET may meet the 100 ms timeout
			// itself; what matters is that the breaker let it through.
			assert.NotErrorIs(t, err, ErrCircuitOpen, "a healthy host's breaker must still be closed")
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
}

// TestWireEarlyAnswerStalledProducer: TestRecorderReopenWaitBounded over
// real sockets. The server answers 503 before reading the upload, whose
// producer then stalls for 3 s. HTTP/2's transport hands the 503 back at
// once; the retry layer's wait in recorder.reopen for the transport's
// blocked Read must not run past a 300 ms total timeout. (Over HTTP/1.1 net/http's own RoundTrip does not return before
// the body is written, so HTTP/1.1 is left out: doc.go says so.)
func TestWireEarlyAnswerStalledProducer(t *testing.T) {
	for _, p := range protos[1:] {
		t.Run(p.name, func(t *testing.T) {
			url, base := loopbackServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
				// Flushed while the handler runs: net/http's server would
				// otherwise hold the answer until it discarded the body.
				w.Header().Set("Content-Length", "0")
				w.WriteHeader(503)
				w.(http.Flusher).Flush()
			})
			rt := NewTransport(base, WithTotalTimeout(300*time.Millisecond), WithRetry(fastRetry))
			pr, pw := io.Pipe()
			stall := time.AfterFunc(3*time.Second, func() { pw.Close() })
			defer stall.Stop()
			go func() { _, _ = pw.Write([]byte("first")) }()
			req, _ := http.NewRequest("PUT", url, pr)
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			elapsed := time.Since(start)
			if resp != nil {
				resp.Body.Close()
			}
			assert.Less(t, elapsed, 1500*time.Millisecond, "a 300 ms total timeout took %v (err=%v)", elapsed, err)
			pr.Close()
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

// TestWireRedirectsLeaveRequestUntouched: through http.Client and the
// recommended stack, 307 and 308 redirects of a PUT/POST whose body has no
// GetBody (net/http hands the redirect back: it cannot resend the body)
// or has one (followed, the body re-sent whole), after a retried 503. The
// caller's request is never changed and its body is closed once.
func TestWireRedirectsLeaveRequestUntouched(t *testing.T) {
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
				url, base := loopbackServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
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
				rb := newCallerBody(bytes.NewReader(want))
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

// TestWireConcurrentCallsSendWholeBodies: many calls at once through one client, over
// HTTP/1.1 and HTTP/2, with recorded bodies, retries and a breaker: each
// call's body reaches the server whole, under the race detector.
func TestWireConcurrentCallsSendWholeBodies(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			var seen sync.Map
			url, base := loopbackServer(t, p.h2, func(w http.ResponseWriter, r *http.Request) {
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
					req, _ := http.NewRequest("PUT", url, newCallerBody(bytes.NewReader(body)))
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
