package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient"
)

// flakyServer answers 503 to the first n requests, then 200 "ok".
func flakyServer(n int32) *httptest.Server {
	var calls atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= n {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
}

func ExampleNew() {
	srv := flakyServer(2)
	defer srv.Close()

	client := resilient.New(resilient.Recommended())
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 ok
}

func ExampleWrap() {
	srv := flakyServer(1)
	defer srv.Close()

	// An existing client keeps its Jar, CheckRedirect and Timeout; only its
	// transport is wrapped, on a copy.
	existing := &http.Client{Timeout: 5 * time.Second}
	client := resilient.Wrap(existing, resilient.WithRetry(resilient.RetryPolicy{}))

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, client.Timeout, existing.Transport == nil)
	// Output: 200 5s true
}

func ExampleNewTransport() {
	srv := flakyServer(1)
	defer srv.Close()

	// Compose with other RoundTrippers: here an auth layer outside ours, so
	// that every attempt carries the header.
	var rt http.RoundTripper = resilient.NewTransport(nil, resilient.WithRetry(resilient.RetryPolicy{}), resilient.WithTimeout(2*time.Second))
	rt = bearer{token: "t0ken", next: rt}
	client := &http.Client{Transport: rt}

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

// bearer adds an Authorization header to a copy of each request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

func ExampleWithRetry() {
	srv := flakyServer(10) // down for longer than we retry
	defer srv.Close()

	client := resilient.New(resilient.WithRetry(resilient.RetryPolicy{
		MaxAttempts:  4,
		InitialDelay: 10 * time.Millisecond,
		MaxDelay:     100 * time.Millisecond,
	}))
	defer client.CloseIdleConnections()

	// When the attempts run out on a status, the last response comes back
	// whole, with a nil error.
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output: 503 busy
}

func ExampleRetryError() {
	// Nothing listens on this port once the server is closed.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	client := resilient.New(resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond}))
	_, err := client.Get(url)

	var re *resilient.RetryError
	if errors.As(err, &re) {
		fmt.Println("attempts:", re.Attempts)
	}
	// Output: attempts: 3
}

func ExampleWithTimeout() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	client := resilient.New(resilient.WithTimeout(50 * time.Millisecond))
	defer client.CloseIdleConnections()
	_, err := client.Get(srv.URL)

	var te *resilient.TimeoutError
	fmt.Println(errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Scope == resilient.ScopeAttempt)
	// Output: true true
}

func ExampleWithCircuitBreaker() {
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	client := resilient.New(
		resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 3, OpenTimeout: 50 * time.Millisecond}),
		resilient.WithFallback(func(req *http.Request, err error) (*http.Response, error) {
			if errors.Is(err, resilient.ErrCircuitOpen) {
				return nil, fmt.Errorf("partner API unavailable, try later: %w", err)
			}
			return nil, err
		}),
	)
	defer client.CloseIdleConnections()

	call := func() {
		resp, err := client.Get(srv.URL)
		var open *resilient.CircuitOpenError
		switch {
		case errors.As(err, &open):
			fmt.Println("failed fast, breaker", open.State)
		case err != nil:
			fmt.Println(err)
		default:
			resp.Body.Close()
			fmt.Println(resp.StatusCode)
		}
	}
	for range 4 {
		call()
	}
	down.Store(false)
	time.Sleep(60 * time.Millisecond) // let OpenTimeout pass: the next call is a probe
	call()
	call()
	// Output:
	// 503
	// 503
	// 503
	// failed fast, breaker open
	// 200
	// 200
}
