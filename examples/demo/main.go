// Command demo shows what a resilient client does against a local server
// that misbehaves on purpose: 503s retried with backoff, Retry-After
// honoured, a stalled attempt cut by the timeout, a 404 returned at once,
// a POST retried only when it carries an Idempotency-Key, and a circuit
// breaker that opens on a partner's outage, fails fast, probes and closes.
//
//	go run ./examples/demo
//
// No network is needed: the server runs inside the program.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient"
)

func main() { run(os.Stdout) }

// run plays every scenario, writing the trace to out.
func run(out io.Writer) {
	var outage atomic.Bool
	srv := newServer(&outage)
	defer srv.Close()

	trace := &tracer{next: http.DefaultTransport, out: out}
	client := &http.Client{Transport: resilient.NewTransport(trace,
		resilient.WithAttemptTimeout(500*time.Millisecond),
		resilient.WithTotalTimeout(10*time.Second),
		resilient.WithRetry(resilient.RetryPolicy{MaxAttempts: 3, InitialDelay: 200 * time.Millisecond}),
	)}
	defer client.CloseIdleConnections()

	scenarios := []struct {
		title string
		req   func() *http.Request
	}{
		{"503, 503, 200: retried with jittered exponential backoff", get(srv.URL + "/flaky")},
		{"429 with Retry-After: 1 — the wait the server asked for", get(srv.URL + "/throttled")},
		{"a stalled attempt is cut by the 500 ms attempt timeout, then retried", get(srv.URL + "/stall")},
		{"404 comes back at once: a 4xx is never retried", get(srv.URL + "/missing")},
		{"POST without an Idempotency-Key: a 503 is not retried (no double charge)", post(srv.URL+"/charge", "")},
		{"POST with an Idempotency-Key: safe to retry", post(srv.URL+"/charge", "order-42-charge")},
	}
	for i, s := range scenarios {
		fmt.Fprintf(out, "\n%d. %s\n", i+1, s.title)
		trace.reset()
		resp, err := client.Do(s.req())
		if err != nil {
			fmt.Fprintf(out, "  result: error: %v\n", err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(out, "  result: %s %q after %v\n", resp.Status, strings.TrimSpace(string(body)), time.Since(trace.start).Round(10*time.Millisecond))
	}
	breakerScenario(out, srv.URL+"/partner", &outage, trace)
}

func get(url string) func() *http.Request {
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		return req
	}
}

func post(url, key string) func() *http.Request {
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"amount":4200,"currency":"EUR"}`))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		return req
	}
}
