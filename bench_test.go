package resilient

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// memTransport answers every request with 200 and a small body, in memory,
// so that the benchmarks measure the layers and nothing else.
type memTransport struct{}

type memBody struct{ n int }

func (b *memBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	n := copy(p, "ok")
	b.n -= n
	return n, nil
}

func (*memBody) Close() error { return nil }

func (memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: &memBody{n: 2}, Request: r}, nil
}

// stacks are what the benchmarks compare: the bare transport and ours.
func stacks(base http.RoundTripper) []struct {
	name string
	rt   http.RoundTripper
} {
	return []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", base},
		{"retry", NewTransport(base, WithRetry(RetryPolicy{}))},
		{"recommended", NewTransport(base, Recommended())},
	}
}

func BenchmarkOverhead(b *testing.B) {
	for _, s := range stacks(memTransport{}) {
		b.Run(s.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "http://api.example/v1/items", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := s.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

func BenchmarkLoopbackGET(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	for _, s := range stacks(base) {
		b.Run(s.name, func(b *testing.B) {
			c := &http.Client{Transport: s.rt}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkPut8MiB sends an 8 MiB body that has GetBody: B/op shows that it
// is never copied.
func BenchmarkPut8MiB(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 8<<20)
	for _, s := range stacks(memTransport{}) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				req, _ := http.NewRequest("PUT", "http://api.example/blob", bytes.NewReader(payload))
				resp, err := s.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkBreaker measures what a closed breaker adds to a successful
// request, and what a refusal by an open one costs.
func BenchmarkBreaker(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://api.example/v1/items", nil)
	run := func(b *testing.B, rt http.RoundTripper, wantErr bool) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if (err != nil) != wantErr {
				b.Fatal(err)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, memTransport{}, false) })
	b.Run("closed", func(b *testing.B) {
		run(b, NewTransport(memTransport{}, WithCircuitBreaker(BreakerPolicy{})), false)
	})
	b.Run("open", func(b *testing.B) {
		down := roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, errRefused })
		rt := NewTransport(down, WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
		_, _ = rt.RoundTrip(req)
		run(b, rt, true)
	})
}

// BenchmarkIdempotency measures the idempotency layer on a POST without a
// key: the key itself, plus the request and header copies.
func BenchmarkIdempotency(b *testing.B) {
	for _, s := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", memTransport{}},
		{"idempotency", NewTransport(memTransport{}, WithIdempotencyKey())},
	} {
		b.Run(s.name, func(b *testing.B) {
			req, _ := http.NewRequest("POST", "http://api.example/charges", nil)
			req.Header.Set("Content-Type", "application/json")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := s.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkLogging measures the logging layer when its level is disabled,
// next to the same stack without a logger.
func BenchmarkLogging(b *testing.B) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	info := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for _, s := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"retry", NewTransport(memTransport{}, WithRetry(RetryPolicy{}))},
		{"retry+logger-disabled", NewTransport(memTransport{}, WithRetry(RetryPolicy{}), WithLogger(quiet))},
		{"retry+logger-info", NewTransport(memTransport{}, WithRetry(RetryPolicy{}), WithLogger(info))},
	} {
		b.Run(s.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "http://api.example/v1/items?page=2", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := s.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
