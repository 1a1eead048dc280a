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

type stack struct {
	name string
	rt   http.RoundTripper
}

// stacks are what most benchmarks compare: the bare transport and ours.
func stacks(base http.RoundTripper) []stack {
	return []stack{
		{"bare", base},
		{"retry", NewTransport(base, WithRetry(RetryPolicy{}))},
		{"recommended", NewTransport(base, Recommended())},
	}
}

// roundTrips runs one sub-benchmark per stack: each iteration sends the
// request newReq returns (or the same one, when newReq is nil), reads the
// body and closes it. wantErr says that every call must fail.
func roundTrips(b *testing.B, stacks []stack, req *http.Request, newReq func() *http.Request, wantErr bool) {
	for _, s := range stacks {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := req
				if newReq != nil {
					r = newReq()
				}
				resp, err := s.rt.RoundTrip(r)
				if (err != nil) != wantErr {
					b.Fatal(err)
				}
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
}

func BenchmarkOverhead(b *testing.B) {
	roundTrips(b, stacks(memTransport{}), newRequest("GET", "http://api.example/v1/items", nil), nil, false)
}

func BenchmarkLoopbackGET(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	roundTrips(b, stacks(base), newRequest("GET", srv.URL, nil), nil, false)
}

// BenchmarkPut8MiB sends an 8 MiB body that has GetBody: B/op shows that it
// is never copied.
func BenchmarkPut8MiB(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 8<<20)
	roundTrips(b, stacks(memTransport{}), nil, func() *http.Request {
		return newRequest("PUT", "http://api.example/blob", bytes.NewReader(payload))
	}, false)
}

// BenchmarkPutRecorded sends a 64 KiB body without GetBody (a stream the
// caller cannot rewind): the retry layer records it while it is sent, so
// B/op shows the recording, and nothing is read before the attempt.
func BenchmarkPutRecorded(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 64<<10)
	roundTrips(b, stacks(memTransport{}), nil, func() *http.Request {
		return newRequest("PUT", "http://api.example/blob", onlyReader{bytes.NewReader(payload)})
	}, false)
}

// BenchmarkBreaker measures what a closed breaker adds to a successful
// request, and what a refusal by an open one costs.
func BenchmarkBreaker(b *testing.B) {
	req := newRequest("GET", "http://api.example/v1/items", nil)
	roundTrips(b, []stack{
		{"bare", memTransport{}},
		{"closed", NewTransport(memTransport{}, WithCircuitBreaker(BreakerPolicy{}))},
	}, req, nil, false)
	down := roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, errRefused })
	open := NewTransport(down, WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
	_, _ = open.RoundTrip(req)
	roundTrips(b, []stack{{"open", open}}, req, nil, true)
}

// BenchmarkIdempotency measures the idempotency layer on a POST without a
// key: the key itself, plus the request and header copies.
func BenchmarkIdempotency(b *testing.B) {
	req := newRequest("POST", "http://api.example/charges", nil)
	req.Header.Set("Content-Type", "application/json")
	roundTrips(b, []stack{
		{"bare", memTransport{}},
		{"idempotency", NewTransport(memTransport{}, WithIdempotencyKey())},
	}, req, nil, false)
}

// BenchmarkLogging measures the logging layer when its records are
// dropped, next to the same stack without a logger.
func BenchmarkLogging(b *testing.B) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	info := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	roundTrips(b, []stack{
		{"retry", NewTransport(memTransport{}, WithRetry(RetryPolicy{}))},
		{"retry+logger-disabled", NewTransport(memTransport{}, WithRetry(RetryPolicy{}), WithLogger(quiet))},
		{"retry+logger-info", NewTransport(memTransport{}, WithRetry(RetryPolicy{}), WithLogger(info))},
	}, newRequest("GET", "http://api.example/v1/items?page=2", nil), nil, false)
}
