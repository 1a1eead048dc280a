package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

var fastRetry = RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}

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
			c := newWireClient(t, WithTimeout(200*time.Millisecond), WithRetry(fastRetry))
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
	c := newWireClient(t, WithTimeout(100*time.Millisecond))
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
