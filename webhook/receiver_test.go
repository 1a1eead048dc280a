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
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReceiverSettingsDefaultsAndOptions(t *testing.T) {
	v, err := StandardWebhooks(testSecret)
	require.NoError(t, err)
	assert.Equal(t, HandlerSettings{
		MaxBodyBytes: DefaultMaxBodyBytes, Lease: DefaultLease, Keep: DefaultKeep,
		StoreTimeout: DefaultStoreTimeout, RetryAfter: DefaultRetryAfter, ReadTimeout: DefaultReadTimeout,
	}, NewReceiver(v).Settings())
	assert.Equal(t, HandlerSettings{
		MaxBodyBytes: 10, Lease: time.Second, Keep: time.Hour,
		StoreTimeout: 2 * time.Second, RetryAfter: 3 * time.Second, ReadTimeout: 4 * time.Second,
	}, NewReceiver(v, WithMaxBodyBytes(10), WithLease(time.Second), WithKeep(time.Hour),
		WithStoreTimeout(2*time.Second), WithRetryAfter(3*time.Second), WithReadTimeout(4*time.Second), nil).Settings())
	zero := NewReceiver(v, WithMaxBodyBytes(-1), WithLease(0), WithKeep(-time.Second),
		WithStoreTimeout(0), WithRetryAfter(-1), WithReadTimeout(0), WithStore(nil))
	assert.Equal(t, NewReceiver(v).Settings(), zero.Settings(), "zero or negative: the defaults")
}

// TestReceiverAnswersLikeHandler: a handler built on Receiver gets the
// same answers for the same bad requests, and the event with its key.
func TestReceiverAnswersLikeHandler(t *testing.T) {
	v, err := StandardWebhooks(testSecret)
	require.NoError(t, err)
	rc := NewReceiver(v, WithMaxBodyBytes(64))
	var got []Event
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e, ok := rc.Receive(w, r); ok {
			got = append(got, e)
			w.WriteHeader(http.StatusAccepted)
		}
	})
	std := newTestHandler(t, func(context.Context, Event) error { return nil }, WithMaxBodyBytes(64))
	forged := func() *http.Request {
		r := delivery(t, "msg_1", `{}`)
		r.Header.Set("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		return r
	}
	for name, req := range map[string]func() *http.Request{
		"get":       func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) },
		"too large": func() *http.Request { return delivery(t, "msg_big", strings.Repeat("x", 65)) },
		"unsigned":  func() *http.Request { return httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`)) },
		"forged":    forged,
	} {
		a, b := serve(own, req()), serve(std, req())
		assert.Equal(t, b.Code, a.Code, name)
		assert.Equal(t, b.Body.String(), a.Body.String(), name)
	}
	assert.Equal(t, http.StatusAccepted, serve(own, delivery(t, "msg_ok", `{"a":1}`)).Code)
	require.Len(t, got, 1)
	assert.Equal(t, "msg_ok", got[0].ID)
	assert.Equal(t, signedIDKey("msg_ok"), got[0].Key())

	noVerifier := NewReceiver(nil)
	w := httptest.NewRecorder()
	_, ok := noVerifier.Receive(w, delivery(t, "msg_x", `{}`))
	assert.False(t, ok)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
}

func TestReceiverUnavailableSendsRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "5", time.Millisecond: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		w := httptest.NewRecorder()
		NewReceiver(nil, WithRetryAfter(d)).Unavailable(w)
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, want, w.Header().Get("Retry-After"), d)
	}
}

func TestReceiverReportErrorWithoutHandlerIsNoop(t *testing.T) {
	NewReceiver(nil).ReportError(context.Background(), Event{}, io.EOF)
	var rep reported
	rc := NewReceiver(nil, rep.option())
	rc.ReportError(context.Background(), Event{ID: "x"}, nil)
	rc.ReportError(context.Background(), Event{ID: "x"}, io.EOF)
	assert.Equal(t, []error{io.EOF}, rep.all())
}

// TestHandlerSlowTrickleBodyTimesOut: a sender trickling its body a byte
// at a time gets 408 when the handler's own read deadline passes, and the
// handler returns while the sender is still sending.
func TestHandlerSlowTrickleBodyTimesOut(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) { testSlowTrickle(t, proto == "HTTP/2") })
	}
}

// newServer starts an httptest server speaking HTTP/1.1 or, over TLS, HTTP/2.
func newServer(t *testing.T, h http.Handler, h2 bool) *httptest.Server {
	t.Helper()
	if !h2 {
		return httptest.NewServer(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	return srv
}

func testSlowTrickle(t *testing.T, h2 bool) {
	var calls atomic.Int32
	h := newTestHandler(t, func(context.Context, Event) error { calls.Add(1); return nil },
		WithReadTimeout(200*time.Millisecond))
	status := make(chan int, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.ProtoMajor == 2; got != h2 {
			t.Errorf("served over %s", r.Proto)
		}
		rw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(rw, r)
		status <- rw.code
	}), h2)
	defer srv.Close()

	pr, pw := io.Pipe()
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() { // 1 byte every 20 ms, until told to stop
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pw.Close()
				return
			case <-tick.C:
				if _, err := pw.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	req, err := http.NewRequest(http.MethodPost, srv.URL, pr)
	require.NoError(t, err)
	now := time.Now()
	sig, _ := SignStandardWebhooks(testSecret, "msg_slow", now, []byte("x"))
	req.Header.Set("webhook-id", "msg_slow")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	client := srv.Client()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case code := <-status:
		assert.Equal(t, http.StatusRequestTimeout, code)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still reading a trickling body after 10 s")
	}
	close(stop)
	<-trickled
	<-done
	client.CloseIdleConnections()
	assert.Zero(t, calls.Load())
}

// TestHandlerReadDeadlineLiftedBeforeProcess: the read deadline must not
// outlive the body: left on the connection, it would cancel the request's
// context while process runs.
func TestHandlerReadDeadlineLiftedBeforeProcess(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) { testDeadlineLifted(t, proto == "HTTP/2") })
	}
}

func testDeadlineLifted(t *testing.T, h2 bool) {
	const readTimeout = 50 * time.Millisecond
	h := newTestHandler(t, func(ctx context.Context, _ Event) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * readTimeout): // well past the read deadline
			return nil
		}
	}, WithReadTimeout(readTimeout))
	srv := newServer(t, h, h2)
	defer srv.Close()
	r := delivery(t, "msg_long", `{"slow":true}`)
	req, err := http.NewRequest(http.MethodPost, srv.URL, r.Body)
	require.NoError(t, err)
	req.Header = r.Header
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	srv.Client().CloseIdleConnections()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "process was not cancelled")
	assert.Equal(t, h2, resp.ProtoMajor == 2, resp.Proto)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
