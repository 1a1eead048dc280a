package resilient

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
