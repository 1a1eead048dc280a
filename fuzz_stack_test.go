package resilient

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fuzzBase is an in-memory base transport scripted by fuzz input: each
// attempt consumes two bytes, an outcome and a parameter.
type fuzzBase struct {
	mu       sync.Mutex
	script   []byte
	bodies   []*dripBody
	outcomes []fuzzOutcome
}

type fuzzOutcome struct {
	status        int
	neverReceived bool // the failure proves the server never got it
}

var fuzzStatuses = []int{200, 201, 204, 301, 400, 404, 408, 409, 429, 500, 501, 502, 503, 504}

func (b *fuzzBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	b.mu.Lock()
	var op, arg byte
	if len(b.script) >= 2 {
		op, arg, b.script = b.script[0], b.script[1], b.script[2:]
	}
	b.mu.Unlock()
	delay := time.Duration(arg) * 100 * time.Millisecond // up to 25.5 s
	record := func(o fuzzOutcome) {
		b.mu.Lock()
		b.outcomes = append(b.outcomes, o)
		b.mu.Unlock()
	}
	switch op % 8 {
	case 0: // connection refused: never received
		record(fuzzOutcome{neverReceived: true})
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case 1: // reset after sending
		record(fuzzOutcome{})
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case 2: // headers late
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			record(fuzzOutcome{})
			return nil, r.Context().Err()
		}
	case 3: // nil, nil: a broken base
		record(fuzzOutcome{neverReceived: true})
		return nil, nil
	}
	code := fuzzStatuses[int(arg)%len(fuzzStatuses)]
	record(fuzzOutcome{status: code, neverReceived: code == 429})
	resp := reply(r, code, "")
	switch op % 8 {
	case 4:
		resp.Header.Set("Retry-After", strconv.Itoa(int(arg)))
	case 5:
		resp.Header.Set("Retry-After", strings.Repeat("9", int(arg)%40))
	case 6:
		resp.Header.Set("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
	}
	body := &dripBody{ctx: r.Context(), n: int(op>>3) % 8, tick: delay / 4, closed: make(chan struct{})}
	b.mu.Lock()
	b.bodies = append(b.bodies, body)
	b.mu.Unlock()
	resp.Body = body
	return resp, nil
}

// FuzzStack drives the whole recommended stack over a scripted base inside
// a synctest bubble and checks the invariants of the RoundTripper contract
// and of the retry rules.
func FuzzStack(f *testing.F) {
	f.Add(byte(0), []byte{4, 10, 4, 1, 2, 0})
	f.Add(byte(1), []byte{0, 0, 1, 0, 7, 0})
	f.Add(byte(3), []byte{2, 200, 2, 200, 2, 200})
	f.Add(byte(2), []byte{5, 39, 6, 12, 3, 0})
	f.Add(byte(1), []byte{4, 8, 4, 8, 4, 8, 4, 8})
	f.Fuzz(func(t *testing.T, mode byte, script []byte) {
		synctest.Test(t, func(t *testing.T) {
			base := &fuzzBase{script: script}
			opts := []Option{Recommended()}
			post := mode&1 == 1
			if mode&2 == 2 {
				opts = append(opts, WithIdempotencyKey(IdempotencyMethods())) // no keys
			}
			rt := NewTransport(base, opts...)
			method := http.MethodGet
			if post {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, "http://api.example/x", strings.NewReader("payload"))
			if mode&4 == 4 {
				req.Body = io.NopCloser(req.Body) // no GetBody: recorded while sent
				req.GetBody = nil
			}
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			took := time.Since(start)
			if (resp == nil) == (err == nil) {
				t.Fatalf("response XOR error broken: %v, %v", resp, err)
			}
			if took > RecommendedTotalTimeout {
				t.Fatalf("call took %v, past the total timeout", took)
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if time.Since(start) > RecommendedTotalTimeout {
					t.Fatalf("body read ended at %v, past the total timeout", time.Since(start))
				}
			}
			var re *RetryError
			if err != nil && !errors.As(err, &re) && !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error is not a *RetryError: %v", err)
			}
			base.mu.Lock()
			defer base.mu.Unlock()
			if n := len(base.outcomes); n > DefaultMaxAttempts {
				t.Fatalf("%d attempts, more than %d", n, DefaultMaxAttempts)
			}
			for _, b := range base.bodies {
				select {
				case <-b.closed:
				default:
					t.Fatal("a response body was never closed")
				}
			}
			if post && mode&2 == 2 {
				for i, o := range base.outcomes[:max(len(base.outcomes)-1, 0)] {
					if !o.neverReceived {
						t.Fatalf("POST without a key sent again after attempt %d (%+v)", i+1, o)
					}
				}
			}
		})
	})
}
