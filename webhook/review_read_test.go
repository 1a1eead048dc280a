package webhook

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests from a hostile review of how the receiver reads a
// delivery's body.

// TestReceiverNilBodyIsEmptyNotPanic: a request built by hand with a nil
// Body (net/http never sends one, callers of ServeHTTP may) is an empty
// body, answered like any other unsigned one, never a panic.
func TestReceiverNilBodyIsEmptyNotPanic(t *testing.T) {
	h := newTestHandler(t, func(context.Context, Event) error { return nil })
	r := delivery(t, "msg_nil", ``)
	r.Body = nil
	var code int
	require.NotPanics(t, func() { code = serve(h, r).Code })
	assert.Equal(t, http.StatusOK, code, "the empty body is signed")
}

// TestHandlerKeepsServersTighterReadTimeout: an operator who set
// http.Server.ReadTimeout to 200 ms against slow senders keeps it; the
// handler's own (longer) read timeout must not replace the server's
// deadline with a later one. A trickling sender gets 408 at the server's
// bound.
func TestHandlerKeepsServersTighterReadTimeout(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			h := newTestHandler(t, func(context.Context, Event) error { return nil }, WithReadTimeout(time.Hour))
			status := make(chan int, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rw := &statusWriter{ResponseWriter: w}
				h.ServeHTTP(rw, r)
				status <- rw.code
			}))
			srv.Config.ReadTimeout = 200 * time.Millisecond
			if h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			pr, pw := io.Pipe()
			req, err := http.NewRequest(http.MethodPost, srv.URL, pr)
			require.NoError(t, err)
			req.Header = delivery(t, "msg_srv_rt", `{}`).Header
			done := make(chan struct{})
			go func() {
				defer close(done)
				if resp, err := srv.Client().Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			_, _ = pw.Write([]byte("{")) // then nothing: a stalled sender
			select {
			case code := <-status:
				assert.Equal(t, http.StatusRequestTimeout, code)
			case <-time.After(10 * time.Second):
				t.Error("the handler still reads after 10 s: the server's ReadTimeout was lifted")
			}
			pw.Close()
			<-done
			srv.Client().CloseIdleConnections()
		})
	}
}

// TestHandlerServerReadTimeoutDoesNotCancelProcess: with the server's
// ReadTimeout left in place, a process running well past it is not
// cancelled once the body has been read.
func TestHandlerServerReadTimeoutDoesNotCancelProcess(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(500 * time.Millisecond):
				return nil
			}
		})
		srv := httptest.NewUnstartedServer(h)
		srv.Config.ReadTimeout = 50 * time.Millisecond
		if h2 {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		r := delivery(t, "msg_srv_long", `{"slow":true}`)
		req, err := http.NewRequest(http.MethodPost, srv.URL, r.Body)
		require.NoError(t, err)
		req.Header = r.Header
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		srv.Client().CloseIdleConnections()
		srv.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "HTTP/2: %v", h2)
	}
}

// TestHandlerUnreadBodyIsNotDrainedAtSendersPace: after answering without
// reading the whole body (408 at the read timeout, 413 for a declared
// length over the limit, 405), net/http drains what is left of a Content-Length
// body, up to 256 KiB, before it sends the answer. With no deadline on
// that drain (or none set at all), a sender trickling its body would hold
// the connection, and the answer, as long as it likes. The answer must
// come while the sender is still trickling. The same goes for a 405, whose
// body is not read at all.
func TestHandlerUnreadBodyIsNotDrainedAtSendersPace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []HandlerOption
		method string
		length int
		want   string
	}{
		{"read timeout", []HandlerOption{WithReadTimeout(200 * time.Millisecond)}, "POST", 100_000, "HTTP/1.1 408"},
		{"declared too large", []HandlerOption{WithMaxBodyBytes(1024)}, "POST", 2048, "HTTP/1.1 413"},
		{"method not allowed", nil, "PUT", 2048, "HTTP/1.1 405"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHandler(t, func(context.Context, Event) error { return nil }, tc.opts...)
			srv := httptest.NewServer(h)
			defer srv.Close()
			line, err := trickleRaw(t, srv.Listener.Addr().String(), tc.method, tc.length)
			require.NoError(t, err, "no answer within 10 s while the sender trickles")
			assert.True(t, strings.HasPrefix(line, tc.want), line)
		})
	}
}

// trickleRaw sends a signed delivery declaring a body of length bytes, then
// sends a byte every 20 ms, and returns the status line of the answer.
func trickleRaw(t *testing.T, addr, method string, length int) (string, error) {
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	req := method + " / HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(length) + "\r\n"
	for k, v := range delivery(t, "msg_drain", `{}`).Header {
		req += k + ": " + v[0] + "\r\n"
	}
	_, err = conn.Write([]byte(req + "\r\n{"))
	require.NoError(t, err)
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-trickled }()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	return bufio.NewReader(conn).ReadString('\n')
}
