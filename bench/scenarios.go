package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// memTransport answers in memory: 200 "ok", or what fail says for the n-th
// request. It reads and closes request bodies like a real transport.
type memTransport struct {
	n    atomic.Int64
	fail func(n int64) (status int, err error)
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	n := m.n.Add(1)
	status := http.StatusOK
	if m.fail != nil {
		var err error
		if status, err = m.fail(n); err != nil {
			return nil, err
		}
	}
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(&okBody{}), Request: r}, nil
}

type okBody struct{ done bool }

func (b *okBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	b.done = true
	return copy(p, "ok"), nil
}

const memURL = "http://api.example/v1/items"

// Overhead (scenario 1): a successful GET over an in-memory transport.
func Overhead(s Stack) func(b *testing.B) {
	return func(b *testing.B) {
		do := s.New(&memTransport{}, Default)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := do(ctx, "GET", memURL, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Loopback (scenario 2): a keep-alive GET to a local httptest server.
func Loopback(s Stack, url string) func(b *testing.B) {
	return func(b *testing.B) {
		base := http.DefaultTransport.(*http.Transport).Clone()
		defer base.CloseIdleConnections()
		do := s.New(base, Default)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := do(ctx, "GET", url, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Put8MiB (scenario 3): an 8 MiB PUT with a replayable body; B/op shows who
// copies it.
func Put8MiB(s Stack) func(b *testing.B) {
	payload := make([]byte, 8<<20)
	return func(b *testing.B) {
		do := s.New(&memTransport{}, Default)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := do(ctx, "PUT", memURL, payload); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// OpenBreaker (scenario 5): the cost of a call refused by an open breaker.
func OpenBreaker(s Stack) func(b *testing.B) {
	return func(b *testing.B) {
		refused := &memTransport{fail: func(int64) (int, error) { return 0, syscall.ECONNREFUSED }}
		do := s.New(refused, Config{Initial: time.Microsecond, Max: time.Microsecond})
		ctx := context.Background()
		for range 10 { // trip it
			_, _ = do(ctx, "GET", memURL, nil)
		}
		before := refused.n.Load()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := do(ctx, "GET", memURL, nil); err == nil {
				b.Fatal("the breaker let a call through")
			}
		}
		if refused.n.Load() != before {
			b.Fatalf("%d calls reached the server", refused.n.Load()-before)
		}
	}
}

// Parallel (scenario 7): 64 goroutines through one client.
func Parallel(s Stack) func(b *testing.B) {
	return func(b *testing.B) {
		do := s.New(&memTransport{}, Default)
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(32) // × GOMAXPROCS 2
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := do(ctx, "GET", memURL, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
}

// Attempts (scenario 4) runs 16 goroutines of calls for d against a server
// that fails with 503 when fail says so, with 1 ms backoffs and no circuit
// breaker (so that it measures what retries alone do), and returns the
// attempts per call and the share of successful calls, for the calls made
// after the first second.
func Attempts(s Stack, fail func(n int64) bool, d time.Duration) (perCall, success float64) {
	base := &memTransport{fail: func(n int64) (int, error) {
		if fail(n) {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	}}
	do := s.New(base, Config{Initial: time.Millisecond, Max: time.Millisecond, NoBreaker: true})
	start := time.Now()
	var calls, ok atomic.Int64
	var from int64
	var once sync.Once
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for time.Since(start) < d {
				late := time.Since(start) > time.Second
				if late {
					once.Do(func() { from = base.n.Load() })
				}
				status, err := do(context.Background(), "GET", memURL, nil)
				if late {
					calls.Add(1)
					if err == nil && status == http.StatusOK {
						ok.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	if calls.Load() == 0 {
		return 0, 0
	}
	return float64(base.n.Load()-from) / float64(calls.Load()), float64(ok.Load()) / float64(calls.Load())
}

// RetryAfter (scenario 6) measures one call to a server that answers 503
// with Retry-After: 3600, then 200; it gives up after limit.
func RetryAfter(s Stack, limit time.Duration) (time.Duration, error) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	do := s.New(base, Default)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	status, err := do(ctx, "GET", srv.URL, nil)
	took := time.Since(start)
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return took, fmt.Errorf("still waiting after %v", limit)
	}
	if err != nil {
		return took, err
	}
	_ = status
	return took, nil
}
