package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc is an in-memory base transport: tests inside synctest
// bubbles use it, since a real socket inside a bubble never lets fake time
// advance.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// reply builds a response to req with the given status, headers and body.
func reply(req *http.Request, status int, body string, kv ...string) *http.Response {
	h := make(http.Header)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &http.Response{
		StatusCode:    status,
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          &trackedBody{Reader: strings.NewReader(body)},
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// script is a base transport that answers each attempt with the next step
// and records what it received.
type script struct {
	mu     sync.Mutex
	steps  []func(*http.Request) (*http.Response, error)
	calls  []recorded
	bodies []*trackedBody
}

type recorded struct {
	at     time.Time
	method string
	body   string
	key    string
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, recorded{at: time.Now(), method: req.Method, body: string(body), key: req.Header.Get("Idempotency-Key")})
	step := s.steps[min(n, len(s.steps)-1)]
	s.mu.Unlock()
	resp, err := step(req)
	if resp != nil {
		if tb, ok := resp.Body.(*trackedBody); ok {
			s.mu.Lock()
			s.bodies = append(s.bodies, tb)
			s.mu.Unlock()
		}
	}
	return resp, err
}

func (s *script) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// status answers with a status and optional header pairs.
func status(code int, kv ...string) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		return reply(r, code, http.StatusText(code), kv...), nil
	}
}

// fail answers with an error.
func fail(err error) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) { return nil, err }
}

// stall waits until the request's context is done.
func stall(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

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

// callerBody is a caller's request body without GetBody that counts its
// Close calls (atomically: the transport closes it from its own goroutine).
type callerBody struct {
	io.Reader
	closes atomic.Int32
	closed chan struct{}
	once   sync.Once
}

func newCallerBody(r io.Reader) *callerBody {
	return &callerBody{Reader: r, closed: make(chan struct{})}
}

func (b *callerBody) Close() error {
	b.closes.Add(1)
	b.once.Do(func() { close(b.closed) })
	return nil
}

// loopbackServer starts a loopback server over HTTP/1.1 or HTTP/2 (TLS) and
// returns its URL and a base transport that speaks to it.
func loopbackServer(t *testing.T, h2 bool, h http.HandlerFunc) (string, http.RoundTripper) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	ctx, stop := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(stop)
	base := srv.Client().Transport.(*http.Transport)
	t.Cleanup(base.CloseIdleConnections)
	return srv.URL, base
}

// protos are the protocols loopbackServer speaks.
var protos = []struct {
	name string
	h2   bool
}{{"HTTP/1.1", false}, {"HTTP/2", true}}

// hosts is an in-memory base transport whose answer depends on the host;
// it counts the requests each host received.
type hosts struct {
	mu     sync.Mutex
	answer map[string]func(*http.Request) (*http.Response, error)
	count  map[string]int
}

// newHosts answers 200 for every host until set says otherwise.
func newHosts() *hosts {
	return &hosts{answer: map[string]func(*http.Request) (*http.Response, error){}, count: map[string]int{}}
}

func (h *hosts) set(host string, f func(*http.Request) (*http.Response, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer[host] = f
}

func (h *hosts) calls(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count[host]
}

func (h *hosts) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.count[r.URL.Host]++
	f := h.answer[r.URL.Host]
	h.mu.Unlock()
	if f == nil {
		return reply(r, 200, "ok"), nil
	}
	return f(r)
}

// get sends a GET through c and returns the status, the body closed.
func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// readAll reads and closes resp's body, whatever error ends the read.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b := make([]byte, 0, 64)
	buf := make([]byte, 64)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return string(b)
		}
	}
}

// steps lists the answers of a script, one per attempt.
func steps(s ...func(*http.Request) (*http.Response, error)) []func(*http.Request) (*http.Response, error) {
	return s
}

// assertTimeout checks that err is a *TimeoutError of scope, a net.Error
// whose Timeout is true and a context.DeadlineExceeded.
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

// onlyReader hides every method but Read, so http.NewRequest cannot set GetBody.
type onlyReader struct{ io.Reader }

// closeCounter records Close calls on a request body.
type closeCounter struct {
	io.Reader
	closes int
}

func (c *closeCounter) Close() error { c.closes++; return nil }

// fastRetry keeps the waits of tests over real sockets at a millisecond.
var fastRetry = RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}

// newRequest is http.NewRequest for URLs known to be valid.
func newRequest(method, url string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, url, body)
	return req
}
