package resilienttest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/resilient-go/resilient"
)

// Attempt is one request as it reached a [Recorder].
type Attempt struct {
	// Time is when the attempt reached the recorder: under
	// testing/synctest, the bubble's fake time, so the waits between
	// attempts can be asserted exactly.
	Time time.Time
	// Method is the request's method; "" is recorded as GET.
	Method string
	// URL is the request's absolute URL; on the server side it is built
	// from the request's Host and path, with https when it came over TLS.
	URL *url.URL
	// Header is a copy of the request's header, the idempotency key
	// included.
	Header http.Header
	// Body is the request body as it was sent; nil when there was none.
	Body []byte
	// BodyErr is the error that ended reading the body early, if any (the
	// context ended, the client's body failed); Body then holds what was
	// read before it.
	BodyErr error
}

// IdempotencyKey returns the attempt's Idempotency-Key header (the header
// [resilient.WithIdempotencyKey] sets by default), or "".
func (a Attempt) IdempotencyKey() string {
	return a.Header.Get(resilient.DefaultIdempotencyHeader)
}

// clone returns a deep copy of a, so that callers cannot change the record.
func (a Attempt) clone() Attempt {
	if a.URL != nil {
		u := *a.URL
		if u.User != nil {
			uu := *u.User
			u.User = &uu
		}
		a.URL = &u
	}
	a.Header = a.Header.Clone()
	if a.Body != nil {
		a.Body = bytes.Clone(a.Body)
	}
	return a
}

// Recorder records every attempt that reaches it, for assertions: which
// requests were sent, how many, with which idempotency key and body. Like
// [Faults] it works on both sides of a test: as an [http.RoundTripper]
// that answers from memory (200 OK, body "ok"), around another
// RoundTripper ([Recorder.Transport]), or as handler middleware
// ([Recorder.Handler]). Where it stands decides what it sees:
//
//	faults.Transport(rec)  // rec sees the attempts that passed the faults
//	rec.Transport(faults)  // rec sees every attempt
//
// The body of each request is read whole before the request is handed on
// (with the same bytes, and the same error if reading failed), so a
// handler behind a Recorder does not see an upload stream.
//
// The zero Recorder is ready to use. It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	attempts []Attempt
}

var _ http.RoundTripper = (*Recorder)(nil)

// Attempts returns a copy of the attempts recorded so far, in the order
// they arrived.
func (r *Recorder) Attempts() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Attempt, len(r.attempts))
	for i, a := range r.attempts {
		out[i] = a.clone()
	}
	return out
}

// Count returns how many attempts were recorded.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.attempts)
}

func (r *Recorder) add(a Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
}

// RoundTrip records req and answers it from memory: 200 OK, body "ok".
// It is Transport(nil).RoundTrip.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.roundTrip(okTransport, req)
}

// Transport returns a RoundTripper that records each request and hands
// it to next. A nil next means the in-memory responder of
// [Recorder.RoundTrip], never the network. CloseIdleConnections is
// forwarded to next.
func (r *Recorder) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		return r
	}
	return &recordTransport{r: r, next: next}
}

// Handler returns middleware that records each request and hands it to
// next; a nil next answers 200 OK with the body "ok".
func (r *Recorder) Handler(next http.Handler) http.Handler {
	if next == nil {
		next = okHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u := *req.URL
		if u.Host == "" {
			u.Scheme, u.Host = "http", req.Host
			if req.TLS != nil {
				u.Scheme = "https"
			}
		}
		body, err := readBody(req.Context(), req.Body)
		r.add(newAttempt(req, &u, body, err))
		req = req.WithContext(req.Context()) // a shallow copy
		req.Body = replayed(body, err)
		next.ServeHTTP(w, req)
	})
}

type recordTransport struct {
	r    *Recorder
	next http.RoundTripper
}

func (t *recordTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.r.roundTrip(t.next, req)
}

// CloseIdleConnections forwards to the next RoundTripper.
func (t *recordTransport) CloseIdleConnections() { closeIdle(t.next) }

// roundTrip records req, then sends a copy of it with the recorded body
// through next; the caller's request is not changed.
func (r *Recorder) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	var u *url.URL
	if req.URL != nil {
		c := *req.URL
		u = &c
	}
	body, err := readBody(req.Context(), req.Body)
	r.add(newAttempt(req, u, body, err))
	if req.Body == nil || req.Body == http.NoBody {
		return next.RoundTrip(req)
	}
	out := req.WithContext(req.Context()) // a shallow copy
	out.Body = replayed(body, err)
	if req.GetBody != nil && err == nil {
		out.GetBody = func() (io.ReadCloser, error) { return replayed(body, nil), nil }
	}
	return next.RoundTrip(out)
}

func newAttempt(req *http.Request, u *url.URL, body []byte, err error) Attempt {
	m := req.Method
	if m == "" {
		m = http.MethodGet
	}
	return Attempt{Time: time.Now(), Method: m, URL: u, Header: req.Header.Clone(), Body: body, BodyErr: err}
}

// readBody reads body whole and closes it; see consume.
func readBody(ctx context.Context, body io.ReadCloser) ([]byte, error) {
	if body == nil || body == http.NoBody {
		return nil, nil
	}
	buf := bytes.NewBuffer([]byte{})
	err := consume(ctx, body, buf)
	return buf.Bytes(), err
}

// replayed is a body that gives b, then err (or io.EOF when err is nil).
func replayed(b []byte, err error) io.ReadCloser {
	if err == nil {
		return io.NopCloser(bytes.NewReader(b))
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{err}))
}
